"""Messages to cases: correlation by case id, Aktenzeichen, FIT-Connect caseId and process variable; early
messages kept and handed over when the case waits; unmatched and expired ones dead-lettered."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from bpmn_snippets import HEAD

from engine.audit import verify_chain
from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.jobs import Worker
from engine.lean import Lean
from engine.messages import MessageInvalid, deliver, list_messages
from engine.models import Bundle

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
CATCH = """    <bpmn:intermediateCatchEvent id="Zahlung" name="Zahlung eingegangen">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:messageEventDefinition id="Def_Zahlung" messageRef="Msg_Zahlung">{extension}
      </bpmn:messageEventDefinition>
    </bpmn:intermediateCatchEvent>"""
SPIFF_VAR = """
        <bpmn:extensionElements><spiffworkflow:messageVariable>zahlung</spiffworkflow:messageVariable>
        </bpmn:extensionElements>"""


def process(pid, first_user_task=False, camunda=False):
    """start -> (user task "Pruefen") -> message catch "zahlung" -> end."""
    head = HEAD.format(pid=pid)
    if camunda:
        head = head.replace('xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"',
                            'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"')
    if first_user_task:
        body = """    <bpmn:userTask id="Pruefen" name="Antrag prüfen">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Pruefen" />
    <bpmn:sequenceFlow id="F2" sourceRef="Pruefen" targetRef="Zahlung" />"""
    else:
        body = '    <bpmn:sequenceFlow id="F2" sourceRef="StartEvent_1" targetRef="Zahlung" />'
        head = head.replace("<bpmn:outgoing>F1</bpmn:outgoing>", "<bpmn:outgoing>F2</bpmn:outgoing>")
    return (head + body + "\n" + CATCH.format(extension="" if camunda else SPIFF_VAR) + """
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Zahlung" targetRef="EndEvent_1" />
  </bpmn:process>
  <bpmn:message id="Msg_Zahlung" name="zahlung" />
</bpmn:definitions>
""").encode()


@pytest.fixture
def clock(rt):
    now = [T0]
    rt.clock = lambda: now[0]
    return now


def delivered_entries(rt, case_id):
    return [(h["element_id"], h["new"]["name"]) for h in get_case(rt, case_id)["history"]
            if h["action"] == "message_delivered"]


def test_delivered_by_case_id_and_payload_in_message_variable(rt, clock):
    deploy(rt, [Bundle({"m.bpmn": process("zahlen")})])
    [case] = start_case(rt, "zahlen", "marburg")
    result = deliver(rt, "zahlung", {"case_id": case["id"]}, {"status": "BOOKED", "betrag": "45.00"})
    assert result == {"status": "delivered", "case_id": case["id"], "message_id": None, "reason": None}
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed"
    assert shown["data"]["zahlung"] == {"status": "BOOKED", "betrag": "45.00"}
    assert delivered_entries(rt, case["id"]) == [("Zahlung", "zahlung")]
    with rt.reader.connect() as conn:
        assert verify_chain(conn, case["id"])[0]


def test_correlation_by_aktenzeichen_variable_and_fitconnect_case_id(rt, clock):
    deploy(rt, [Bundle({"m.bpmn": process("zahlen")})])
    a, b, c = (start_case(rt, "zahlen", "marburg", {"kassenzeichen": k})[0] for k in ("K-1", "K-2", "K-3"))
    assert deliver(rt, "zahlung", {"aktenzeichen": a["aktenzeichen"]})["case_id"] == a["id"]
    assert deliver(rt, "zahlung", {"kassenzeichen": "K-2", "tenant": "marburg"})["case_id"] == b["id"]
    with Lean.transaction(rt.db) as db:
        db.run("INSERT INTO submission (submission_id, fitconnect_case_id, tenant, destination_id, state, "
               "received_at, raw, case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               ("sub-3", "fc-case-3", "marburg", "dest", "accepted", db.ts(T0), "{}", c["id"]))
    assert deliver(rt, "zahlung", {"fitconnect_case_id": "fc-case-3"})["case_id"] == c["id"]
    assert all(get_case(rt, x["id"])["state"] == "completed" for x in (a, b, c))
    # Every key must match: the right Aktenzeichen of another tenant is no match.
    assert deliver(rt, "zahlung", {"aktenzeichen": a["aktenzeichen"], "tenant": "giessen"})["status"] == "dead"


def test_early_message_is_kept_and_handed_over_when_the_case_waits(rt, clock):
    deploy(rt, [Bundle({"m.bpmn": process("erst_pruefen", first_user_task=True)})])
    [case] = start_case(rt, "erst_pruefen", "giessen")
    kept = deliver(rt, "zahlung", {"case_id": case["id"]}, {"status": "BOOKED"})
    assert kept["status"] == "kept" and kept["message_id"]
    assert [m["id"] for m in list_messages(rt, "kept")] == [kept["message_id"]]
    [task] = list_tasks(rt, case_id=case["id"])
    clock[0] += timedelta(hours=2)
    assert complete_task(rt, task["id"], "anna")["state"] == "waiting"
    assert Worker(rt).run_due().done >= 1
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed" and shown["data"]["zahlung"] == {"status": "BOOKED"}
    assert delivered_entries(rt, case["id"]) == [("Zahlung", "zahlung")]
    assert list_messages(rt, "kept") == [] and len(list_messages(rt, "delivered")) == 1


def test_unmatched_message_is_dead_lettered_and_kept_ones_expire(rt, clock):
    deploy(rt, [Bundle({"m.bpmn": process("erst_pruefen", first_user_task=True)})])
    [case] = start_case(rt, "erst_pruefen", "giessen")
    dead = deliver(rt, "zahlung", {"aktenzeichen": "GI-000-1999-99999"}, {"x": 1})
    assert dead["status"] == "dead" and dead["reason"] == "no case matches the correlation"
    kept = deliver(rt, "zahlung", {"case_id": case["id"]}, ttl_seconds=3600)
    Worker(rt).run_due()  # the periodic expiry runs: nothing has expired yet
    assert [m["id"] for m in list_messages(rt, "kept")] == [kept["message_id"]]
    clock[0] += timedelta(hours=1, minutes=1)
    from engine.jobs import ensure_periodic

    ensure_periodic(rt)
    Worker(rt).run_due()
    assert [m["id"] for m in list_messages(rt, "dead")] == [dead["message_id"], kept["message_id"]]
    assert "time to live" in list_messages(rt, "dead")[1]["reason"]


def test_camunda_model_catches_with_its_own_definition_class(rt, clock):
    deploy(rt, [Bundle({"c.bpmn": process("camunda_zahlung", camunda=True)})])
    [case] = start_case(rt, "camunda_zahlung", "fulda")
    assert deliver(rt, "zahlung", {"case_id": case["id"]}, {"status": "BOOKED"})["status"] == "delivered"
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed" and shown["data"]["Zahlung_Response"] == {"status": "BOOKED"}


def test_invalid_messages_are_refused(rt):
    for name, correlation, payload in (("", {"case_id": 1}, {}), ("x", {}, {}), ("x", {"case_id": 1}, [1])):
        with pytest.raises(MessageInvalid):
            deliver(rt, name, correlation, payload)
    assert json.dumps(list_messages(rt, "dead")) == "[]"
