"""SpiffWorkflow classes with the engine's seams: timers on the runtime's clock, service calls as jobs.

SpiffWorkflow 3.2.0's timer event definitions call ``datetime.now`` themselves, and fire whenever a step
happens to run after their due time. Ours differ in two ways:

* they read the time from ``script_engine.clock`` (the Runtime sets it to ``rt.clock``), so tests run on an
  injected clock and never sleep;
* where the script engine has a ``timer_gate``, a timer fires only when the gate allows it. The engine's gate
  (``engine.timers``) opens only inside a timer job, so every firing is made — and recorded as one
  ``timer_fired`` history entry — by that job, never as a side effect of some other step.

A spiff service task whose operator declares ``<spiffworkflow:retry retries="N" backoff_base="S"/>`` does not
call out inside the step: it waits (task state STARTED) and a ``service_call`` job makes the call outside any
transaction, retries it with backoff and finally completes the task (``engine.service_tasks``). Service tasks
without ``retry`` are called inline, as before.

The classes keep the library's class names, so stored specs and cases read the same with or without them:
``engine_config`` registers them in a serializer config under the library's type names.
"""

from copy import copy
from datetime import UTC, datetime, timedelta

from SpiffWorkflow.bpmn.specs import defaults as bpmn_defaults
from SpiffWorkflow.bpmn.specs.event_definitions import timer
from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask as CamundaBusinessRuleTask
from SpiffWorkflow.spiff.specs import defaults as spiff_defaults

from .camunda_tasks import CONVERTERS as CAMUNDA_CONVERTERS

Base = timer.TimerEventDefinition


def clock_of(my_task):
    """The time as the case's runtime sees it (the wall clock for a workflow run outside the engine)."""
    clock = getattr(my_task.workflow.script_engine, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def may_fire(my_task):
    gate = getattr(my_task.workflow.script_engine, "timer_gate", None)
    return gate is None or gate(my_task)


def _start_of_cycle(expression, now):
    """SpiffWorkflow's ``parse_iso_recurring_interval`` with ``now`` for "R3/PT10M" (no explicit start)."""
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        duration = Base.get_timedelta_from_start(Base.parse_iso_duration(components[1]), now)
        return cycles, now + duration, duration
    return Base.parse_iso_recurring_interval(expression)


class TimeDateEventDefinition(timer.TimeDateEventDefinition):
    """A timer at a date (``timeDate``)."""

    def has_fired(self, my_task):
        if my_task._get_internal_data("event_fired", False):
            return True
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            if isinstance(event_value, datetime):  # a variable holding a date (e.g. a legal deadline)
                event_value = event_value.astimezone(UTC).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if Base.parse_time_or_duration(event_value) <= clock_of(my_task) and may_fire(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class DurationTimerEventDefinition(timer.DurationTimerEventDefinition):
    """A timer a duration after the event is reached (``timeDuration``)."""

    def has_fired(self, my_task):
        if my_task._get_internal_data("event_fired", False):
            return True
        event_value = my_task._get_internal_data("event_value")
        now = clock_of(my_task)
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            due = now + Base.get_timedelta_from_start(Base.parse_iso_duration(expression), now)
            event_value = due.isoformat()
            my_task._set_internal_data(event_value=event_value)
        if Base.get_datetime(event_value) <= now and may_fire(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class CycleTimerEventDefinition(timer.CycleTimerEventDefinition):
    """A repeating timer (``timeCycle``, e.g. ``R3/PT10M``): each due cycle fires once."""

    def cycle_complete(self, my_task):
        event_value = my_task._get_internal_data("event_value")
        now = clock_of(my_task)
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            cycles, start, duration = _start_of_cycle(expression, now)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        event_value = dict(event_value)
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= now and may_fire(my_task):
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


class ServiceTask(spiff_defaults.ServiceTask):
    """A spiff service task; with a ``retry`` declaration it waits for a ``service_call`` job."""

    @property
    def in_background(self):
        return self.retries is not None

    def _execute(self, task):
        engine = task.workflow.script_engine
        if self.in_background and getattr(engine, "background_services", False):
            # Evaluated now, in the step, from the task's data: the job calls with exactly these values.
            task._set_internal_data(service_params={k: v["value"] for k, v in self.evaluate_params(task).items()})
            return None  # STARTED: the case waits until the job completes the task
        return super()._execute(task)


class _LetterSending:
    """A send task with a ``letter`` property (``engine.dispatch``) waits in the step that reaches it (STARTED):
    a ``letter_dispatch`` job renders, stores and sends the letter outside any transaction, or makes it a
    "Postversand" user task. Other send tasks throw their event as the library does."""

    def _run_hook(self, my_task):
        engine = my_task.workflow.script_engine
        letter_of = getattr(engine, "letter_of", None)
        config = letter_of(my_task) if letter_of is not None else None
        if config is None:
            return super()._run_hook(my_task)
        state = my_task._get_internal_data("letter_state")
        if state is None:
            my_task._set_internal_data(letter_state="pending")
            return None  # STARTED: the case waits for the letter_dispatch job
        if state == "post":  # the Postversand task was completed: the letter went by post now
            engine.letter_posted(my_task, config)
        return super()._run_hook(my_task)


class SpiffSendTask(_LetterSending, spiff_defaults.SendTask):
    pass


class BpmnSendTask(_LetterSending, bpmn_defaults.SendTask):
    pass


SpiffSendTask.__name__ = BpmnSendTask.__name__ = "SendTask"  # stored specs name the library's class


REPLACEMENTS = {
    timer.TimeDateEventDefinition: TimeDateEventDefinition,
    timer.DurationTimerEventDefinition: DurationTimerEventDefinition,
    timer.CycleTimerEventDefinition: CycleTimerEventDefinition,
    spiff_defaults.ServiceTask: ServiceTask,
    spiff_defaults.SendTask: SpiffSendTask,
    bpmn_defaults.SendTask: BpmnSendTask,
}


def engine_config(config):
    """A copy of a SpiffWorkflow serializer config in which our classes restore under the library's names.

    The library's classes stay registered too (the parsers make them, and deploy serializes what the parser
    made); ours come after them, so a stored spec is restored as ours."""
    result = copy(config)
    for original, ours in REPLACEMENTS.items():
        if original in config:
            result[ours] = config[original]
    if CamundaBusinessRuleTask in config:  # Camunda's connector-bound and decision tasks (engine.camunda_tasks)
        result.update(CAMUNDA_CONVERTERS)
    return result
