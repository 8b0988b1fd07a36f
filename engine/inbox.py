"""The caseworker's inbox: which open tasks a person sees, claiming and assigning them, drafts of task
forms, and what the case page shows (comments, the model's diagram, which elements ran).

The inbox reads the ``task`` table through its indexes (tenant/state/due, assignee/state, task_group by
group name) and never loads a workflow. Every claim, release and assignment is written to the case's
history with ``engine.cases.record`` in the same transaction as the change.

Who sees what: a task is visible to a person of its tenant who is its assignee or a member of one of its
candidate groups; team leads see every task of their tenant, admins every task of every tenant. Other
tenants' tasks and cases do not exist for a person: they raise NotFound, never "forbidden".
"""

import json
from dataclasses import dataclass
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, delete, func, insert, select, union_all, update

from .cases import complete_task, get_case, iso, record, validate_form
from .errors import AlreadyCompleted, ConcurrentUpdate, NotFound, OzgflowError
from .schema import Case, Comment, ModelFile, ProcessVersion, Task, TaskDraft, TaskGroup

TASKS, TASK_GROUPS, CASES = Task.__table__, TaskGroup.__table__, Case.__table__
DRAFTS, COMMENTS = TaskDraft.__table__, Comment.__table__
SCOPES = ("all", "mine", "groups", "unassigned")
RETRIES = 5


class Forbidden(OzgflowError):
    """The person may see this task but not do this with it (not their group, not a team lead)."""


class Taken(OzgflowError):
    """The task is assigned to someone else (or no longer open): the caller should show who has it."""


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox is asked for. ``scope``: all (everything visible), mine, groups, unassigned."""

    scope: str = "all"
    process: str | None = None
    element: str | None = None
    overdue: bool = False
    aktenzeichen: str | None = None
    tenant: str | None = None  # admins only: one tenant instead of all
    page: int = 1
    per_page: int = 25


# --- what a person sees ---------------------------------------------------------------------------------


def _visible_ids(person):
    """The ids of the open tasks assigned to ``person`` or offered to one of their groups: a small set,
    read through the assignee index and the task_group index."""
    mine = select(TASKS.c.id).where(TASKS.c.assignee == person.name, TASKS.c.state == "open")
    if not person.groups:
        return mine
    return union_all(mine, select(TASK_GROUPS.c.task_id).where(TASK_GROUPS.c.group_name.in_(person.groups)))


def _scope_condition(person, scope):
    """(condition, small): ``small`` when the condition picks few rows by its own index, so the tenant
    must not be read through the tenant index (the planner would scan the whole tenant otherwise)."""
    if scope == "mine":
        return TASKS.c.assignee == person.name, True
    if scope == "groups":
        if not person.groups:
            return TASKS.c.id.is_(None), True
        return TASKS.c.id.in_(select(TASK_GROUPS.c.task_id).where(TASK_GROUPS.c.group_name.in_(person.groups))), True
    if person.is_teamlead:
        return (TASKS.c.assignee.is_(None) if scope == "unassigned" else None), False
    visible = TASKS.c.id.in_(_visible_ids(person))
    # ``assignee || ''`` keeps the planner off the assignee index, where NULL is the largest value of all
    return (and_((TASKS.c.assignee + "").is_(None), visible) if scope == "unassigned" else visible), True


def _base_conditions(person, f, small=False):
    conds = [TASKS.c.state == "open"]
    tenant = person.tenant if not person.is_admin else f.tenant
    if tenant:
        # ``tenant || ''`` is the same test without the tenant index: for small scopes that index is the
        # wrong way in (SQLite and PostgreSQL both understand it).
        conds.append((TASKS.c.tenant + "" if small else TASKS.c.tenant) == tenant)
    if f.process:
        conds.append(TASKS.c.process_id == f.process)
    if f.element:
        conds.append(TASKS.c.element_id == f.element)
    if f.aktenzeichen:
        # A prefix range, so the (tenant, aktenzeichen) index answers it.
        prefix = f.aktenzeichen.strip().upper()
        cases = select(CASES.c.id).where(CASES.c.aktenzeichen >= prefix, CASES.c.aktenzeichen < prefix + "\uffff")
        if not person.is_admin:
            cases = cases.where(CASES.c.tenant == person.tenant)
        conds.append(TASKS.c.case_id.in_(cases))
    return conds


def _conditions(person, f, scope, overdue_at=None):
    cond, small = _scope_condition(person, scope)
    conds = _base_conditions(person, f, small) + ([cond] if cond is not None else [])
    return conds + ([TASKS.c.due_at < overdue_at] if overdue_at is not None else [])


COLUMNS = (TASKS.c.id, TASKS.c.case_id, TASKS.c.element_id, TASKS.c.title, TASKS.c.assignee, TASKS.c.due_at,
           TASKS.c.process_id, TASKS.c.tenant, CASES.c.aktenzeichen)


def _page(conn, conds, offset, limit):
    """Rows ``offset``… of ``conds``, soonest due first, no due date last — as two index-ordered reads
    (tasks with a due date, then those without), since "NULLs last" would defeat the due-date index."""
    def rows(extra, order, off, lim):
        q = (select(*COLUMNS).join(CASES, CASES.c.id == TASKS.c.case_id).where(*conds, extra)
             .order_by(*order, TASKS.c.created_at, TASKS.c.id).limit(lim).offset(off))
        return conn.execute(q).mappings().all()

    dated = rows(TASKS.c.due_at.isnot(None), [TASKS.c.due_at], offset, limit)
    if len(dated) == limit:
        return dated
    skipped = offset if dated else _count(conn, conds + [TASKS.c.due_at.isnot(None)])
    return dated + rows(TASKS.c.due_at.is_(None), [], max(0, offset - skipped), limit - len(dated))


def list_inbox(rt, person, f=InboxFilter()):
    """One page of the open tasks ``person`` sees under filter ``f``, soonest due first (no due date
    last), with the total and the counts per scope. Items look like ``task list`` items plus
    ``aktenzeichen``, ``process_id``, ``tenant`` and ``overdue``."""
    now = rt.clock()
    scope = f.scope if f.scope in SCOPES else "all"
    conds = _conditions(person, f, scope, now if f.overdue else None)
    page = max(1, int(f.page))
    with rt.reader.connect() as conn:
        rows = _page(conn, conds, (page - 1) * f.per_page, f.per_page)
        total = _count(conn, conds)
        counts = {s: _count(conn, _conditions(person, f, s)) for s in SCOPES}
        counts["overdue"] = _count(conn, _conditions(person, f, "all", now))
        groups = _groups_of(conn, [r["id"] for r in rows])
    items = [{"id": r["id"], "case_id": r["case_id"], "element_id": r["element_id"], "title": r["title"],
              "groups": groups.get(r["id"], []), "assignee": r["assignee"],
              "due": iso(r["due_at"]) if r["due_at"] else None, "aktenzeichen": r["aktenzeichen"],
              "process_id": r["process_id"], "tenant": r["tenant"],
              "overdue": r["due_at"] is not None and r["due_at"] < now} for r in rows]
    return {"items": items, "total": total, "counts": counts, "page": page,
            "pages": max(1, -(-total // f.per_page))}


def _count(conn, conds):
    return conn.execute(select(func.count()).select_from(TASKS).where(*conds)).scalar_one()


def _groups_of(conn, task_ids):
    groups = {}
    if task_ids:
        for g in conn.execute(select(TASK_GROUPS).where(TASK_GROUPS.c.task_id.in_(task_ids))
                              .order_by(TASK_GROUPS.c.group_name)).mappings():
            groups.setdefault(g["task_id"], []).append(g["group_name"])
    return groups


def filter_options(rt):
    """The processes and their user tasks for the inbox's filter lists, from the deployed versions
    (a handful of rows) rather than from the task table: {process_id: {"name", "tasks": {id: title}}}."""
    with rt.reader.connect() as conn:
        rows = conn.execute(select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.meta)
                            .order_by(ProcessVersion.process_id, ProcessVersion.version)).mappings().all()
    options = {}
    for r in rows:
        entry = options.setdefault(r["process_id"], {"name": r["name"] or r["process_id"], "tasks": {}})
        for element_id, meta in json.loads(r["meta"]).get("tasks", {}).items():
            entry["tasks"][element_id] = meta.get("title") or element_id
    return options


def get_task(rt, person, task_id, conn=None):
    """One task (any state) with its groups and Aktenzeichen, if ``person``'s tenant may see it; else
    NotFound — for another tenant's task exactly as for one that does not exist."""
    q = (select(TASKS, CASES.c.aktenzeichen, CASES.c.version_id, CASES.c.state.label("case_state"))
         .join(CASES, CASES.c.id == TASKS.c.case_id).where(TASKS.c.id == str(task_id)))
    if conn is None:
        with rt.reader.connect() as own:
            return get_task(rt, person, task_id, own)
    row = conn.execute(q).mappings().first()
    if row is None or not (person.is_admin or row["tenant"] == person.tenant):
        raise NotFound(f"no task {task_id}")
    task = dict(row)
    task["groups"] = _groups_of(conn, [task["id"]]).get(task["id"], [])
    task["due"] = iso(task["due_at"]) if task["due_at"] else None
    return task


def may_work(person, task):
    """May ``person`` claim or complete ``task``: its assignee, a member of one of its groups (while
    nobody has it), or a team lead of its tenant."""
    if task["assignee"] == person.name or person.is_teamlead:
        return True
    if task["assignee"] is not None:
        return False
    return not task["groups"] or bool(set(task["groups"]) & set(person.groups))


# --- claiming and assigning ---------------------------------------------------------------------------


def claim(rt, person, task_id):
    """Take an open, unassigned task of one's groups. Raises Taken when someone else has it."""
    return _set_assignee(rt, person, task_id, person.name, "task_claimed", expect_free=True)


def unclaim(rt, person, task_id):
    """Give a task one holds back to its groups (a team lead may release anyone's)."""
    return _set_assignee(rt, person, task_id, None, "task_unclaimed")


def assign(rt, person, task_ids, assignee):
    """A team lead assigns (or reassigns) tasks to ``assignee`` (a user of the tasks' tenant), or releases
    them with ``assignee=None``. Returns the number of tasks changed."""
    if not person.is_teamlead:
        raise Forbidden("Nur Teamleitungen können Aufgaben zuweisen.")
    from .users import get_user  # the users module is independent of the inbox; import where needed

    changed = 0
    for task_id in task_ids:
        task = get_task(rt, person, task_id)
        if assignee is not None:
            target = get_user(rt, name=assignee)
            if target.tenant != task["tenant"]:
                raise NotFound(f"no user {assignee}")
        if _set_assignee(rt, person, task_id, assignee, "task_assigned"):
            changed += 1
    return changed


def _set_assignee(rt, person, task_id, assignee, action, expect_free=False):
    for _attempt in range(RETRIES):
        task = get_task(rt, person, task_id)
        if task["state"] != "open":
            raise Taken(_closed_message(task))
        if expect_free and task["assignee"] not in (None, person.name):
            raise Taken(f"Die Aufgabe wurde bereits von {task['assignee']} übernommen.")
        if action == "task_claimed" and not may_work(person, task):
            raise Forbidden("Diese Aufgabe gehört zu keiner Ihrer Gruppen.")
        if action == "task_unclaimed" and task["assignee"] != person.name and not person.is_teamlead:
            raise Forbidden("Sie können nur eigene Aufgaben freigeben.")
        if task["assignee"] == assignee:
            return False
        try:
            with rt.db.begin() as conn:
                moved = conn.execute(update(TASKS).where(TASKS.c.id == task["id"], TASKS.c.state == "open",
                                                         _same(TASKS.c.assignee, task["assignee"]))
                                     .values(assignee=assignee))
                if moved.rowcount != 1:
                    raise ConcurrentUpdate("the task changed meanwhile")
                new = {"task_id": task["id"], "title": task["title"], "assignee": assignee}
                old = {"assignee": task["assignee"]} if task["assignee"] else None
                record(rt, task["case_id"], person.name, action, task["element_id"], old=old, new=new, conn=conn)
            return True
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"task {task_id} is changing too often at the moment; try again")


def _same(column, value):
    return column.is_(None) if value is None else column == value


def _closed_message(task):
    if task["state"] == "completed":
        by = f" von {task['completed_by']}" if task["completed_by"] else ""
        return f"Die Aufgabe wurde bereits{by} abgeschlossen."
    return "Die Aufgabe ist nicht mehr offen: der Vorgang ist ohne sie weitergegangen."


# --- drafts and completing ----------------------------------------------------------------------------


def save_draft(rt, person, task_id, values):
    """Keep what ``person`` typed into a task's form (text values as typed) without completing it."""
    task = get_task(rt, person, task_id)
    if task["state"] != "open":
        raise Taken(_closed_message(task))
    with rt.db.begin() as conn:
        conn.execute(delete(DRAFTS).where(DRAFTS.c.task_id == task["id"], DRAFTS.c.user_id == person.id))
        conn.execute(insert(DRAFTS).values(task_id=task["id"], user_id=person.id, data=json.dumps(values),
                                           saved_at=rt.clock()))


def load_draft(rt, person, task_id):
    """(values, saved_at) of the person's draft of a task, or (None, None)."""
    with rt.reader.connect() as conn:
        row = conn.execute(select(DRAFTS.c.data, DRAFTS.c.saved_at)
                           .where(DRAFTS.c.task_id == str(task_id), DRAFTS.c.user_id == person.id)).first()
    return (json.loads(row.data), row.saved_at) if row else (None, None)


def task_form(rt, task):
    """The JSON Schema form of a task (None when its model has none)."""
    with rt.reader.connect() as conn:
        version = rt.version(conn, task["version_id"])
    return version.meta["tasks"].get(task["element_id"], {}).get("form")


def complete(rt, person, task_id, data):
    """Complete a task as ``person``: check they may, validate the data (FormInvalid before anything
    changes), claim it on the way if it is unassigned, then advance the case. Drafts of it are dropped."""
    task = get_task(rt, person, task_id)
    if task["state"] != "open":
        raise AlreadyCompleted(_closed_message(task))
    if task["assignee"] not in (None, person.name):
        raise Taken(f"Die Aufgabe wurde bereits von {task['assignee']} übernommen.")
    if not may_work(person, task):
        raise Forbidden("Diese Aufgabe gehört zu keiner Ihrer Gruppen.")
    validate_form(task_form(rt, task), data)
    if task["assignee"] is None:
        claim(rt, person, task_id)
    result = complete_task(rt, task_id, person.name, data)
    with rt.db.begin() as conn:
        conn.execute(delete(DRAFTS).where(DRAFTS.c.task_id == task["id"]))
    return result


# --- the case page ------------------------------------------------------------------------------------


def case_tenant(rt, case_id):
    with rt.reader.connect() as conn:
        return conn.execute(select(CASES.c.tenant).where(CASES.c.id == int(case_id))).scalar()


def view_case(rt, person, case_id):
    """``case show`` of a case the person's tenant owns (NotFound otherwise), plus ``version_id``."""
    check_case_tenant(rt, person, case_id)
    case = get_case(rt, case_id)
    with rt.reader.connect() as conn:
        case["version_id"] = conn.execute(select(CASES.c.version_id).where(CASES.c.id == int(case_id))).scalar()
    return case


def element_states(rt, case_id):
    """Which BPMN elements of a case ran ("completed"), are ready ("active") or wait for a time or a
    message ("waiting"): {state: [element ids]} for marking the diagram."""
    with rt.reader.connect() as conn:
        case = conn.execute(select(CASES.c.workflow, CASES.c.version_id)
                            .where(CASES.c.id == int(case_id))).mappings().one()
        version = rt.version(conn, case["version_id"])
    wf = version.serializer.load(case["workflow"], version.spec, version.subprocess_specs)
    states = {"completed": set(), "active": set(), "waiting": set()}
    for name, state in (("completed", TaskState.COMPLETED), ("active", TaskState.READY | TaskState.STARTED),
                        ("waiting", TaskState.WAITING)):
        for t in wf.get_tasks(state=state):
            if t.task_spec.bpmn_id:
                states[name].add(t.task_spec.bpmn_id)
    states["completed"] -= states["active"] | states["waiting"]
    return {k: sorted(v) for k, v in states.items()}


def model_xml(rt, version_id, process_id):
    """The BPMN file a version was deployed from (the one that defines ``process_id``), as bytes."""
    with rt.reader.connect() as conn:
        files = conn.execute(select(ModelFile.path, ModelFile.content)
                             .where(ModelFile.version_id == int(version_id))).all()
    models = [f for f in files if f.path.lower().endswith((".bpmn", ".bpmn20.xml"))]
    for f in models:
        if f'id="{process_id}"'.encode() in f.content:
            return f.content
    if models:
        return models[0].content
    raise NotFound(f"no BPMN file for version {version_id}")


def add_comment(rt, person, case_id, text):
    """A caseworker's comment on a case; stored and written to the case's history in one transaction."""
    text = (text or "").strip()
    if not text:
        raise OzgflowError("Der Kommentar ist leer.")
    if len(text) > 10_000:
        raise OzgflowError("Der Kommentar ist zu lang (höchstens 10.000 Zeichen).")
    check_case_tenant(rt, person, case_id)
    for _attempt in range(RETRIES):
        try:
            with rt.db.begin() as conn:
                cid = conn.execute(insert(COMMENTS).values(case_id=int(case_id), author=person.name, text=text,
                                                           created_at=rt.clock()).returning(COMMENTS.c.id)).scalar_one()
                record(rt, case_id, person.name, "comment_added", None, new={"comment_id": cid, "text": text},
                       conn=conn)
            return cid
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"case {case_id} is changing too often at the moment; try again")


def check_case_tenant(rt, person, case_id):
    """NotFound unless the case exists and belongs to the person's tenant (admins: any tenant)."""
    tenant = case_tenant(rt, case_id)
    if tenant is None or not (person.is_admin or tenant == person.tenant):
        raise NotFound(f"no case {case_id}")


def comments(rt, case_id):
    """The comments of a case, oldest first."""
    with rt.reader.connect() as conn:
        rows = conn.execute(select(COMMENTS).where(COMMENTS.c.case_id == int(case_id))
                            .order_by(COMMENTS.c.id)).mappings().all()
    return [dict(r) for r in rows]


def task_uuid_ok(task_id):
    """Task ids are UUIDs; anything else is answered with 404 before touching the database."""
    try:
        UUID(str(task_id))
    except ValueError:
        return False
    return True

