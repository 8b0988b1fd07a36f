"""Service tasks with retries: called by a job outside the step, retried with backoff, an incident after the
last try while the case waits (nothing lost), retried by an operator. Plus the ``legal_deadline`` connector
feeding a timer."""

from datetime import UTC, datetime, timedelta

import pytest
from bpmn_snippets import HEAD, with_step

from engine.cases import get_case, start_case
from engine.deploy import deploy
from engine.jobs import Worker, list_incidents, retry_incident
from engine.models import Bundle

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def service_process(operation, retries=2, backoff=30, timeout=None):
    props = ""
    if timeout is not None:
        props = f"""
        <spiffworkflow:properties><spiffworkflow:property name="timeout" value="{timeout}" />
        </spiffworkflow:properties>"""
    return with_step(f"""    <bpmn:serviceTask id="Step" name="An die E-Akte">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="antwort">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="akz" type="str" value="aktenzeichen" />
          </spiffworkflow:parameters>
          <spiffworkflow:retry retries="{retries}" backoff_base="{backoff}" />
        </spiffworkflow:serviceTaskOperator>{props}
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>""", pid=f"svc_{operation}")


class Flaky:
    """An outside system that fails ``failures`` times, then answers."""

    def __init__(self, failures):
        self.failures, self.calls = failures, []

    def __call__(self, akz, idempotency_key=None):
        self.calls.append((akz, idempotency_key))
        if len(self.calls) <= self.failures:
            raise ConnectionError("E-Akte nicht erreichbar")
        return {"gespeichert": akz}


@pytest.fixture
def clock(rt):
    now = [T0]
    rt.clock = lambda: now[0]
    return now


def history(rt, case_id):
    return [(h["action"], h["element_id"]) for h in get_case(rt, case_id)["history"]]


def test_call_happens_in_the_background_and_is_retried_with_backoff(rt, clock):
    eakte = rt.services["eakte"] = Flaky(failures=2)
    deploy(rt, [Bundle({"s.bpmn": service_process("eakte")})])
    [case] = start_case(rt, "svc_eakte", "marburg", {"aktenzeichen": "MR-1"})
    assert case["state"] == "running" and eakte.calls == []  # not called inside the step: a job will
    w = Worker(rt)
    assert w.run_due().retried == 1
    clock[0] += timedelta(seconds=29)
    assert w.run_due().ran == 0
    clock[0] += timedelta(seconds=1)
    assert w.run_due().retried == 1  # 2nd failure; next wait 60 s
    clock[0] += timedelta(seconds=60)
    assert w.run_due().done == 1
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed" and shown["data"]["antwort"] == {"gespeichert": "MR-1"}
    assert [a for a in history(rt, case["id"]) if a[0] == "service_called"] == [("service_called", "Step")]
    assert len({key for _, key in eakte.calls}) == 1  # the same idempotency key on every try


def test_after_the_last_try_an_incident_and_the_case_waits_until_retried(rt, clock):
    eakte = rt.services["eakte"] = Flaky(failures=3)
    deploy(rt, [Bundle({"s.bpmn": service_process("eakte", retries=1, backoff=5)})])
    [case] = start_case(rt, "svc_eakte", "marburg", {"aktenzeichen": "MR-2"})
    w = Worker(rt)
    w.run_due()
    clock[0] += timedelta(seconds=5)
    assert w.run_due().incidents == 1
    [incident] = list_incidents(rt)
    assert incident["case_id"] == case["id"] and "E-Akte nicht erreichbar" in incident["last_error"]
    assert get_case(rt, case["id"])["state"] == "running"  # the case is not lost: it waits at the task
    assert ("incident_opened", "Step") in history(rt, case["id"])
    retry_incident(rt, incident["id"], "operator")
    assert w.run_due().retried == 1  # 3rd failure: a fresh set of tries
    clock[0] += timedelta(seconds=5)
    assert w.run_due().done == 1
    assert get_case(rt, case["id"])["state"] == "completed"
    assert len(eakte.calls) == 4


def test_a_call_that_hangs_times_out(rt, clock):
    import threading

    release = threading.Event()
    rt.services["langsam"] = lambda akz: release.wait(5) and {"ok": True}
    deploy(rt, [Bundle({"s.bpmn": service_process("langsam", retries=0, timeout=0.2)})])
    start_case(rt, "svc_langsam", "marburg", {"aktenzeichen": "MR-3"})
    try:
        assert Worker(rt).run_due().incidents == 1
        assert "did not answer within 0.2 s" in list_incidents(rt)[0]["last_error"]
    finally:
        release.set()


def test_service_tasks_without_retry_still_run_inline(rt):
    xml = service_process("echo").replace(b'          <spiffworkflow:retry retries="2" backoff_base="30" />\n', b"")
    deploy(rt, [Bundle({"s.bpmn": xml})])
    [case] = start_case(rt, "svc_echo", "marburg", {"aktenzeichen": "MR-4"})
    assert case["state"] == "completed"


def test_legal_deadline_connector_feeds_a_timer(rt, clock):
    """A service task computes the §42a end date; the timer waits for it."""
    xml = (HEAD.format(pid="fiktion") + """    <bpmn:serviceTask id="Frist" name="Frist berechnen">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="legal_deadline" resultVariable="frist">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="start" type="str" value="unterlagen_vollstaendig" />
            <spiffworkflow:parameter id="months" type="int" value="3" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:intermediateCatchEvent id="Fiktion" name="Genehmigung gilt als erteilt">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="T"><bpmn:timeDate>frist["ends_at"]</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Frist" />
    <bpmn:sequenceFlow id="F2" sourceRef="Frist" targetRef="Fiktion" />
    <bpmn:sequenceFlow id="F3" sourceRef="Fiktion" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""").encode()
    deploy(rt, [Bundle({"f.bpmn": xml})])
    [case] = start_case(rt, "fiktion", "wetzlar", {"unterlagen_vollstaendig": "2025-11-30T14:00:00+00:00"})
    assert get_case(rt, case["id"])["data"]["frist"]["ends_on"] == "2026-03-02"  # 28 Feb 2026 is a Saturday
    clock[0] = datetime(2026, 3, 2, 22, 59, tzinfo=UTC)
    assert Worker(rt).run_due().ran == 0
    clock[0] = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)  # midnight in Berlin
    assert Worker(rt).run_due().done == 1
    assert ("timer_fired", "Fiktion") in history(rt, case["id"])
