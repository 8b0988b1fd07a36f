"""Cases and their user tasks: start, complete, show, list.

Every write that advances a case — its state, its tasks, its audit entries — happens in one transaction.
The workflow runs before that transaction (CPU work holds no lock); the write then checks the case's
``lock_version`` (optimistic locking): if another process changed the case meanwhile, the work is redone
on the new state, or refused when the task was completed by the other one.
"""

import json
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID

from jsonschema import Draft202012Validator, FormatChecker
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, insert, select, update

from .audit import GENESIS, AuditTrail, history
from .db import is_postgres
from .errors import AlreadyCompleted, ConcurrentUpdate, FormInvalid, NotFound
from .restricted import describe_workflow_error
from .runtime import SERIALIZER_VERSION
from .schema import Case, Counter, ProcessVersion, Task, TaskGroup

CASES, TASKS, GROUPS = Case.__table__, Task.__table__, TaskGroup.__table__
SYSTEM = "system"
RETRIES = 5


def iso(ts):
    """UTC ISO-8601 text with microseconds: how times appear in history and JSON."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- running a workflow -------------------------------------------------------------------------------


def case_data(wf):
    """The case's current variables: the data of the task that ran last."""
    return dict(wf.last_task.data) if wf.last_task is not None else dict(wf.data)


def case_state(wf):
    if wf.is_completed():
        return "completed"
    if wf.get_tasks(state=TaskState.ERROR):
        return "error"
    if wf.get_tasks(state=TaskState.READY, manual=True) or wf.get_tasks(state=TaskState.WAITING):
        return "waiting"
    return "running"


def _advance(wf, trail, actor_for_changes, before):
    """Run engine steps; record scripts, services and changed variables. Returns an error or None."""
    done_before = {t.id for t in wf.get_tasks(state=TaskState.COMPLETED)}
    error = None
    try:
        wf.do_engine_steps()
    except SpiffWorkflowException as exc:
        error = describe_workflow_error(exc)
    for t in wf.get_tasks(state=TaskState.COMPLETED):
        if t.id in done_before:
            continue
        kind = type(t.task_spec).__name__
        if kind.endswith("ScriptTask"):
            trail.add(SYSTEM, "script_run", t.task_spec.bpmn_id)
        elif kind.endswith("ServiceTask"):
            trail.add(SYSTEM, "service_called", t.task_spec.bpmn_id,
                      new={"operation": getattr(t.task_spec, "operation_name", None)})
    _record_changes(trail, actor_for_changes, None, before, case_data(wf))
    if error is not None:
        trail.add(SYSTEM, "error", None, new={"message": str(error)})
    return error


def _record_changes(trail, actor, element_id, before, after):
    for key in sorted(set(before) | set(after)):
        if before.get(key, _MISSING) != after.get(key, _MISSING):
            trail.add(actor, "variable_set", element_id,
                      old={key: before[key]} if key in before else None,
                      new={key: after[key]} if key in after else None)


_MISSING = object()


def _due(value, now):
    """A due date from model metadata: an ISO-8601 date-time or a duration from now; else None."""
    if not value or "${" in value or "#{" in value:
        return None
    value = value.strip().strip("'\"")
    try:
        if value.startswith("P"):
            return now + TimerEventDefinition.get_timedelta_from_start(
                TimerEventDefinition.parse_iso_duration(value), now)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None


def _open_tasks(wf, version, case_id, tenant, now):
    """Rows for the task table: one per READY manual task."""
    rows, groups = [], []
    for t in wf.get_tasks(state=TaskState.READY, manual=True):
        element = t.task_spec.bpmn_id or t.task_spec.name
        meta = version.meta["tasks"].get(element, {})
        tid = str(t.id)
        rows.append({
            "id": tid, "case_id": case_id, "tenant": tenant, "process_id": version.process_id,
            "element_id": element, "title": meta.get("title") or t.task_spec.bpmn_name or element,
            "assignee": meta.get("assignee") if meta.get("assignee") and "${" not in meta["assignee"] else None,
            "candidate_users": json.dumps(meta.get("candidate_users", [])),
            "due_at": _due(meta.get("due"), now), "follow_up_at": _due(meta.get("follow_up"), now),
            "created_at": now, "completed_at": None, "completed_by": None, "state": "open",
        })
        groups += [{"task_id": tid, "group_name": g} for g in meta.get("groups", [])]
    return rows, groups


# --- starting -------------------------------------------------------------------------------------------


def newest_version_id(conn, process_id):
    vid = conn.execute(select(ProcessVersion.id).where(ProcessVersion.process_id == process_id,
                                                       ProcessVersion.executable.is_(True))
                       .order_by(ProcessVersion.version.desc()).limit(1)).scalar()
    if vid is None:
        raise NotFound(f"process {process_id!r} is not deployed (see 'ozgflow deploy')")
    return vid


def _next_seq(conn, tenant, scope):
    table = Counter.__table__
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    stmt = upsert(table).values(tenant=tenant, scope=scope, value=1)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "scope"], set_={"value": table.c.value + 1})
    return conn.execute(stmt.returning(table.c.value)).scalar_one()


def _aktenzeichen(rt, conn, tenant, process_id, now):
    t = rt.tenants.get(tenant)
    binding = rt.tenants.binding_for_process(tenant, process_id)
    aktenplan = (binding.aktenplan if binding and binding.aktenplan else None) or t.aktenplan
    year = now.astimezone(_BERLIN).year
    scope = str(year) if "{year" in t.aktenzeichen_pattern else "-"
    seq = _next_seq(conn, tenant, scope)
    return t.aktenzeichen_pattern.format(aktenplan=aktenplan, year=year, seq=seq, tenant=tenant,
                                         process=process_id)


try:
    from zoneinfo import ZoneInfo

    _BERLIN = ZoneInfo("Europe/Berlin")
except Exception:  # pragma: no cover - tzdata missing: fall back to UTC years
    _BERLIN = UTC


def start_case(rt, process_id, tenant, data=None, actor=SYSTEM, submission_id=None, count=1):
    """Start ``count`` cases of the newest version of ``process_id`` for ``tenant`` and run each until it
    waits. Returns a list of {"id", "aktenzeichen", "state"}. A case whose first steps fail is kept in
    state ``error`` with the error in its history: nothing that was started is lost."""
    rt.tenants.get(tenant)
    data = dict(data or {})
    with rt.reader.connect() as conn:
        version = rt.version(conn, newest_version_id(conn, process_id))
    results = []
    for _ in range(count):
        now = rt.clock()
        wf = BpmnWorkflow(version.spec, version.subprocess_specs, script_engine=rt.script_engine)
        wf.get_tasks(state=TaskState.READY)[0].data.update(json.loads(json.dumps(data)))
        trail = AuditTrail(iso(now))
        trail.add(actor, "case_started", None, new={"process_id": version.process_id, "version": version.version,
                                                      "tenant": tenant, "submission_id": submission_id})
        _record_changes(trail, actor, None, {}, data)
        error = _advance(wf, trail, SYSTEM, data)
        state = "error" if error else case_state(wf)
        trail.add(SYSTEM, "state_changed", None, old=None, new=state)
        blob = version.serializer.dump(wf)
        with rt.db.begin() as conn:
            akz = _aktenzeichen(rt, conn, tenant, process_id, now)
            case_id = conn.execute(insert(CASES).values(
                tenant=tenant, process_id=version.process_id, version_id=version.id, aktenzeichen=akz,
                state=state, workflow=blob, serializer_version=SERIALIZER_VERSION, lock_version=1,
                submission_id=submission_id, created_at=now, updated_at=now, audit_seq=0, audit_hash=GENESIS,
            ).returning(CASES.c.id)).scalar_one()
            seq, head = trail.seal(case_id, 0, GENESIS)
            _write_tasks(conn, *_open_tasks(wf, version, case_id, tenant, now))
            trail.write(conn)
            conn.execute(update(CASES).where(CASES.c.id == case_id).values(audit_seq=seq, audit_hash=head))
        results.append({"id": case_id, "aktenzeichen": akz, "state": state,
                        "error": str(error) if error else None})
    return results


def _write_tasks(conn, rows, groups):
    if rows:
        conn.execute(insert(TASKS), rows)
    if groups:
        conn.execute(insert(GROUPS), groups)


# --- completing -----------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _validator(schema_json):
    schema = json.loads(schema_json)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def validate_form(form, data):
    """Check ``data`` against a task's JSON Schema form; raise FormInvalid mapping field -> message."""
    if not form:
        return
    errors = {}
    for err in _validator(json.dumps(form, sort_keys=True)).iter_errors(data):
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            errors[missing] = "Pflichtfeld: bitte ausfüllen (required)"
        else:
            field = ".".join(str(p) for p in err.absolute_path) or "(form)"
            errors.setdefault(field, err.message)
    if errors:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise FormInvalid(f"the data does not match the task's form: {detail}", errors)


def complete_task(rt, task_id, actor, data=None):
    """Complete the open user task ``task_id`` with ``data`` (validated against its form) as ``actor``,
    and run the case until it waits again. Raises AlreadyCompleted if the task is no longer open,
    FormInvalid for bad data, CaseError when the case fails (then nothing is changed)."""
    data = json.loads(json.dumps(data or {}))
    for _attempt in range(RETRIES):
        with rt.reader.connect() as conn:
            task = conn.execute(select(TASKS).where(TASKS.c.id == str(task_id))).mappings().first()
            if task is None:
                raise NotFound(f"no task {task_id}")
            if task["state"] != "open":
                raise AlreadyCompleted(_completed_message(task))
            case = conn.execute(select(CASES).where(CASES.c.id == task["case_id"])).mappings().one()
            version = rt.version(conn, case["version_id"])
        meta = version.meta["tasks"].get(task["element_id"], {})
        validate_form(meta.get("form"), data)
        now = rt.clock()
        wf = version.serializer.load(case["workflow"], version.spec, version.subprocess_specs)
        wf.script_engine = rt.script_engine
        spiff_task = wf.get_task_from_id(UUID(task["id"]))
        if spiff_task is None or spiff_task.state != TaskState.READY:
            raise AlreadyCompleted(_completed_message(task))
        trail = AuditTrail(iso(now))
        before = dict(spiff_task.data)
        spiff_task.set_data(**data)
        trail.add(actor, "task_completed", task["element_id"], new={"task_id": task["id"], "title": task["title"]})
        _record_changes(trail, actor, task["element_id"], before, dict(spiff_task.data))
        try:
            spiff_task.run()
        except SpiffWorkflowException as exc:
            raise describe_workflow_error(exc) from None
        error = _advance(wf, trail, SYSTEM, dict(spiff_task.data))
        if error is not None:
            raise error
        state = case_state(wf)
        if state != case["state"]:
            trail.add(SYSTEM, "state_changed", None, old=case["state"], new=state)
        blob = version.serializer.dump(wf)
        trail.seal(case["id"], case["audit_seq"], case["audit_hash"])
        try:
            _write_completion(rt, case, task, trail, wf, version, state, blob, actor, now)
        except ConcurrentUpdate:
            continue
        return {"case_id": case["id"], "state": state}
    raise ConcurrentUpdate(f"case {task['case_id']} is changing too often at the moment; try again")


def _completed_message(task):
    who = f" by {task['completed_by']}" if task.get("completed_by") else ""
    if task["state"] == "cancelled":
        return f"task {task['id']} is no longer open: the case moved on without it"
    return f"task {task['id']} ({task['title']}) was already completed{who}"


def _write_completion(rt, case, task, trail, wf, version, state, blob, actor, now):
    with rt.db.begin() as conn:
        done = conn.execute(update(TASKS).where(TASKS.c.id == task["id"], TASKS.c.state == "open")
                            .values(state="completed", completed_at=now, completed_by=actor))
        if done.rowcount != 1:
            current = conn.execute(select(TASKS).where(TASKS.c.id == task["id"])).mappings().one()
            raise AlreadyCompleted(_completed_message(current))
        moved = conn.execute(update(CASES).where(CASES.c.id == case["id"],
                                                 CASES.c.lock_version == case["lock_version"])
                             .values(state=state, workflow=blob, lock_version=case["lock_version"] + 1,
                                     updated_at=now, audit_seq=trail.rows[-1]["seq"],
                                     audit_hash=trail.rows[-1]["hash"]))
        if moved.rowcount != 1:
            conn.rollback()
            raise ConcurrentUpdate(f"case {case['id']} was changed by another process")
        _sync_tasks(conn, wf, version, case, now)
        trail.write(conn)


def _sync_tasks(conn, wf, version, case, now):
    """Insert tasks that became ready; cancel open ones the workflow no longer has."""
    rows, groups = _open_tasks(wf, version, case["id"], case["tenant"], now)
    ready = {r["id"] for r in rows}
    existing = set(conn.execute(select(TASKS.c.id).where(TASKS.c.case_id == case["id"],
                                                         TASKS.c.state == "open")).scalars())
    gone = existing - ready
    if gone:
        conn.execute(update(TASKS).where(TASKS.c.id.in_(gone)).values(state="cancelled", completed_at=now))
    _write_tasks(conn, [r for r in rows if r["id"] not in existing],
                 [g for g in groups if g["task_id"] not in existing])


# --- reading --------------------------------------------------------------------------------------------


def _task_dict(row, groups):
    return {"id": row["id"], "case_id": row["case_id"], "element_id": row["element_id"], "title": row["title"],
            "groups": groups.get(row["id"], []), "assignee": row["assignee"],
            "due": iso(row["due_at"]) if row["due_at"] else None}


def list_tasks(rt, case_id=None, tenant=None, conn=None):
    """Open tasks, soonest due first (no due date last), read from the task table only."""
    with rt.reader.connect() as conn:
        q = select(TASKS).where(TASKS.c.state == "open")
        if case_id is not None:
            q = q.where(TASKS.c.case_id == int(case_id))
        if tenant is not None:
            q = q.where(TASKS.c.tenant == tenant)
        q = q.order_by(TASKS.c.due_at.is_(None), TASKS.c.due_at, TASKS.c.created_at, TASKS.c.id)
        rows = conn.execute(q).mappings().all()
        groups = {}
        ids = [r["id"] for r in rows]
        for i in range(0, len(ids), 500):
            for g in conn.execute(select(GROUPS).where(GROUPS.c.task_id.in_(ids[i:i + 500]))
                                  .order_by(GROUPS.c.group_name)).mappings():
                groups.setdefault(g["task_id"], []).append(g["group_name"])
    return [_task_dict(r, groups) for r in rows]


def get_case(rt, case_id):
    """Everything ``case show`` prints: state, model and version, Aktenzeichen, data, tasks, history."""
    with rt.reader.connect() as conn:
        case = conn.execute(select(CASES).where(CASES.c.id == int(case_id))).mappings().first()
        if case is None:
            raise NotFound(f"no case {case_id}")
        version = rt.version(conn, case["version_id"])
        events = history(conn, case["id"])
    wf = version.serializer.load(case["workflow"], version.spec, version.subprocess_specs)
    return {
        "id": case["id"], "state": case["state"], "process_id": case["process_id"], "version": version.version,
        "tenant": case["tenant"], "aktenzeichen": case["aktenzeichen"], "submission_id": case["submission_id"],
        "created_at": iso(case["created_at"]), "updated_at": iso(case["updated_at"]),
        "data": case_data(wf), "tasks": list_tasks(rt, case_id=case["id"]),
        "history": [{k: e[k] for k in ("at", "actor", "action", "element_id", "old", "new")} for e in events],
    }


def list_cases(rt, tenant=None, limit=None):
    """Cases, newest first, all of them unless ``limit`` is given."""
    q = select(CASES.c.id, CASES.c.state, CASES.c.process_id, CASES.c.tenant, CASES.c.aktenzeichen,
               CASES.c.submission_id).order_by(CASES.c.id.desc())
    if tenant is not None:
        rt.tenants.get(tenant)
        q = q.where(CASES.c.tenant == tenant)
    if limit is not None:
        q = q.limit(int(limit))
    with rt.reader.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def count_cases(rt):
    with rt.reader.connect() as conn:
        return conn.execute(select(func.count()).select_from(CASES)).scalar_one()


def record(rt, case_id, actor, action, element_id=None, old=None, new=None, conn=None):
    """Append one history entry to a case outside of a workflow step (claims, comments, reads …).

    Chained like every entry; serialized against other writers of the case by its lock version. Pass
    ``conn`` to make it part of a transaction the caller owns (then the caller commits)."""
    if conn is not None:
        return _record_in(conn, rt, case_id, actor, action, element_id, old, new)
    for _attempt in range(RETRIES):
        try:
            with rt.db.begin() as own:
                return _record_in(own, rt, case_id, actor, action, element_id, old, new)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"case {case_id} is changing too often at the moment; try again")


def _record_in(conn, rt, case_id, actor, action, element_id, old, new):
    case = conn.execute(select(CASES.c.lock_version, CASES.c.audit_seq, CASES.c.audit_hash)
                        .where(CASES.c.id == int(case_id))).mappings().first()
    if case is None:
        raise NotFound(f"no case {case_id}")
    trail = AuditTrail(iso(rt.clock()))
    trail.add(actor, action, element_id, old=old, new=new)
    seq, head = trail.seal(int(case_id), case["audit_seq"], case["audit_hash"])
    moved = conn.execute(update(CASES).where(CASES.c.id == int(case_id),
                                             CASES.c.lock_version == case["lock_version"])
                         .values(lock_version=case["lock_version"] + 1, audit_seq=seq, audit_hash=head))
    if moved.rowcount != 1:
        raise ConcurrentUpdate(f"case {case_id} was changed by another process")
    trail.write(conn)
    return seq
