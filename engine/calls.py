"""Call activities across models: a ``callActivity calledElement="X"`` whose target is not in the bundle.

A bundle may call a process it does not contain when that process is already deployed (or deployed earlier
in the same deploy): the call binds, at deploy time, to the newest executable version of ``X``. The target's
stored specs (its spec and its own subprocess specs, which it bound the same way when it was deployed) are
copied into the caller's version, so a running case keeps exactly what it started with, whatever is deployed
later. The version records what it bound to in ``meta["calls"]``::

    {"nachforderung": {"process_id": "nachforderung", "version": 3, "version_id": 17, "content_hash": "…"}}

(``version_id`` names the version whose stored files — letter templates — belong to the called process;
``meta["letters"]`` entries of called send tasks carry it, ``engine.dispatch`` renders from there). The
caller's content hash includes the targets' hashes, so deploying the caller again after the target changed
gives a new caller version bound to the new target.

``order_bundles`` sorts the bundles of one deploy so that called models come before their callers
(``ozgflow init`` deploys ``processes/`` in that order); a cycle across models is refused.
"""

import hashlib
import json
import zlib
from dataclasses import dataclass

from .errors import DeployError, Problem
from .safexml import UnsafeXml, parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MODEL_SUFFIXES = (".bpmn", ".bpmn20.xml")


@dataclass
class Target:
    """A called process found outside the bundle: its stored spec blob and task metadata."""

    process_id: str
    dialect: str
    spec: bytes  # zlib(JSON {"spec", "subprocess_specs"}) as stored in process_version.spec
    meta: dict
    content_hash: str
    version: int | None = None  # None while the target is stored in the same deploy (filled in then)
    version_id: int | None = None

    def binding(self):
        return {"process_id": self.process_id, "version": self.version, "version_id": self.version_id,
                "content_hash": self.content_hash}


def call_activities(trees):
    """``(path, line, element_id, called_element)`` of every call activity in an executable process."""
    found = []
    for path, tree in trees.items():
        for process in tree.getroot().iter(f"{{{BPMN_NS}}}process"):
            if process.get("isExecutable") != "true":
                continue  # view-only processes are never run: nothing to bind
            for node in process.iter(f"{{{BPMN_NS}}}callActivity"):
                called = (node.get("calledElement") or "").strip()
                found.append((path, node.sourceline, node.get("id"), called))
    return found


def process_ids(trees):
    return {p.get("id") for tree in trees.values() for p in tree.getroot().iter(f"{{{BPMN_NS}}}process")
            if p.get("id")}


def merge_targets(blob, meta, targets, caller_lanes):
    """Copy the bound targets' specs into the caller's spec JSON ``blob`` and their user tasks into
    ``meta["tasks"]``; returns a list of Problems (element id clashes).

    ``caller_lanes`` maps a called process id to the groups of the lanes its call activities stand in: a
    called user task without groups of its own goes to them (the Nachforderung is written by the
    department that calls it)."""
    problems, calls = [], {}
    for pid, target in targets.items():
        stored = json.loads(zlib.decompress(target.spec))
        blob["subprocess_specs"][pid] = stored["spec"]
        for sub_id, sub in stored["subprocess_specs"].items():
            blob["subprocess_specs"].setdefault(sub_id, sub)
        calls[pid] = target.binding()
        for nested_id, nested in (target.meta.get("calls") or {}).items():
            calls.setdefault(nested_id, nested)
        inherited = sorted(caller_lanes.get(pid, ()))
        for element_id, task in (target.meta.get("tasks") or {}).items():
            if element_id in meta["tasks"]:
                problems.append(Problem(None, None, element_id,
                                        f"element id {element_id!r} is also a user task of the called model "
                                        f"{pid!r}: rename it in one of them"))
                continue
            task = dict(task)
            if not task.get("groups") and not task.get("candidate_users") and not task.get("assignee"):
                task["groups"] = inherited
            meta["tasks"][element_id] = task
    if calls:
        meta["calls"] = calls
    return problems


def effective_hash(bundle_hash, calls):
    """The content hash of a version: its files', plus the content of every model it calls."""
    if not calls:
        return bundle_hash
    text = bundle_hash + "|" + ",".join(f"{pid}={calls[pid]['content_hash']}" for pid in sorted(calls))
    return hashlib.sha256(text.encode()).hexdigest()


# --- ordering the bundles of one deploy --------------------------------------------------------------------


def _scan(bundle, max_bytes):
    """(process ids, called ids) of a bundle; unparsable files are left to compile_bundle to report."""
    trees = {}
    for path, data in bundle.files.items():
        if path.lower().endswith(MODEL_SUFFIXES):
            try:
                trees[path] = parse_xml(data, path, max_bytes)
            except UnsafeXml:
                continue
    provided = process_ids(trees)
    return provided, {called for _p, _l, _e, called in call_activities(trees) if called and called not in provided}


def order_bundles(bundles, max_bytes=10 * 1024 * 1024):
    """The bundles with every called model before its callers (otherwise in the given order)."""
    if len(bundles) < 2:
        return list(bundles)
    scans = [_scan(b, max_bytes) for b in bundles]
    provider = {}
    for i, (provided, _calls) in enumerate(scans):
        for pid in provided:
            provider.setdefault(pid, i)
    deps = {i: sorted({provider[c] for c in calls if c in provider} - {i}) for i, (_p, calls) in enumerate(scans)}
    ordered, state = [], {}

    def visit(i, path):
        if state.get(i) == "done":
            return
        if state.get(i) == "visiting":
            cycle = " → ".join(bundles[j].source or f"bundle {j + 1}" for j in [*path[path.index(i):], i])
            raise DeployError([Problem(bundles[i].source or None, None, None,
                                       f"call activities form a cycle across models: {cycle}")])
        state[i] = "visiting"
        for j in deps[i]:
            visit(j, [*path, i])
        state[i] = "done"
        ordered.append(bundles[i])

    for i in range(len(bundles)):
        visit(i, [])
    return ordered


# --- at compile time (engine.models.compile_bundle) ---------------------------------------------------------


def find_targets(trees, dialect, lookup):
    """The deployed targets of the bundle's call activities whose process is not in the bundle:
    ``({process_id: Target}, [Problem])``. ``lookup(process_id)`` gives a Target or None."""
    local = process_ids(trees)
    targets, problems = {}, []
    for path, line, element, called in call_activities(trees):
        if not called:
            problems.append(Problem(path, line, element, "call activity target missing: the call activity names "
                                                         "no process (calledElement is empty)"))
            continue
        if called in local or called in targets:
            continue
        target = lookup(called) if lookup is not None else None
        if target is None:
            problems.append(Problem(path, line, element,
                                    f"call activity target missing: process {called!r} is neither in the upload "
                                    "nor deployed (deploy it first, or upload it together with this model)"))
        elif target.dialect != dialect:
            problems.append(Problem(path, line, element,
                                    f"call activity target {called!r} is a {target.dialect} model, this file is a "
                                    f"{dialect} model: a call across the two dialects is not supported"))
        else:
            targets[called] = target
    return targets, problems


def _called(specs):
    """Process ids named by call activities of the serialized specs, with the lanes they stand in."""
    lanes = {}
    for spec in specs:
        for ts in spec["task_specs"].values():
            if isinstance(ts.get("spec"), str):
                lanes.setdefault(ts["spec"], set())
                if ts.get("lane"):
                    lanes[ts["spec"]].add(ts["lane"])
    return lanes


def bind_targets(compiled, targets, lines):
    """Copy the targets each compiled process calls into its spec and meta (see ``merge_targets``)."""
    problems = []
    for proc in compiled:
        if not proc.executable:
            continue
        blob = json.loads(zlib.decompress(proc.spec))
        lanes = _called([blob["spec"], *blob["subprocess_specs"].values()])
        needed = {pid: t for pid, t in targets.items() if pid in lanes and pid not in blob["subprocess_specs"]}
        if not needed:
            continue
        clashes = merge_targets(blob, proc.meta, needed, lanes)
        for p in clashes:
            file_name, line = lines.get(p.element, (None, None))
            problems.append(Problem(file_name, line, p.element, p.message))
        letters = proc.meta.setdefault("letters", {})
        for pid, target in needed.items():
            for element, letter in (target.meta.get("letters") or {}).items():
                # the template files are the called version's: engine.letters reads them from there
                letters.setdefault(element, {**letter, "process_id": pid, "version_id": target.version_id})
        proc.spec = zlib.compress(json.dumps(blob, separators=(",", ":")).encode(), 6)
    return problems
