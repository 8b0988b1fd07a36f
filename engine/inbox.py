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
from dataclasses import dataclass, replace
from urllib.parse import urlencode
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, case, delete, exists, false, func, insert, or_, select, union, union_all, update

from .applicants import cases_named, names_of
from .cases import complete_task, get_case, iso, record, validate_form
from .deputies import represented
from .errors import AlreadyCompleted, CaseSuspended, ConcurrentUpdate, NotFound, OzgflowError
from .schema import Case, Comment, ModelFile, ProcessVersion, SavedFilter, Task, TaskDraft, TaskGroup

TASKS, TASK_GROUPS, CASES = Task.__table__, TaskGroup.__table__, Case.__table__
DRAFTS, COMMENTS, FILTERS = TaskDraft.__table__, Comment.__table__, SavedFilter.__table__
SCOPES = ("all", "mine", "groups", "unassigned")
RETRIES = 5


class Forbidden(OzgflowError):
    """The person may see this task but not do this with it (not their group, not a team lead)."""


class Taken(OzgflowError):
    """The task is assigned to someone else (or no longer open): the caller should show who has it."""


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox is asked for. ``scope``: all (everything visible), mine, groups, unassigned.
    ``query``: an Aktenzeichen (prefix) or words of the applicant's name."""

    scope: str = "all"
    process: str | None = None
    element: str | None = None
    overdue: bool = False
    query: str | None = None
    tenant: str | None = None  # admins only: one tenant instead of all
    page: int = 1
    per_page: int = 25


# --- what a person sees ---------------------------------------------------------------------------------
#
# A caseworker sees a small set: the tasks assigned to them (or to someone they stand in for) and those
# offered to their groups. That set is read through the assignee and task_group indexes, and each task id
# it yields is checked against ix_task_inbox, which holds every column the inbox filters and sorts on — so
# the counts of all filters come from one pass over the set, and the page from a second one, without
# reading a task row. Team leads see their whole tenant: their counts are ranges of the tenant indexes.


def _groups_q(person):
    return select(TASK_GROUPS.c.task_id).where(TASK_GROUPS.c.group_name.in_(person.groups))


def _in_groups(person):
    """Per task row: is it offered to one of the person's groups (a probe of task_group's index)."""
    if not person.groups:
        return false()
    return exists(select(1).where(TASK_GROUPS.c.task_id == TASKS.c.id, TASK_GROUPS.c.group_name.in_(person.groups)))


def _assigned_to(names):
    return TASKS.c.assignee.in_(names) if len(names) > 1 else TASKS.c.assignee == names[0]


def _visible_ids(person, stands_in_for=()):
    """The ids of the open tasks assigned to ``person`` (or to those they stand in for) or offered to one
    of their groups."""
    mine = select(TASKS.c.id).where(_assigned_to([person.name, *stands_in_for]), TASKS.c.state == "open")
    return union_all(mine, _groups_q(person)) if person.groups else mine


def _scope_condition(person, scope, stands_in_for=(), by_tenant=False):
    """(condition, small): ``small`` when the condition picks few rows by its own index, so the tenant
    must not be read through the tenant index (the planner would scan the whole tenant otherwise).

    ``by_tenant``: the caseworker's set tested row by row while the tenant's tasks are read in due order —
    the quick way to a first page when the set is a good part of the tenant (see ``_page``)."""
    if scope == "mine":
        return TASKS.c.assignee == person.name, True
    if person.is_teamlead:
        if scope == "groups":
            return (TASKS.c.id.in_(_groups_q(person)) if person.groups else false()), True
        return (TASKS.c.assignee.is_(None) if scope == "unassigned" else None), False
    if by_tenant:
        if scope == "groups":
            return _in_groups(person), False
        if scope == "unassigned":
            return and_(TASKS.c.assignee.is_(None), _in_groups(person)), False
        return or_(_assigned_to([person.name, *stands_in_for]), _in_groups(person)), False
    if scope == "groups":
        return (TASKS.c.id.in_(_groups_q(person)) if person.groups else false()), True
    visible = TASKS.c.id.in_(_visible_ids(person, stands_in_for))
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
    if f.query:
        conds.append(TASKS.c.case_id.in_(_search(f.query, tenant)))
    return conds


def _search(query, tenant):
    """Case ids whose Aktenzeichen starts with ``query`` or whose applicant's name has words starting with
    its words — both prefix ranges of an index: (tenant, aktenzeichen) and applicant_word's key."""
    prefix = query.strip().upper()
    cases = select(CASES.c.id).where(CASES.c.aktenzeichen >= prefix, CASES.c.aktenzeichen < prefix + "\uffff")
    if tenant:
        cases = cases.where(CASES.c.tenant == tenant)
    named = cases_named(query, tenant)
    return cases if named is None else union(cases, named)


def _conditions(person, f, scope, overdue_at=None, stands_in_for=(), by_tenant=False):
    cond, small = _scope_condition(person, scope, stands_in_for, by_tenant)
    conds = _base_conditions(person, f, small) + ([cond] if cond is not None else [])
    return conds + ([TASKS.c.due_at < overdue_at] if overdue_at is not None else [])


COLUMNS = (TASKS.c.id, TASKS.c.case_id, TASKS.c.element_id, TASKS.c.title, TASKS.c.assignee, TASKS.c.due_at,
           TASKS.c.follow_up_at, TASKS.c.process_id, TASKS.c.tenant, CASES.c.aktenzeichen,
           CASES.c.state.label("case_state"))


def _page(conn, conds, offset, limit, dated_total=None):
    """Rows ``offset``… of ``conds``, soonest due first, no due date last — as two index-ordered reads
    (tasks with a due date, then those without), since "NULLs last" would defeat the due-date index.
    Each read picks the page's ids from the indexes first and only then reads those rows and cases."""
    def ids(extra, order, off, lim):
        q = (select(TASKS.c.id).where(*conds, extra).order_by(*order, TASKS.c.created_at, TASKS.c.id)
             .limit(lim).offset(off))
        return conn.execute(q).scalars().all()

    page = ids(TASKS.c.due_at.isnot(None), [TASKS.c.due_at], offset, limit)
    if len(page) < limit:
        skipped = offset if page else (dated_total if dated_total is not None
                                        else _count(conn, conds + [TASKS.c.due_at.isnot(None)]))
        page += ids(TASKS.c.due_at.is_(None), [], max(0, offset - skipped), limit - len(page))
    if not page:
        return []
    rows = {r["id"]: r for r in conn.execute(select(*COLUMNS).join(CASES, CASES.c.id == TASKS.c.case_id)
                                             .where(TASKS.c.id.in_(page))).mappings()}
    return [rows[i] for i in page if i in rows]


def _counts(conn, person, f, now, stands_in_for):
    """The number of tasks under each scope and overdue, and under each scope and overdue together
    (``<scope>+overdue``), for the filter's process, task and search."""
    if person.is_teamlead:
        counts = {s: _count(conn, _conditions(person, f, s)) for s in SCOPES}
        counts["overdue"] = counts["all+overdue"] = _count(conn, _conditions(person, f, "all", now))
        if f.overdue and f.scope != "all":
            counts[f"{f.scope}+overdue"] = _count(conn, _conditions(person, f, f.scope, now))
        return counts
    # One pass over the caseworker's small set, every count a sum over it.
    mine, free, late = TASKS.c.assignee == person.name, TASKS.c.assignee.is_(None), TASKS.c.due_at < now
    # A task of the set that is nobody's or someone else's came in through a group; only the person's own
    # (and those they stand in for) need the probe.
    names = [person.name, *stands_in_for]
    grouped = or_(free, TASKS.c.assignee.notin_(names), _in_groups(person)) if person.groups else false()
    sums = {"all": None, "mine": mine, "groups": grouped, "unassigned": free}
    columns = []
    for cond in sums.values():
        columns.append(_sum(cond))
        columns.append(_sum(late if cond is None else and_(cond, late)))
    conds = _base_conditions(person, f, True) + [TASKS.c.id.in_(_visible_ids(person, stands_in_for))]
    values = conn.execute(select(*columns).where(*conds)).one()
    counts = {}
    for i, scope in enumerate(sums):
        counts[scope], counts[f"{scope}+overdue"] = int(values[2 * i] or 0), int(values[2 * i + 1] or 0)
    counts["overdue"] = counts["all+overdue"]
    return counts


# How many of the tenant's open tasks a page may read, in due order, testing each against the caseworker's
# set, before going the other way (the set's ids, probed and sorted) is cheaper: a probe costs a few µs,
# reading the set ~1 µs per row of the groups' task_group entries.
TENANT_READ_LIMIT = 3000


def _read_by_tenant(conn, person, f, scope, total, offset):
    """Should a caseworker's page be read from the tenant's due-date index? When the set is a good part of
    the tenant and the page is near the top: rows to read ≈ (offset + page) × tenant's tasks / set size."""
    if person.is_teamlead or scope == "mine" or not total:
        return False
    tenant_open = _count(conn, [TASKS.c.state == "open", TASKS.c.tenant == person.tenant])
    return (offset + f.per_page) * tenant_open / total <= TENANT_READ_LIMIT


def _sum(cond):
    return func.count() if cond is None else func.sum(case((cond, 1), else_=0))


def list_inbox(rt, person, f=InboxFilter()):
    """One page of the open tasks ``person`` sees under filter ``f``, soonest due first (no due date
    last), with the total and the counts per scope. Items look like ``task list`` items plus
    ``aktenzeichen``, ``applicant``, ``process_id``, ``tenant``, ``overdue`` and ``on_behalf_of`` (the
    absent colleague whose task a deputy sees)."""
    now = rt.clock()
    scope = f.scope if f.scope in SCOPES else "all"
    f = replace(f, scope=scope, page=max(1, int(f.page)))
    with rt.reader.connect() as conn:
        stands_in_for = represented(conn, person, now)
        counts = _counts(conn, person, f, now, stands_in_for)
        total = counts[f"{scope}+overdue" if f.overdue else scope]
        offset = (f.page - 1) * f.per_page
        by_tenant = _read_by_tenant(conn, person, f, scope, total, offset)
        conds = _conditions(person, f, scope, now if f.overdue else None, stands_in_for, by_tenant)
        rows = _page(conn, conds, offset, f.per_page)
        groups = _groups_of(conn, [r["id"] for r in rows])
        names = names_of(conn, sorted({r["case_id"] for r in rows}))
    counts = {k: v for k, v in counts.items() if "+" not in k}
    items = [{"id": r["id"], "case_id": r["case_id"], "element_id": r["element_id"], "title": r["title"],
              "groups": groups.get(r["id"], []), "assignee": r["assignee"],
              "due": iso(r["due_at"]) if r["due_at"] else None,
              "follow_up": iso(r["follow_up_at"]) if r["follow_up_at"] else None, "aktenzeichen": r["aktenzeichen"],
              "applicant": names.get(r["case_id"]), "process_id": r["process_id"], "tenant": r["tenant"],
              "overdue": r["due_at"] is not None and r["due_at"] < now, "suspended": r["case_state"] == "suspended",
              "on_behalf_of": r["assignee"] if r["assignee"] in stands_in_for else None} for r in rows]
    return {"items": items, "total": total, "counts": counts, "page": f.page,
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
    task["follow_up"] = iso(task["follow_up_at"]) if task["follow_up_at"] else None  # Wiedervorlage
    # Vertretung: the person stands in for the absent assignee right now
    task["on_behalf_of"] = None
    if task["assignee"] not in (None, person.name) and task["state"] == "open" \
            and task["assignee"] in represented(conn, person, rt.clock()):
        task["on_behalf_of"] = task["assignee"]
    return task


def may_work(person, task):
    """May ``person`` claim or complete ``task``: its assignee, a member of one of its groups (while
    nobody has it), or a team lead of its tenant."""
    if task["assignee"] == person.name or person.is_teamlead or task.get("on_behalf_of"):
        return True
    if task["assignee"] is not None:
        return False
    return not task["groups"] or bool(set(task["groups"]) & set(person.groups))


# --- claiming and assigning ---------------------------------------------------------------------------


def claim(rt, person, task_id):
    """Take an open, unassigned task of one's groups — or, as deputy, a task of the absent colleague one
    stands in for (the history says on whose behalf). Raises Taken when someone else has it."""
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
            raise Taken(closed_message(task))
        if expect_free and task["assignee"] not in (None, person.name, task["on_behalf_of"]):
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
                if action == "task_claimed" and task["on_behalf_of"]:
                    new["on_behalf_of"] = task["on_behalf_of"]
                old = {"assignee": task["assignee"]} if task["assignee"] else None
                record(rt, task["case_id"], person.name, action, task["element_id"], old=old, new=new, conn=conn)
            return True
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"task {task_id} is changing too often at the moment; try again")


def _same(column, value):
    return column.is_(None) if value is None else column == value


def closed_message(task):
    """Why a task can no longer be worked (German, for people)."""
    if task["state"] == "completed":
        by = f" von {task['completed_by']}" if task["completed_by"] else ""
        return f"Die Aufgabe wurde bereits{by} abgeschlossen."
    return "Die Aufgabe ist nicht mehr offen: der Vorgang ist ohne sie weitergegangen."


# --- drafts and completing ----------------------------------------------------------------------------


def save_draft(rt, person, task_id, values):
    """Keep what ``person`` typed into a task's form (text values as typed) without completing it."""
    task = get_task(rt, person, task_id)
    if task["state"] != "open":
        raise Taken(closed_message(task))
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


def task_meta(rt, task):
    """What the model says about a task (title, groups, form, four_eyes_of …), from its version."""
    with rt.reader.connect() as conn:
        version = rt.version(conn, task["version_id"])
    return version.meta["tasks"].get(task["element_id"], {})


def task_form(rt, task):
    """The JSON Schema form of a task (None when its model has none)."""
    return task_meta(rt, task).get("form")


def four_eyes_conflict(rt, person, task):
    """Vier-Augen-Prinzip: when the task's model names an earlier task (``four_eyes_of``) that ``person``
    completed in this case, the German reason why they may not complete this one; else None."""
    earlier = task_meta(rt, task).get("four_eyes_of")
    if not earlier:
        return None
    with rt.reader.connect() as conn:
        title = conn.execute(select(TASKS.c.title).where(
            TASKS.c.case_id == task["case_id"], TASKS.c.element_id == earlier, TASKS.c.state == "completed",
            TASKS.c.completed_by == person.name).limit(1)).scalar()
    if title is None:
        return None
    return (f"Vier-Augen-Prinzip: Sie haben in diesem Vorgang „{title}“ erledigt und dürfen diese Aufgabe "
            "deshalb nicht selbst abschließen. Eine andere Person muss sie übernehmen.")


SUSPENDED_MESSAGE = ("Der Vorgang ist angehalten: seine Aufgaben können erst erledigt werden, wenn eine "
                     "Administratorin oder ein Administrator ihn fortsetzt.")


def complete(rt, person, task_id, data):
    """Complete a task as ``person``: check they may, validate the data (FormInvalid before anything
    changes), claim it on the way if it is unassigned, then advance the case. Drafts of it are dropped."""
    task = get_task(rt, person, task_id)
    if task["state"] != "open":
        raise AlreadyCompleted(closed_message(task))
    if task["case_state"] == "suspended":  # engine.suspension (engine.cases refuses it as well)
        raise CaseSuspended(SUSPENDED_MESSAGE)
    if task["assignee"] not in (None, person.name, task["on_behalf_of"]):
        raise Taken(f"Die Aufgabe wurde bereits von {task['assignee']} übernommen.")
    if not may_work(person, task):
        raise Forbidden("Diese Aufgabe gehört zu keiner Ihrer Gruppen.")
    reason = four_eyes_conflict(rt, person, task)
    if reason:
        raise Forbidden(reason)
    validate_form(task_form(rt, task), data)
    if task["assignee"] is None or task["on_behalf_of"]:
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
    """``case show`` of a case the person's tenant owns (NotFound otherwise), plus ``version_id`` and
    ``applicant`` (the applicant's name, if the application names one)."""
    check_case_tenant(rt, person, case_id)
    case = get_case(rt, case_id)
    with rt.reader.connect() as conn:
        case["version_id"] = conn.execute(select(CASES.c.version_id).where(CASES.c.id == int(case_id))).scalar()
        case["applicant"] = names_of(conn, [int(case_id)]).get(int(case_id))
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



# --- saved filters --------------------------------------------------------------------------------------

FILTER_KEYS = ("scope", "process", "task", "overdue", "q", "tenant")


def save_filter(rt, person, name, params):
    """Save the inbox filter ``params`` (the inbox's query parameters; others are dropped) under ``name``
    for ``person``; a filter of the same name is replaced. Returns its id."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise OzgflowError("Bitte geben Sie dem Filter einen Namen (höchstens 100 Zeichen).")
    query = urlencode([(k, str(params[k])[:200]) for k in FILTER_KEYS if params.get(k)])
    with rt.db.begin() as conn:
        conn.execute(delete(FILTERS).where(FILTERS.c.user_id == person.id, FILTERS.c.name == name))
        return conn.execute(insert(FILTERS).values(user_id=person.id, name=name, query=query)
                            .returning(FILTERS.c.id)).scalar_one()


def saved_filters(rt, person):
    """The person's saved filters, by name: dicts with id, name and query (a query string for the inbox)."""
    with rt.reader.connect() as conn:
        rows = conn.execute(select(FILTERS.c.id, FILTERS.c.name, FILTERS.c.query)
                            .where(FILTERS.c.user_id == person.id).order_by(FILTERS.c.name)).mappings().all()
    return [dict(r) for r in rows]


def delete_filter(rt, person, filter_id):
    """Delete one of the person's saved filters; NotFound for anyone else's."""
    with rt.db.begin() as conn:
        gone = conn.execute(delete(FILTERS).where(FILTERS.c.id == int(filter_id), FILTERS.c.user_id == person.id))
    if gone.rowcount != 1:
        raise NotFound(f"no filter {filter_id}")
