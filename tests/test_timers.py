"""Timers on an injected clock: start, intermediate and boundary events with dates, durations and cycles.

Nothing sleeps: the runtime's clock is a value the test moves, and ``Worker.run_due`` is the burst that runs
what is due at that moment. Each firing must be exactly one ``timer_fired`` history entry carrying the id of
the timer *event*.
"""

from datetime import UTC, datetime, timedelta

import pytest
from bpmn_snippets import HEAD, with_step

from engine.audit import verify_chain
from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.jobs import Worker
from engine.models import Bundle

T0 = datetime(2025, 1, 31, 8, 0, tzinfo=UTC)


class Clock:
    """The injected clock: ``rt.clock = Clock(...)``; ``advance`` moves it."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(rt):
    rt.clock = Clock(T0)
    return rt.clock


def timer_xml(kind, expression, tag="intermediateCatchEvent", element="Step", extra=""):
    return f"""    <bpmn:{tag} id="{element}" name="Frist"{extra}>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TimerDef_{element}"><bpmn:{kind}>{expression}</bpmn:{kind}>
      </bpmn:timerEventDefinition>
    </bpmn:{tag}>"""


def fired(rt, case_id):
    return [(h["element_id"], h["new"]["due"]) for h in get_case(rt, case_id)["history"]
            if h["action"] == "timer_fired"]


def pending_timer_jobs(rt):
    with rt.db.connect() as conn:
        return conn.exec_driver_sql("SELECT COUNT(*) FROM job WHERE kind = 'timer'").scalar_one()


def test_duration_timer_fires_when_due_once(rt, clock):
    deploy(rt, [Bundle({"t.bpmn": with_step(timer_xml("timeDuration", '"PT48H"'), pid="warten")})])
    [case] = start_case(rt, "warten", "marburg")
    assert case["state"] == "waiting"
    worker = Worker(rt)
    clock.advance(hours=47, minutes=59)
    assert worker.run_due().ran == 0
    clock.advance(minutes=1)
    assert worker.run_due().done == 1
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed"
    assert fired(rt, case["id"]) == [("Step", "2025-02-02T08:00:00.000000Z")]
    entry = next(h for h in shown["history"] if h["action"] == "timer_fired")
    assert entry["element_id"] == "Step" and entry["new"]["late_seconds"] == 0.0
    assert worker.run_due().ran == 0 and pending_timer_jobs(rt) == 0
    with rt.reader.connect() as conn:
        assert verify_chain(conn, case["id"])[0]


def test_date_timer_and_a_date_in_the_past_fire_through_their_job(rt, clock):
    deploy(rt, [Bundle({"t.bpmn": with_step(timer_xml("timeDate", '"2025-03-01T00:00:00+01:00"'), pid="datum")})])
    [case] = start_case(rt, "datum", "marburg")
    clock.now = datetime(2025, 2, 28, 22, 59, tzinfo=UTC)
    assert Worker(rt).run_due().ran == 0
    clock.advance(minutes=1)
    assert Worker(rt).run_due().done == 1
    assert fired(rt, case["id"]) == [("Step", "2025-02-28T23:00:00.000000Z")]
    # Already due when reached: the step that reaches it does not fire it silently; its job does, at once.
    [late] = start_case(rt, "datum", "marburg")
    assert late["state"] == "waiting" and fired(rt, late["id"]) == []
    assert Worker(rt).run_due().done == 1
    assert get_case(rt, late["id"])["state"] == "completed" and len(fired(rt, late["id"])) == 1


def test_timer_due_from_a_variable_holding_a_computed_deadline(rt, clock):
    deploy(rt, [Bundle({"t.bpmn": with_step(timer_xml("timeDate", "frist_ende"), pid="frist")})])
    [case] = start_case(rt, "frist", "marburg", {"frist_ende": "2025-04-30T22:00:00+00:00"})
    clock.now = datetime(2025, 4, 30, 22, 0, tzinfo=UTC)
    assert Worker(rt).run_due().done == 1
    assert fired(rt, case["id"]) == [("Step", "2025-04-30T22:00:00.000000Z")]


BOUNDARY = """    <bpmn:userTask id="Step" name="Antrag prüfen">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="{bid}" attachedToRef="Step" cancelActivity="{cancel}">
      <bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TD_{bid}"><bpmn:{kind}>{expression}</bpmn:{kind}></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:{after} id="After" name="Eskalation">
      <bpmn:incoming>F3</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing>{script}
    </bpmn:{after}>
    <bpmn:endEvent id="End_2"><bpmn:incoming>F4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="{bid}" targetRef="After" />
    <bpmn:sequenceFlow id="F4" sourceRef="After" targetRef="End_2" />"""


def boundary_process(pid, bid, kind, expression, cancel, after="userTask", script=""):
    return with_step(BOUNDARY.format(bid=bid, kind=kind, expression=expression, cancel=str(cancel).lower(),
                                     after=after, script=script), pid=pid)


def test_interrupting_boundary_timer_escalates_overdue_task(rt, clock):
    deploy(rt, [Bundle({"b.bpmn": boundary_process("eskalation", "Ueberfaellig", "timeDuration", '"P14D"',
                                                   cancel=True)})])
    [case] = start_case(rt, "eskalation", "giessen")
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["Step"]
    clock.advance(days=14)
    assert Worker(rt).run_due().done == 1
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["After"]  # the team lead's task
    assert fired(rt, case["id"]) == [("Ueberfaellig", "2025-02-14T08:00:00.000000Z")]


def test_boundary_timer_of_a_task_done_in_time_never_fires(rt, clock):
    deploy(rt, [Bundle({"b.bpmn": boundary_process("rechtzeitig", "Ueberfaellig", "timeDuration", '"P14D"',
                                                   cancel=True)})])
    [case] = start_case(rt, "rechtzeitig", "giessen")
    [task] = list_tasks(rt, case_id=case["id"])
    clock.advance(days=3)
    assert complete_task(rt, task["id"], "anna")["state"] == "completed"
    clock.advance(days=30)
    assert Worker(rt).run_due().done == 2  # the stale job ends without touching the case; the e-file export
    assert fired(rt, case["id"]) == [] and pending_timer_jobs(rt) == 0
    assert [h["action"] for h in get_case(rt, case["id"])["history"]][-2:] == ["state_changed", "efile_exported"]


def test_non_interrupting_cycle_reminds_each_period_then_stops(rt, clock):
    script = "\n      <bpmn:script>erinnerungen = erinnerungen + 1</bpmn:script>"
    deploy(rt, [Bundle({"c.bpmn": boundary_process("erinnern", "Erinnerung", "timeCycle", '"R2/P1D"',
                                                   cancel=False, after="scriptTask", script=script)})])
    [case] = start_case(rt, "erinnern", "wetzlar", {"erinnerungen": 0})
    worker = Worker(rt)
    for _day in range(4):
        clock.advance(days=1)
        worker.run_due()
    shown = get_case(rt, case["id"])
    # Each reminder runs on its own branch, with the data the boundary event saw (SpiffWorkflow copies it).
    assert [h["element_id"] for h in shown["history"] if h["action"] == "script_run"] == ["After", "After"]
    assert fired(rt, case["id"]) == [("Erinnerung", "2025-02-01T08:00:00.000000Z"),
                                     ("Erinnerung", "2025-02-02T08:00:00.000000Z")]
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["Step"]  # still open


START = HEAD.replace('<bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>', """<bpmn:outgoing>F1</bpmn:outgoing>
      <bpmn:timerEventDefinition id="StartTimer"><bpmn:timeDate>"2025-02-03T07:00:00+00:00"</bpmn:timeDate>
      </bpmn:timerEventDefinition></bpmn:startEvent>""")


def test_timer_start_event_waits_then_runs(rt, clock):
    xml = (START.format(pid="montags") + """    <bpmn:userTask id="Step" name="Wochenbericht">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Step" />
    <bpmn:sequenceFlow id="F2" sourceRef="Step" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""").encode()
    deploy(rt, [Bundle({"s.bpmn": xml})])
    [case] = start_case(rt, "montags", "fulda")
    assert case["state"] == "waiting" and list_tasks(rt, case_id=case["id"]) == []
    clock.now = datetime(2025, 2, 3, 7, 0, tzinfo=UTC)
    assert Worker(rt).run_due().done == 1
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["Step"]
    assert fired(rt, case["id"]) == [("StartEvent_1", "2025-02-03T07:00:00.000000Z")]


def test_camunda_literal_duration_timer(rt, clock):
    xml = with_step(timer_xml("timeDuration", "PT5M"), pid="camunda_timer").replace(
        b' xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"',
        b' xmlns:camunda="http://camunda.org/schema/1.0/bpmn"')
    deploy(rt, [Bundle({"c.bpmn": xml})])
    [case] = start_case(rt, "camunda_timer", "limburg")
    clock.advance(minutes=5)
    assert Worker(rt).run_due().done == 1
    assert get_case(rt, case["id"])["state"] == "completed"
    assert fired(rt, case["id"]) == [("Step", "2025-01-31T08:05:00.000000Z")]
