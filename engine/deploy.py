"""Deploying process models: bundles of files become process versions.

The same content again gives the same version and stores nothing new; changed content gives the next
version; running cases keep the version they started on. A refused upload stores nothing at all.
"""

import hashlib
import json
import logging
from pathlib import Path

from sqlalchemy import insert, select

from .calls import Target, effective_hash, order_bundles
from .errors import DeployError, Problem
from .models import Bundle, compile_bundle
from .schema import Deployment, ModelFile, ProcessVersion

MODEL_SUFFIXES = (".bpmn", ".bpmn20.xml", ".dmn")
BUNDLE_SUFFIXES = MODEL_SUFFIXES + (".json", ".form", ".html", ".j2", ".jinja", ".txt", ".md")  # .form: Camunda Forms
SKIP_DIRS = {"tests", "__pycache__"}
log = logging.getLogger(__name__)


def _is_model(path):
    return path.name.lower().endswith(MODEL_SUFFIXES)


def bundles_from_paths(paths):
    """Group files and folders into bundles.

    Files named on the command line form one bundle together. A folder that holds a model file directly is
    one bundle with every file below it (but ``tests/``); other folders are searched for such folders."""
    files = [Path(p) for p in paths if Path(p).is_file()]
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DeployError([Problem(m, None, None, "no such file or folder") for m in missing])
    bundles = []
    if files:
        bundles.append(Bundle({f.name: f.read_bytes() for f in files}, source=", ".join(map(str, files))))
    for p in (Path(p) for p in paths if Path(p).is_dir()):
        bundles.extend(_folder_bundles(p))
    return bundles


def _folder_bundles(folder):
    if any(_is_model(f) for f in folder.iterdir() if f.is_file()):
        files = {}
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder)
            if f.is_file() and not (set(rel.parts[:-1]) & SKIP_DIRS) and f.name.lower().endswith(BUNDLE_SUFFIXES):
                files[rel.as_posix()] = f.read_bytes()
        return [Bundle(files, source=str(folder))]
    found = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and d.name not in SKIP_DIRS):
        found.extend(_folder_bundles(sub))
    return found


def deploy(rt, bundles, actor="cli"):
    """Compile every bundle, then store what is new in one transaction.

    Returns a list of {"process_id", "version", "new"}; raises DeployError (nothing stored) on any problem."""
    compiled, problems = [], []
    bundles = order_bundles(bundles, rt.settings.max_xml_bytes)  # called models before their callers
    lookup = _Lookup(rt)
    for bundle in bundles:
        try:
            processes = compile_bundle(bundle, rt.settings.max_xml_bytes, lookup, services=rt.services)
            compiled.append((bundle, processes))
            lookup.add(bundle, processes)
        except DeployError as exc:
            problems.extend(exc.problems)
        except Exception as exc:  # a library failure we do not know yet: a refusal, never a crash
            log.exception("compiling %s failed", bundle.source)
            problems.append(Problem(bundle.source or "(upload)", None, None,
                                    f"the model could not be checked ({exc.__class__.__name__}: {exc})"))
    if problems:
        raise DeployError(problems)
    results, all_files = [], []
    now = rt.clock()
    with rt.db.begin() as conn:
        stored = {}  # process id -> (version, version id) of this deploy, for the callers' bindings
        for bundle, processes in compiled:
            all_files += [{"path": p, "sha256": hashlib.sha256(d).hexdigest()} for p, d in sorted(bundle.files.items())]
            for proc in processes:
                content_hash = effective_hash(bundle.content_hash(), proc.meta.get("calls"))
                _bind_stored(proc, stored)
                latest = conn.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.content_hash)
                                      .where(ProcessVersion.process_id == proc.process_id)
                                      .order_by(ProcessVersion.version.desc()).limit(1)).first()
                if latest is not None and latest.content_hash == content_hash:
                    results.append({"process_id": proc.process_id, "version": latest.version, "new": False})
                    stored[proc.process_id] = (latest.version, latest.id)
                    continue
                number = (latest.version if latest else 0) + 1
                vid = conn.execute(insert(ProcessVersion).values(
                    process_id=proc.process_id, version=number, name=proc.name, dialect=proc.dialect,
                    executable=proc.executable, content_hash=content_hash, spec=proc.spec, meta=json.dumps(proc.meta),
                    created_at=now, created_by=actor,
                ).returning(ProcessVersion.id)).scalar_one()
                conn.execute(insert(ModelFile), [
                    {"version_id": vid, "path": p, "sha256": hashlib.sha256(d).hexdigest(), "content": d}
                    for p, d in sorted(bundle.files.items())])
                results.append({"process_id": proc.process_id, "version": number, "new": True})
                stored[proc.process_id] = (number, vid)
        if any(r["new"] for r in results):  # the same content again changes nothing, not even this log
            conn.execute(insert(Deployment).values(at=now, actor=actor, files=json.dumps(all_files),
                                                   versions=json.dumps(results)))
    return results


class _Lookup:
    """Finds the target of a call activity into another model: compiled earlier in this deploy, else the
    newest executable version in the database."""

    def __init__(self, rt):
        self.rt, self.pending = rt, {}

    def add(self, bundle, processes):
        for proc in processes:
            if proc.executable:
                self.pending[proc.process_id] = Target(
                    proc.process_id, proc.dialect, proc.spec, proc.meta,
                    effective_hash(bundle.content_hash(), proc.meta.get("calls")))

    def __call__(self, process_id):
        if process_id in self.pending:
            return self.pending[process_id]
        with self.rt.reader.connect() as conn:
            row = conn.execute(select(ProcessVersion.id, ProcessVersion.version, ProcessVersion.dialect,
                                      ProcessVersion.spec, ProcessVersion.meta, ProcessVersion.content_hash)
                               .where(ProcessVersion.process_id == process_id, ProcessVersion.executable.is_(True))
                               .order_by(ProcessVersion.version.desc()).limit(1)).first()
        if row is None:
            return None
        return Target(process_id, row.dialect, bytes(row.spec), json.loads(row.meta), row.content_hash,
                      row.version, row.id)


def _bind_stored(proc, stored):
    """Fill in version and id of call targets that were stored in this same deploy."""
    for pid, binding in (proc.meta.get("calls") or {}).items():
        if binding.get("version_id") is None and pid in stored:
            binding["version"], binding["version_id"] = stored[pid]
    for letter in (proc.meta.get("letters") or {}).values():
        if letter.get("process_id") in stored and letter.get("version_id") is None:
            letter["version_id"] = stored[letter["process_id"]][1]


def list_versions(rt):
    """Every deployed version, by process id and version number."""
    with rt.reader.connect() as conn:
        rows = conn.execute(select(ProcessVersion.process_id, ProcessVersion.version, ProcessVersion.name,
                                   ProcessVersion.dialect, ProcessVersion.created_at, ProcessVersion.content_hash,
                                   ProcessVersion.executable, ProcessVersion.created_by)
                            .order_by(ProcessVersion.process_id, ProcessVersion.version)).mappings().all()
    return [dict(r) for r in rows]


def list_models(rt):
    """Every process with its versions, newest first: what designers see of the shared models."""
    models = {}
    for row in list_versions(rt):
        model = models.setdefault(row["process_id"], {"process_id": row["process_id"], "versions": []})
        model["name"] = row["name"]  # the newest version's name wins (rows come in version order)
        model["versions"].insert(0, {"version": row["version"], "name": row["name"], "dialect": row["dialect"],
                                     "executable": row["executable"], "created_at": row["created_at"],
                                     "created_by": row["created_by"]})
    return list(models.values())
