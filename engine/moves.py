"""Moving running cases of one version of a process to a later version (case migration).

A case's stored state names its tasks' specs by element id. Moving it re-binds that state to the new
version's specs with SpiffWorkflow's ``diff_workflow`` / ``migrate_workflow`` (``SpiffWorkflow.bpmn.util.diff``):
tasks are aligned by element id, and what is ready or waiting is predicted anew on the new version's paths.

``preview`` says per case whether it can move and why not; ``move`` moves the cases that can (each in its own
transaction, audited as ``case_moved`` with the versions) and reports the others. A case can move when

* it is open (running, waiting, error) — a suspended case is resumed first; closed cases stay where they are;
* every task that holds a token — ready, waiting (timers, messages), started (a service call under way),
  failed — is on an element the new version has, under the same id;
* every running call activity or subprocess runs a process the new version still contains, and the same
  holds for the tasks inside it;
* the moved state, stored and read back against the new version, gives the same tasks.

Open tasks keep their ids (the task table, drafts, claims and assignments stay valid) and get the new
version's title and candidate groups; waiting timers keep their due time (and their job) unless the new
version changed the timer's expression — then it is computed anew from the time of the move. A failed step
(case in state ``error``) is run again on the new version when the case moves: a version that fixes a broken
script repairs the case; if it fails again, the case does not move.
"""

from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from .audit import AuditTrail
from .cases import (
    INSERT_GROUP,
    RETRIES,
    Scan,
    _finish_step,
    _Step,
    case_data,
    iso,
)
from .errors import ConcurrentUpdate, NotFound, OzgflowError
from .lean import Lean
from .models import SERIALIZERS
from .versions import get_version

ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
RESET = TaskState.READY | TaskState.WAITING | TaskState.ERROR
OPEN_CASE_STATES = ("running", "waiting", "error")


class MoveError(OzgflowError):
    """The move was asked for wrongly (unknown versions, not a later version, a view-only version)."""


def _versions(rt, process_id, from_version, to_version):
    old, new = get_version(rt, process_id, from_version), get_version(rt, process_id, to_version)
    if new["version"] <= old["version"]:
        raise MoveError(f"cases move to a later version: {to_version} is not later than {from_version}")
    if not new["executable"]:
        raise MoveError(f"version {to_version} of {process_id!r} was uploaded for viewing only: nothing runs on it")
    with Lean.transaction(rt.db, readonly=True) as db:
        return rt.version(db, old["id"]), rt.version(db, new["id"])


def _label(task):
    spec = task.task_spec
    element = spec.bpmn_id or spec.name
    return f"{element} ({spec.bpmn_name})" if getattr(spec, "bpmn_name", None) else element


def _state_word(task):
    if task.state == TaskState.WAITING:
        return "waits at"
    if task.state == TaskState.ERROR:
        return "failed at"
    return "has a token on"


def _check(workflow, wdiff, to, where=""):
    reasons = []
    for t in workflow.get_tasks(state=ACTIVE, skip_subprocesses=True):
        target = wdiff.alignment.get(t)
        if t in wdiff.removed or target is None:
            reasons.append(f"{where}{_state_word(t)} {_label(t)}, which version {to} does not have")
        elif target.name != t.task_spec.name:
            reasons.append(f"{where}{_state_word(t)} {_label(t)}, whose id is {target.name} in version {to} "
                           "(a renamed element cannot be followed)")
    return reasons


def _active(wf):
    return sorted((str(t.id), t.task_spec.name, t.state) for w in (wf, *wf.subprocesses.values())
                  for t in w.get_tasks(state=ACTIVE, skip_subprocesses=True))


def _timer_expression(task):
    definition = getattr(task.task_spec, "event_definition", None)
    return getattr(definition, "expression", None)


def migrate(old, new, wf):
    """Re-bind the workflow ``wf`` (loaded with ``old``'s specs) to ``new``'s specs in place.

    Returns (reasons, notes): the workflow was changed only when ``reasons`` is empty."""
    to = new.version
    if old.dialect != new.dialect:
        return [f"version {to} comes from another modeler ({new.dialect}, not {old.dialect})"], []
    registry = SERIALIZERS[new.dialect].registry
    try:
        top_diff, sp_diffs = diff_workflow(registry, wf, new.spec, new.subprocess_specs)
    except (KeyError, AttributeError, TypeError) as exc:
        return [f"the case cannot be compared with version {to} ({exc.__class__.__name__}: {exc})"], []
    reasons = _check(wf, top_diff, to)
    for sp_id, sp in wf.subprocesses.items():
        parent = wf.get_task_from_id(sp_id)
        where = f"in {_label(parent)}: " if parent is not None else "in a subprocess: "
        if sp_diffs.get(sp_id) is None:
            reasons.append(f"{where}it runs {sp.spec.name}, which version {to} does not contain")
        else:
            reasons.extend(_check(sp, sp_diffs[sp_id], to, where))
    if reasons:
        return reasons, []
    before = _active(wf)
    waiting = {t.id: (dict(t.internal_data), _timer_expression(t))
               for w in (wf, *wf.subprocesses.values()) for t in w.get_tasks(state=TaskState.WAITING)}
    ready_before = {t.id for t in Scan(wf).ready}
    migrate_workflow(top_diff, wf, new.spec, reset_mask=RESET)
    for sp_id, sp in list(wf.subprocesses.items()):
        migrate_workflow(sp_diffs[sp_id], sp, new.subprocess_specs[sp.spec.name], reset_mask=RESET)
    wf.subprocess_specs = new.subprocess_specs
    notes = []
    for w in (wf, *wf.subprocesses.values()):
        for t in w.get_tasks(state=TaskState.WAITING):
            if t.id not in waiting:
                continue
            internal, expression = waiting[t.id]
            if expression == _timer_expression(t):
                t.internal_data = internal  # the timer keeps its due time (and so its job)
            else:
                notes.append(f"the timer {_label(t)} changed: its due time is computed anew from now")
    lost = ready_before - {t.id for t in Scan(wf).ready}
    if lost:
        reasons.append(f"open tasks would be dropped: {', '.join(sorted(map(str, lost)))}")
    after = {i for i, _n, _s in _active(wf)}
    dropped = sorted({n for i, n, _s in before if i not in after})
    if dropped:
        reasons.append(f"tasks would lose their token: {', '.join(dropped)}")
    return reasons, notes


def _roundtrip(new, wf):
    """Store the moved state and read it back against the new version: the same tasks must come back."""
    try:
        again = new.serializer.load(new.serializer.dump(wf), new.spec, new.subprocess_specs)
    except Exception as exc:  # noqa: BLE001 — any failure to read back means: this case cannot move
        return [f"the moved case does not read back against version {new.version} ({exc.__class__.__name__}: {exc})"]
    if _active(again) != _active(wf):
        return [f"the moved case reads back differently against version {new.version}"]
    return []


CASES_OF = ('SELECT id, tenant, aktenzeichen, state FROM "case" WHERE process_id = ? AND version_id = ? '
            "AND state NOT IN ('completed', 'terminated') ORDER BY id")


def _cases(rt, old, case_ids):
    with Lean.transaction(rt.db, readonly=True) as db:
        rows = db.all(CASES_OF, (old.process_id, old.id))
    if case_ids is not None:
        wanted = {int(c) for c in case_ids}
        rows = [r for r in rows if r[0] in wanted]
    return rows


def _assess(rt, old, new, case_id, state, blob):
    """(reasons, notes, workflow after the move or None) for one case, nothing written."""
    if state == "suspended":
        return ["the case is suspended: resume it first"], [], None
    if state not in OPEN_CASE_STATES:
        return [f"the case is {state}"], [], None
    try:
        wf = old.serializer.load(bytes(blob), old.spec, old.subprocess_specs)
    except Exception as exc:  # noqa: BLE001
        return [f"the stored case cannot be read ({exc.__class__.__name__}: {exc})"], [], None
    wf.script_engine = rt.script_engine
    reasons, notes = migrate(old, new, wf)
    if not reasons:
        reasons = _roundtrip(new, wf)
    if state == "error" and not reasons:
        notes.append(f"the failed step runs again on version {new.version} when the case moves")
    return reasons, notes, (None if reasons else wf)


def preview(rt, process_id, from_version, to_version, case_ids=None):
    """Per open case of ``from_version``: can it move to ``to_version``, and if not, why. Changes nothing."""
    old, new = _versions(rt, process_id, from_version, to_version)
    items = []
    for case_id, tenant, akz, state in _cases(rt, old, case_ids):
        with Lean.transaction(rt.db, readonly=True) as db:
            blob = db.one('SELECT workflow FROM "case" WHERE id = ?', (case_id,))[0]
        reasons, notes, _ = _assess(rt, old, new, case_id, state, blob)
        items.append({"case_id": case_id, "tenant": tenant, "aktenzeichen": akz, "state": state,
                      "can_move": not reasons, "reasons": reasons, "notes": notes})
    return {"process_id": process_id, "from": old.version, "to": new.version, "cases": items,
            "movable": sum(i["can_move"] for i in items), "blocked": sum(not i["can_move"] for i in items)}


MOVE_ROW = ('SELECT version_id, workflow, lock_version, audit_seq, audit_hash, state, tenant, aktenzeichen '
            'FROM "case" WHERE id = ?')


def move(rt, process_id, from_version, to_version, actor, case_ids=None):
    """Move every open case of ``from_version`` that can move (or those of ``case_ids``) to ``to_version``.

    Returns the preview's shape, each case with ``moved`` true or false and its reasons."""
    old, new = _versions(rt, process_id, from_version, to_version)
    items = []
    for case_id, tenant, akz, _state in _cases(rt, old, case_ids):
        item = {"case_id": case_id, "tenant": tenant, "aktenzeichen": akz}
        for _attempt in range(RETRIES):
            try:
                with Lean.transaction(rt.db) as db:
                    item.update(_move_one(rt, db, old, new, case_id, actor))
                break
            except ConcurrentUpdate:
                continue
            except OzgflowError as exc:  # the moved case fails on the new version: it stays where it was
                item.update({"moved": False, "reasons": [f"on version {new.version} the case fails: {exc}"],
                             "notes": []})
                break
        else:
            item.update({"moved": False, "reasons": ["the case is changing too often at the moment; try again"],
                         "notes": []})
        items.append(item)
    return {"process_id": process_id, "from": old.version, "to": new.version, "cases": items,
            "moved": sum(i["moved"] for i in items), "not_moved": sum(not i["moved"] for i in items)}


def _move_one(rt, db, old, new, case_id, actor):
    row = db.one(MOVE_ROW, (case_id,))
    if row is None:
        raise NotFound(f"no case {case_id}")
    version_id, blob, lock, audit_seq, audit_hash, state, tenant, _akz = row
    if version_id != old.id:
        return {"moved": False, "state": state, "reasons": [f"the case is no longer on version {old.version}"],
                "notes": []}
    reasons, notes, wf = _assess(rt, old, new, case_id, state, blob)
    if reasons:
        return {"moved": False, "state": state, "reasons": reasons, "notes": notes}
    now = rt.clock()
    trail = AuditTrail(iso(now))
    trail.add(actor, "case_moved", None, old={"version": old.version},
              new={"process_id": new.process_id, "from_version": old.version, "to_version": new.version})
    open_before = {t.id for t in Scan(wf).ready}
    step = _Step(case_id, tenant, new, wf, trail, now, state, lock, audit_seq, audit_hash, open_before)
    result = _finish_step(rt, db, step, case_data(wf))
    db.run('UPDATE "case" SET version_id = ? WHERE id = ?', (new.id, case_id))
    _refresh_task_rows(db, new, case_id)
    return {"moved": True, "state": result["state"], "reasons": [], "notes": notes}


def _refresh_task_rows(db, new, case_id):
    """Open tasks of a moved case get the new version's title and candidate groups (ids stay)."""
    for task_id, element in db.all("SELECT id, element_id FROM task WHERE case_id = ? AND state = 'open'",
                                   (case_id,)):
        meta = new.meta["tasks"].get(element)
        if meta is None:
            continue
        db.run("UPDATE task SET title = ?, process_id = ? WHERE id = ?",
               (meta.get("title") or element, new.process_id, task_id))
        db.run("DELETE FROM task_group WHERE task_id = ?", (task_id,))
        db.many(INSERT_GROUP, [(task_id, g) for g in meta.get("groups", ())])
