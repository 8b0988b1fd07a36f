"""Cases and their user tasks: start, complete, show, list.

Every write that advances a case — its state, its tasks, its audit entries — happens in one transaction.
The workflow runs before that transaction (CPU work holds no lock); the write then checks the case's
``lock_version`` (optimistic locking): if another process changed the case meanwhile, the work is redone
on the new state, or refused when the task was completed by the other one.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator, FormatChecker
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, update

from .audit import GENESIS, AuditTrail, history
from .errors import AlreadyCompleted, CaseClosed, CaseSuspended, ConcurrentUpdate, FormInvalid, NotFound
from .lean import Lean
from .restricted import describe_workflow_error
from .runtime import SERIALIZER_VERSION
from .schema import Case, Task, TaskGroup

CASES, TASKS, GROUPS = Case.__table__, Task.__table__, TaskGroup.__table__
SYSTEM = "system"
RETRIES = 5


def iso(ts):
    """UTC ISO-8601 text with microseconds: how times appear in history and JSON."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- running a workflow -------------------------------------------------------------------------------

READY, WAITING, COMPLETED, ERROR = TaskState.READY, TaskState.WAITING, TaskState.COMPLETED, TaskState.ERROR
STARTED = TaskState.STARTED


def case_data(wf):
    """The case's current variables: the data of the task that ran last."""
    return dict(wf.last_task.data) if wf.last_task is not None else dict(wf.data)


class Scan:
    """One pass over a workflow's tasks: open user tasks, tasks that ran since ``since``, and the state.

    (SpiffWorkflow's ``get_tasks`` walks the whole tree on every call; the hot path asks once.)"""

    __slots__ = ("ready", "ran", "error", "waiting", "completed")

    def __init__(self, wf, since=None):
        self.ready, self.ran, self.error, self.waiting = [], [], False, False
        for workflow in (wf, *wf.subprocesses.values()):
            for t in workflow.tasks.values():
                state = t.state
                if state == READY:
                    if t.task_spec.manual:
                        self.ready.append(t)
                elif state == COMPLETED:
                    if since is not None and t.last_state_change >= since:
                        self.ran.append(t)
                elif state == WAITING:
                    self.waiting = True
                elif state == ERROR:
                    self.error = True
                elif state == STARTED and t.internal_data.get("user_task"):
                    self.ready.append(t)  # a task waiting for a person, e.g. Postversand (engine.dispatch)
        self.ran.sort(key=lambda t: t.last_state_change)
        self.completed = wf.is_completed()

    @property
    def state(self):
        if self.completed:
            return "completed"
        if self.error:
            return "error"
        return "waiting" if self.ready or self.waiting else "running"


def _advance(wf, trail, before):
    """Run engine steps; record scripts, services and changed variables. Returns (Scan, error or None)."""
    since = time.time()
    error = None
    try:
        wf.do_engine_steps()
    except SpiffWorkflowException as exc:
        error = describe_workflow_error(exc)
    scan = Scan(wf, since)
    for t in scan.ran:
        kind = type(t.task_spec).__name__
        if kind.endswith("ScriptTask"):
            trail.add(SYSTEM, "script_run", t.task_spec.bpmn_id)
        elif kind.endswith("ServiceTask"):
            trail.add(SYSTEM, "service_called", t.task_spec.bpmn_id,
                      new={"operation": getattr(t.task_spec, "operation_name", None)})
    _record_changes(trail, SYSTEM, None, before, case_data(wf))
    if error is not None:
        trail.add(SYSTEM, "error", None, new={"message": str(error)})
    return scan, error


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


def _task_due(task, meta, now):
    """The due date of a new task: from the variable ``dueDateVariable`` names when it holds one, else ``dueDate``."""
    chosen = task.data.get(meta["due_variable"]) if meta.get("due_variable") else None
    return (_due(chosen, now) if isinstance(chosen, str) else None) or _due(meta.get("due"), now)


def _task_follow_up(task, meta, now):
    """The follow-up date of a new task: from the variable ``followUpDate="${var}"`` names, else the literal."""
    return _task_due(task, {"due_variable": meta.get("follow_up_variable"), "due": meta.get("follow_up")}, now)


INSERT_TASK = ('INSERT INTO task (id, case_id, tenant, process_id, element_id, title, assignee, candidate_users, '
               'due_at, follow_up_at, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
INSERT_GROUP = "INSERT INTO task_group (task_id, group_name) VALUES (?, ?)"
INSERT_AUDIT = ('INSERT INTO audit_event (case_id, seq, "at", actor, action, element_id, "old", "new", prev_hash, '
                '"hash") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')


def _insert_tasks(db, tasks, version, case_id, tenant, now):
    """Task-table rows (and candidate groups) for READY user tasks."""
    rows, groups = [], []
    created = db.ts(now)
    for t in tasks:
        element = t.internal_data.get("user_task") or t.task_spec.bpmn_id or t.task_spec.name
        meta = version.meta["tasks"].get(element, {})
        tid = str(t.id)
        assignee = meta.get("assignee")
        rows.append((tid, case_id, tenant, version.process_id, element,
                     meta.get("title") or t.task_spec.bpmn_name or element,
                     assignee if assignee and "${" not in assignee else None,
                     json.dumps(meta.get("candidate_users", [])),
                     db.ts(_task_due(t, meta, now)), db.ts(_task_follow_up(t, meta, now)), created, "open"))
        groups += [(tid, g) for g in meta.get("groups", ())]
        if meta.get("groups_variable"):  # groups chosen in the case (e.g. the department of a triage)
            chosen = t.data.get(meta["groups_variable"])
            chosen = [chosen] if isinstance(chosen, str) else chosen if isinstance(chosen, list) else []
            groups += [(tid, g) for g in dict.fromkeys(chosen) if isinstance(g, str) and g
                       and g not in meta.get("groups", ())]
    db.many(INSERT_TASK, rows)
    db.many(INSERT_GROUP, groups)


class StepContext:
    """What a step hook sees: the case after a step, inside the step's transaction."""

    __slots__ = ("case_id", "tenant", "version", "workflow", "scan", "trail", "now")

    def __init__(self, case_id, tenant, version, workflow, scan, trail, now):
        self.case_id, self.tenant, self.version, self.workflow = case_id, tenant, version, workflow
        self.scan, self.trail, self.now = scan, trail, now


def _after_step(rt, db, ctx):
    """Run the runtime's step hooks (e.g. scheduling timer jobs) in the same transaction as the step.

    Hooks run after the case row, its tasks and history are written; they may write rows of their own
    with ``db`` but must not add history entries (the chain is already sealed)."""
    for hook in rt.step_hooks:
        hook(db, ctx)


def _write_audit(db, trail):
    db.many(INSERT_AUDIT, [(r["case_id"], r["seq"], r["at"], r["actor"], r["action"], r["element_id"], r["old"],
                            r["new"], r["prev_hash"], r["hash"]) for r in trail.rows])


# --- starting -------------------------------------------------------------------------------------------

NEWEST_VERSION = ("SELECT id FROM process_version WHERE process_id = ? AND executable = ? "
                  "ORDER BY version DESC LIMIT 1")
NEXT_SEQ = ("INSERT INTO counter (tenant, scope, value) VALUES (?, ?, 1) ON CONFLICT (tenant, scope) "
            "DO UPDATE SET value = counter.value + 1 RETURNING value")
INSERT_CASE = ('INSERT INTO "case" (id, tenant, process_id, version_id, aktenzeichen, state, workflow, '
               'serializer_version, lock_version, submission_id, created_at, updated_at, audit_seq, audit_hash) '
               'VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)')


def newest_version_id(db, process_id):
    row = db.one(NEWEST_VERSION, (process_id, True))
    if row is None:
        if db.one(NEWEST_VERSION, (process_id, False)) is not None:
            raise NotFound(f"process {process_id!r} was uploaded for viewing only (it is not marked executable, "
                           'isExecutable="false"): it cannot be started')
        raise NotFound(f"process {process_id!r} is not deployed (see 'ozgflow deploy')")
    return row[0]


def _next_case_id(db):
    # SQLite: the write lock (BEGIN IMMEDIATE) is held, so MAX+1 is ours; PostgreSQL: the id sequence.
    if db.pg:
        return db.one("SELECT nextval(pg_get_serial_sequence('\"case\"', 'id'))")[0]
    return db.one('SELECT COALESCE(MAX(id), 0) + 1 FROM "case"')[0]


def _aktenzeichen(rt, db, tenant, process_id, now):
    t = rt.tenants.get(tenant)
    binding = rt.tenants.binding_for_process(tenant, process_id)
    aktenplan = (binding.aktenplan if binding and binding.aktenplan else None) or t.aktenplan
    year = now.astimezone(_BERLIN).year
    scope = str(year) if "{year" in t.aktenzeichen_pattern else "-"
    seq = db.one(NEXT_SEQ, (tenant, scope))[0]
    return t.aktenzeichen_pattern.format(aktenplan=aktenplan, year=year, seq=seq, tenant=tenant,
                                         process=process_id)


_BERLIN = ZoneInfo("Europe/Berlin")


def start_case(rt, process_id, tenant, data=None, actor=SYSTEM, submission_id=None, count=1):
    """Start ``count`` cases of the newest version of ``process_id`` for ``tenant`` and run each until it
    waits. Returns a list of {"id", "aktenzeichen", "state", "error"}. A case whose first steps fail is kept
    in state ``error`` with the error in its history: nothing that was started is lost."""
    rt.tenants.get(tenant)
    text = json.dumps(data or {})
    return [_start_one(rt, process_id, tenant, json.loads(text), actor, submission_id) for _ in range(count)]


def _start_one(rt, process_id, tenant, data, actor, submission_id):
    with Lean.transaction(rt.db) as db:
        return start_in(rt, db, process_id, tenant, data, actor, submission_id)


def start_in(rt, db, process_id, tenant, data, actor=SYSTEM, submission_id=None):
    """Start one case inside the caller's transaction ``db`` (a Lean cursor); see ``start_case``.

    For callers that must write other rows atomically with the case (the mailbox pickup)."""
    version = rt.version(db, newest_version_id(db, process_id))
    stadt = rt.tenants.case_settings(tenant, version.process_id)
    if stadt is not None:  # the city's settings for this model (tenants.toml), never the submitter's "stadt"
        data = {**data, "stadt": stadt}
    now = rt.clock()
    wf = BpmnWorkflow(version.spec, version.subprocess_specs, script_engine=rt.script_engine)
    wf.task_tree.children[0].data.update(data)  # the start task: initial data goes here
    trail = AuditTrail(iso(now))
    trail.add(actor, "case_started", None, new={"process_id": version.process_id, "version": version.version,
                                                 "tenant": tenant, "submission_id": submission_id})
    _record_changes(trail, actor, None, {}, data)
    scan, error = _advance(wf, trail, data)
    state = "error" if error else scan.state
    trail.add(SYSTEM, "state_changed", None, old=None, new=state)
    blob = version.serializer.dump(wf)
    case_id = _next_case_id(db)
    akz = _aktenzeichen(rt, db, tenant, process_id, now)
    seq, head = trail.seal(case_id, 0, GENESIS)
    db.run(INSERT_CASE, (case_id, tenant, version.process_id, version.id, akz, state, blob, SERIALIZER_VERSION,
                         submission_id, db.ts(now), db.ts(now), seq, head))
    _insert_tasks(db, scan.ready, version, case_id, tenant, now)
    _after_step(rt, db, StepContext(case_id, tenant, version, wf, scan, trail, now))
    _write_audit(db, trail)
    return {"id": case_id, "aktenzeichen": akz, "state": state, "error": str(error) if error else None}


# --- completing -----------------------------------------------------------------------------------------


def validate_form(form, data, cache=None, key=None):
    """Check ``data`` against a task's JSON Schema form; raise FormInvalid mapping field -> message."""
    if not form:
        return
    validator = cache.get(key) if cache is not None else None
    if validator is None:
        validator = Draft202012Validator(form, format_checker=FormatChecker())
        if cache is not None:
            cache[key] = validator
    errors = {}
    for err in validator.iter_errors(data):
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            errors[missing] = "Pflichtfeld: bitte ausfüllen (required)"
        else:
            field = ".".join(str(p) for p in err.absolute_path) or "(form)"
            errors.setdefault(field, err.message)
    if errors:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise FormInvalid(f"the data does not match the task's form: {detail}", errors)


TASK_AND_CASE = ('SELECT t.state, t.case_id, t.element_id, t.title, t.completed_by, c.version_id, c.workflow, '
                 'c.lock_version, c.audit_seq, c.audit_hash, c.state, c.tenant '
                 'FROM task t JOIN "case" c ON c.id = t.case_id WHERE t.id = ?')
CLOSE_TASK = "UPDATE task SET state = 'completed', completed_at = ?, completed_by = ? WHERE id = ? AND state = 'open'"
CANCEL_TASK = "UPDATE task SET state = 'cancelled', completed_at = ? WHERE id = ? AND state = 'open'"
# Candidate groups matter only while a task is open: dropping them keeps "tasks of my groups" an index
# lookup over open tasks, however long the history grows.
DROP_GROUPS = "DELETE FROM task_group WHERE task_id = ?"
SAVE_CASE = ('UPDATE "case" SET state = ?, workflow = ?, lock_version = ?, updated_at = ?, audit_seq = ?, '
             'audit_hash = ? WHERE id = ? AND lock_version = ?')


def complete_task(rt, task_id, actor, data=None):
    """Complete the open user task ``task_id`` with ``data`` (validated against its form) as ``actor``,
    and run the case until it waits again. Raises AlreadyCompleted if the task is no longer open,
    FormInvalid for bad data, CaseError when the case fails (then nothing is changed)."""
    data = json.loads(json.dumps(data or {}))
    for _attempt in range(RETRIES):
        try:
            with Lean.transaction(rt.db) as db:
                return _complete_in(rt, db, str(task_id), actor, data)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"the case of task {task_id} is changing too often at the moment; try again")


def _complete_in(rt, db, task_id, actor, data):
    row = db.one(TASK_AND_CASE, (task_id,))
    if row is None:
        raise NotFound(f"no task {task_id}")
    (t_state, case_id, element, title, completed_by, version_id, blob, lock, audit_seq, audit_hash, c_state,
     tenant) = row
    if t_state != "open":
        raise AlreadyCompleted(_completed_message(task_id, title, t_state, completed_by))
    if c_state == "suspended":  # engine.suspension
        raise CaseSuspended(f"case {case_id} is suspended: its tasks cannot be completed until an admin resumes it")
    version = rt.version(db, version_id)
    validate_form(version.meta["tasks"].get(element, {}).get("form"), data, version.validators, element)
    now = rt.clock()
    wf = version.serializer.load(bytes(blob), version.spec, version.subprocess_specs)
    wf.script_engine = rt.script_engine
    open_before = {t.id: t for t in Scan(wf).ready}
    spiff_task = open_before.get(UUID(task_id))
    if spiff_task is None:
        raise AlreadyCompleted(_completed_message(task_id, title, "completed", completed_by))
    trail = AuditTrail(iso(now))
    before = dict(spiff_task.data)
    spiff_task.set_data(**data)
    trail.add(actor, "task_completed", element, new={"task_id": task_id, "title": title})
    _record_changes(trail, actor, element, before, dict(spiff_task.data))
    try:
        spiff_task.run()
    except SpiffWorkflowException as exc:
        raise describe_workflow_error(exc) from None
    for action, new in spiff_task.internal_data.pop("audit", ()):  # what the task did, e.g. letter_dispatched
        trail.add(actor, action, spiff_task.task_spec.bpmn_id, new=new)
    if db.run(CLOSE_TASK, (db.ts(now), actor, task_id)) != 1:
        raise AlreadyCompleted(_completed_message(task_id, title, "completed", None))
    db.run(DROP_GROUPS, (task_id,))
    step = _Step(case_id, tenant, version, wf, trail, now, c_state, lock, audit_seq, audit_hash, set(open_before))
    return _finish_step(rt, db, step, dict(spiff_task.data), {spiff_task.id})


@dataclass(slots=True)
class _Step:
    """A case loaded for one step: what ``_finish_step`` needs to advance, store and record it."""

    case_id: int
    tenant: str
    version: object
    wf: object
    trail: AuditTrail
    now: datetime
    state: str
    lock: int
    audit_seq: int
    audit_hash: str
    open_before: set


def _finish_step(rt, db, step, before, closed=frozenset()):
    """Run the engine, then store the case, sync its task rows, run the step hooks and append its history
    (all in the caller's transaction). A failing script raises and nothing is stored."""
    wf, trail, now = step.wf, step.trail, step.now
    scan, error = _advance(wf, trail, before)
    if error is not None:
        raise error
    state = scan.state
    if state != step.state:
        trail.add(SYSTEM, "state_changed", None, old=step.state, new=state)
    blob = step.version.serializer.dump(wf)
    seq, head = trail.seal(step.case_id, step.audit_seq, step.audit_hash)
    if db.run(SAVE_CASE, (state, blob, step.lock + 1, db.ts(now), seq, head, step.case_id, step.lock)) != 1:
        raise ConcurrentUpdate(f"case {step.case_id} was changed by another process")
    open_after = {t.id for t in scan.ready}
    for gone in step.open_before - open_after - set(closed):
        db.run(CANCEL_TASK, (db.ts(now), str(gone)))
        db.run(DROP_GROUPS, (str(gone),))
    _insert_tasks(db, [t for t in scan.ready if t.id not in step.open_before], step.version, step.case_id,
                  step.tenant, now)
    _after_step(rt, db, StepContext(step.case_id, step.tenant, step.version, wf, scan, trail, now))
    _write_audit(db, trail)
    return {"case_id": step.case_id, "state": state}


CASE_FOR_STEP = ('SELECT version_id, workflow, lock_version, audit_seq, audit_hash, state, tenant FROM "case" '
                 'WHERE id = ?')


def step_case(rt, case_id, act):
    """Change a waiting case from outside and run it until it waits again, in one transaction.

    ``act(workflow, trail, now)`` does the change — deliver a message (``workflow.send_event``), fire due
    timers (``workflow.refresh_timers``) … — and adds its own history entries to ``trail`` (e.g.
    ``timer_fired``, ``message_delivered``); whatever it returns is returned as ``result``. Raising inside
    ``act`` leaves the case unchanged. Retries when another process changed the case meanwhile."""
    for _attempt in range(RETRIES):
        try:
            with Lean.transaction(rt.db) as db:
                return _step_in(rt, db, int(case_id), act)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"case {case_id} is changing too often at the moment; try again")


def _step_in(rt, db, case_id, act):
    row = db.one(CASE_FOR_STEP, (case_id,))
    if row is None:
        raise NotFound(f"no case {case_id}")
    version_id, blob, lock, audit_seq, audit_hash, c_state, tenant = row
    if c_state == "suspended":  # engine.suspension: nothing advances it until it is resumed
        raise CaseSuspended(f"case {case_id} is suspended: it does not advance until an admin resumes it")
    if c_state == "terminated":
        raise CaseClosed(f"case {case_id} was terminated: nothing changes it any more")
    version = rt.version(db, version_id)
    now = rt.clock()
    wf = version.serializer.load(bytes(blob), version.spec, version.subprocess_specs)
    wf.script_engine = rt.script_engine
    trail = AuditTrail(iso(now))
    open_before = {t.id for t in Scan(wf).ready}
    before = case_data(wf)
    result = act(wf, trail, now)
    step = _Step(case_id, tenant, version, wf, trail, now, c_state, lock, audit_seq, audit_hash, open_before)
    return {**_finish_step(rt, db, step, before), "result": result}


def _completed_message(task_id, title, state, completed_by):
    if state == "cancelled":
        return f"task {task_id} is no longer open: the case moved on without it"
    who = f" by {completed_by}" if completed_by else ""
    return f"task {task_id} ({title}) was already completed{who}"


# --- reading --------------------------------------------------------------------------------------------


def list_tasks(rt, case_id=None, tenant=None):
    """Open tasks, soonest due first (no due date last), read from the task table only."""
    where, params = ["t.state = 'open'"], []
    if case_id is not None:
        where.append("t.case_id = ?")
        params.append(int(case_id))
    if tenant is not None:
        where.append("t.tenant = ?")
        params.append(tenant)
    sql = ("SELECT t.id, t.case_id, t.element_id, t.title, t.assignee, t.due_at, t.follow_up_at FROM task t WHERE "
           + " AND ".join(where) + " ORDER BY t.due_at IS NULL, t.due_at, t.created_at, t.id")
    with Lean.transaction(rt.db, readonly=True) as db:
        rows = db.all(sql, params)
        groups = {}
        for i in range(0, len(rows), 500):
            chunk = [r[0] for r in rows[i:i + 500]]
            marks = ", ".join("?" * len(chunk))
            for task_id, group in db.all(f"SELECT task_id, group_name FROM task_group WHERE task_id IN ({marks}) "
                                         "ORDER BY group_name", chunk):
                groups.setdefault(task_id, []).append(group)
        return [{"id": r[0], "case_id": r[1], "element_id": r[2], "title": r[3], "groups": groups.get(r[0], []),
                 "assignee": r[4], "due": iso(db.read_ts(r[5])) if r[5] is not None else None,
                 "follow_up": iso(db.read_ts(r[6])) if r[6] is not None else None} for r in rows]


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
