"""The IKZ dashboard's figures: per city and per process, side by side — aggregates only, never a case.

Definitions (also in docs/operator.md, "IKZ-Dashboard"). The period is a range of calendar days in Berlin,
``start`` to ``end`` inclusive (default: 1 January of this year to today); "now" is the runtime's clock.

* **received** — cases started in the period (``case.created_at``), whatever became of them.
* **open** — cases not closed *now*, whenever they were received: every state but ``completed`` and
  ``terminated`` (running, waiting, error and suspended count as open).
* **overdue** — open cases *now* that have an open task past its due date (due dates come from the model:
  ``dueDate`` of a user task, usually a legal deadline computed by ``engine.deadlines``), or that are open
  longer than the city's processing deadline for the process (optional, tenant file:
  ``[tenants.<id>.ikz.processing_days]`` maps a process id to days; counted from receipt).
* **closed** / **median processing time** — cases whose state changed to ``completed`` in the period (time
  from the case's history); the median of (closed − received), in seconds.
* **time per step** — user tasks completed in the period, per task element of the model: how many and the
  median of (completed − created), in seconds (waiting in the inbox included: what the citizen waits).
* **media breaks** — letters of the period (``dispatch.created_at``) that went by post (``channel = 'post'``),
  next to all letters of the period.

Everything is counted by the database (GROUP BY); medians are taken in Python over the durations of the rows
concerned (for steps the database computes them); no workflow is loaded. The same on SQLite and PostgreSQL.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from statistics import median

from sqlalchemy import and_, exists, func, select

from .deadlines import BERLIN
from .errors import OzgflowError
from .schema import AuditEvent, Case, Dispatch, ProcessVersion, Task

CLOSED = ("completed", "terminated")


class PeriodError(OzgflowError):
    """A period that is not two dates, or ends before it starts."""


def period(start=None, end=None, now=None):
    """(start date, end date) from text (YYYY-MM-DD) or dates; defaults: 1 January of now's year, today."""
    today = (now or datetime.now(UTC)).astimezone(BERLIN).date()
    start = _date(start, "from") or date(today.year, 1, 1)
    end = _date(end, "to") or today
    if end < start:
        raise PeriodError(f"the period ends ({end}) before it starts ({start})")
    return start, end


def _date(value, name):
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PeriodError(f"'{name}' must be a date YYYY-MM-DD, got {value!r}") from None


def _utc_bounds(start, end):
    """The period as UTC moments [lo, hi): from the start of ``start`` to the end of ``end`` in Berlin."""
    lo = datetime.combine(start, time(0), BERLIN).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), BERLIN).astimezone(UTC)
    return lo, hi


def _iso(moment):
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _seconds(delta):
    return int(round(delta.total_seconds()))


def _median(values):
    return int(round(median(values))) if values else None


def figures(rt, start=None, end=None, now=None):
    """The dashboard: ``{"period", "as_of", "cities": [{tenant, name, processes: [...], totals}],
    "processes": [{process_id, name}]}``; see the module text for what each figure means."""
    now = now or rt.clock()
    start, end = period(start, end, now)
    lo, hi = _utc_bounds(start, end)
    cells = defaultdict(_cell)  # (tenant, process) -> figures
    names = {}
    with rt.reader.connect() as conn:
        for tenant, process, n in conn.execute(
                select(Case.tenant, Case.process_id, func.count()).where(Case.created_at >= lo, Case.created_at < hi)
                .group_by(Case.tenant, Case.process_id)):
            cells[tenant, process]["received"] = n
        _open_and_overdue(conn, rt, cells, now)
        _processing(conn, cells, lo, hi)
        _steps(conn, cells, lo, hi)
        for tenant, process, channel, n in conn.execute(
                select(Dispatch.tenant, Dispatch.process_id, Dispatch.channel, func.count())
                .where(Dispatch.created_at >= lo, Dispatch.created_at < hi)
                .group_by(Dispatch.tenant, Dispatch.process_id, Dispatch.channel)):
            cells[tenant, process]["letters"] += n
            if channel == "post":
                cells[tenant, process]["media_breaks"] += n
        for process, name, executable in conn.execute(
                select(ProcessVersion.process_id, ProcessVersion.name, ProcessVersion.executable)
                .order_by(ProcessVersion.process_id, ProcessVersion.version)):
            names[process] = (name or process, executable)
    return _shape(rt, cells, names, start, end, now)


def _cell():
    return {"received": 0, "open": 0, "overdue": 0, "closed": 0, "durations": [], "steps": {},
            "media_breaks": 0, "letters": 0, "order": {}}


def _open_and_overdue(conn, rt, cells, now):
    late_task = exists().where(Task.case_id == Case.id, Task.state == "open", Task.due_at < now)
    for tenant, process, late, n in conn.execute(
            select(Case.tenant, Case.process_id, late_task.label("late"), func.count())
            .where(Case.state.not_in(CLOSED)).group_by(Case.tenant, Case.process_id, "late")):
        cells[tenant, process]["open"] += n
        if late:
            cells[tenant, process]["overdue"] += n
    for tenant in rt.tenants.tenants.values():  # the city's own processing deadlines, where configured
        for process, days in ((tenant.settings.get("ikz") or {}).get("processing_days") or {}).items():
            cutoff = now - timedelta(days=float(days))
            n = conn.execute(select(func.count()).select_from(Case).where(
                Case.tenant == tenant.id, Case.process_id == process, Case.state.not_in(CLOSED),
                Case.created_at < cutoff, ~late_task)).scalar_one()
            if n:
                cells[tenant.id, process]["overdue"] += n


def _processing(conn, cells, lo, hi):
    # The moment a case closed is in its history (state_changed to "completed"); its text is ISO-8601 UTC,
    # compared in Python to stay independent of how each database compares text.
    rows = conn.execute(select(Case.tenant, Case.process_id, Case.created_at, AuditEvent.at)
                        .join(AuditEvent, AuditEvent.case_id == Case.id)
                        .where(Case.state == "completed", Case.updated_at >= lo, AuditEvent.action == "state_changed",
                               AuditEvent.new == '"completed"'))
    for tenant, process, created, at in rows:
        closed_at = _parse_at(at)
        if lo <= closed_at < hi:
            cell = cells[tenant, process]
            cell["closed"] += 1
            cell["durations"].append(_seconds(closed_at - created))


def _span(conn, start, end):
    """SQL for (end − start) in seconds, computed by the database (no datetime per row in Python)."""
    if conn.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _steps(conn, cells, lo, hi):
    done = and_(Task.state == "completed", Task.completed_at >= lo, Task.completed_at < hi)
    for tenant, process, element, seconds in conn.execute(
            select(Task.tenant, Task.process_id, Task.element_id, _span(conn, Task.created_at, Task.completed_at))
            .where(done)):
        step = cells[tenant, process]["steps"].setdefault(element, {"durations": []})
        step["durations"].append(int(round(float(seconds))))
    # titles, and the order in which cases reach the steps (their earliest creation), per process and element
    info = {(p, e): (title, first) for p, e, title, first in conn.execute(
        select(Task.process_id, Task.element_id, func.max(Task.title), func.min(Task.created_at)).where(done)
        .group_by(Task.process_id, Task.element_id))}
    for (_tenant, process), cell in cells.items():
        for element, step in cell["steps"].items():
            step["title"] = info[process, element][0]
        cell["order"] = {element: info[process, element][1] for element in cell["steps"]}


def _shape(rt, cells, names, start, end, now):
    # Processes shown: the deployed executable ones that serve a service (bound, or the generic intake) or have
    # cases, in name order; called-only models (e.g. nachforderung) have no cases of their own and stay out.
    from .intake import GENERIC_INTAKE

    served = {b.process for b in rt.tenants.bindings} | {GENERIC_INTAKE} | {p for (_t, p) in cells}
    shown = sorted({p for p, (_n, executable) in names.items() if executable and p in served}
                   | {p for (_t, p) in cells if p not in names}, key=lambda p: names.get(p, (p,))[0].lower())
    processes = [{"process_id": p, "name": names.get(p, (p,))[0]} for p in shown]
    cities = []
    for tenant in rt.tenants.tenants.values():
        rows = [_figures_of(p, cells.get((tenant.id, p)) or _cell()) for p in shown]
        all_durations = [d for p in shown for d in (cells.get((tenant.id, p)) or _cell())["durations"]]
        totals = {k: sum(r[k] for r in rows) for k in ("received", "open", "overdue", "closed", "media_breaks",
                                                        "letters")}
        totals["median_processing_seconds"] = _median(all_durations)
        cities.append({"tenant": tenant.id, "name": tenant.name, "processes": rows, "totals": totals})
    return {"period": {"from": start.isoformat(), "to": end.isoformat()}, "as_of": _iso(now),
            "processes": processes, "cities": cities}


def _figures_of(process, cell):
    steps = [{"element_id": element, "title": s["title"], "completed": len(s["durations"]),
              "median_seconds": _median(s["durations"])}
             for element, s in sorted(cell["steps"].items(), key=lambda e: (cell["order"][e[0]], e[0]))]
    return {"process_id": process, "received": cell["received"], "open": cell["open"], "overdue": cell["overdue"],
            "closed": cell["closed"], "median_processing_seconds": _median(cell["durations"]), "steps": steps,
            "media_breaks": cell["media_breaks"], "letters": cell["letters"]}
