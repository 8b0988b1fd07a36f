"""Timers: every waiting BPMN timer of a case is a ``timer`` job; the job fires it.

SpiffWorkflow has no scheduler (``waiting_events()`` only tells due times). A step hook (``schedule_timers``)
looks at the case after every start, completion and step and schedules one job per waiting timer and due
time, in the step's transaction — keyed, so a timer that stays waiting over several steps keeps its one job.
When the job is due a worker fires that timer through ``step_case``, adding exactly one history entry
``timer_fired`` with the element id of the timer event (start, intermediate or boundary event; not the id of
its ``timerEventDefinition``).

Timers fire *only* in their job: the timer definitions of ``engine.specs`` ask the script engine's
``timer_gate``, which this module opens for one task at a time. So a timer that is already due when the case
reaches it (a date in the past, ``PT0S``) still fires through its job, a moment later, and is recorded like
any other — never silently inside some other step. A job whose timer no longer waits (the task it was
attached to was completed first, the case moved on) ends without touching the case.
"""

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import jobs
from .cases import SYSTEM, iso, step_case

KIND = "timer"
WAITING = TaskState.WAITING
_OPEN = ContextVar("ozgflow_open_timers", default=frozenset())


def gate(my_task):
    """The script engine's ``timer_gate``: may this timer task fire now? Only inside its own job."""
    return my_task.id in _OPEN.get()


@contextmanager
def opened(*task_ids):
    token = _OPEN.set(frozenset(task_ids))
    try:
        yield
    finally:
        _OPEN.reset(token)


def timer_definition(task):
    """The timer a task waits for: its own, or the one among the events of an event-based gateway."""
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return next((d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)), None)
    return definition if isinstance(definition, TimerEventDefinition) else None


def due_time(task):
    """When a waiting timer task is due (UTC), from the value its definition computed; None if unknown."""
    value = timer_definition(task).details(task).value
    if value is None:
        return None
    if isinstance(value, dict):  # a cycle with no cycles left
        return None
    due = TimerEventDefinition.parse_time_or_duration(value) if isinstance(value, str) else value
    if not isinstance(due, datetime):
        return None
    return (due if due.tzinfo else due.replace(tzinfo=UTC)).astimezone(UTC)


def waiting_timers(wf):
    """(task, due time) of every timer the case waits for, in the main process and its subprocesses."""
    found = []
    for workflow in (wf, *wf.subprocesses.values()):
        for t in workflow.tasks.values():
            if t.state == WAITING and timer_definition(t) is not None:
                due = due_time(t)
                if due is not None:
                    found.append((t, due))
    return found


def schedule_timers(db, ctx):
    """Step hook: one ``timer`` job per waiting timer and due time of the case (in the step's transaction)."""
    if not ctx.scan.waiting:  # no task waits for an event: nothing to look for (the common, cheap case)
        return
    rows = [(due, ctx.case_id, ctx.tenant,
             {"task": str(t.id), "element_id": t.task_spec.bpmn_id, "due": iso(due)},
             f"timer:{ctx.case_id}:{t.id}:{iso(due)}")
            for t, due in waiting_timers(ctx.workflow)]
    if rows:
        jobs.schedule_many(db, KIND, rows, ctx.now)


class _Stale(Exception):
    """The timer of a job no longer waits: nothing to fire, the case stays untouched."""


def _find(wf, task_id):
    for workflow in (wf, *wf.subprocesses.values()):
        task = workflow.tasks.get(task_id)
        if task is not None:
            return task
    return None


def fire(rt, job):
    """Job handler: fire the job's timer in one step of its case, recorded as ``timer_fired``."""
    task_id = UUID(job.payload["task"])

    def act(wf, trail, now):
        task = _find(wf, task_id)
        if task is None or task.state != WAITING:
            raise _Stale()
        before = timer_definition(task).details(task).value
        with opened(task_id):
            task.task_spec._update(task)
        after = timer_definition(task).details(task).value if task.state == WAITING else None
        if task.state == WAITING and after == before:
            raise _Stale()  # not due yet by the case's clock: the job was early; it is scheduled again
        trail.add(SYSTEM, "timer_fired", task.task_spec.bpmn_id,
                  new={"due": job.payload.get("due"), "at": iso(now),
                       "late_seconds": round((now - job.due_at).total_seconds(), 3)})
        return "fired"

    try:
        step_case(rt, job.case_id, act)
    except _Stale:
        pass  # the worker finishes the job; schedule_timers made a new one if the timer still waits


jobs.register(KIND, fire)
