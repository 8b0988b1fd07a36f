"""``step_case``: changing a waiting case from outside (how timers and messages reach a case)."""

import pytest
from bpmn_snippets import with_step
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

from engine.audit import verify_chain
from engine.cases import get_case, start_case, step_case
from engine.deploy import deploy
from engine.errors import CaseError
from engine.models import Bundle

MESSAGE_PROCESS = with_step("""    <bpmn:intermediateCatchEvent id="Step" name="Nachweis eingegangen">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:messageEventDefinition id="Def" messageRef="Msg_Nachweis" />
    </bpmn:intermediateCatchEvent>""", pid="wait_for_message").replace(
    b"  </bpmn:process>", b"  </bpmn:process>\n  <bpmn:message id=\"Msg_Nachweis\" name=\"nachweis\" />")


def test_message_reaches_waiting_case(rt):
    deploy(rt, [Bundle({"m.bpmn": MESSAGE_PROCESS})])
    [case] = start_case(rt, "wait_for_message", "giessen")
    assert case["state"] == "waiting"

    def deliver(wf, trail, now):
        wf.send_event(BpmnEvent(MessageEventDefinition("nachweis"), {"datei": "nachweis.pdf"}))
        trail.add("mailbox", "message_delivered", "Step", new={"name": "nachweis"})
        return "delivered"

    result = step_case(rt, case["id"], deliver)
    assert result == {"case_id": case["id"], "state": "completed", "result": "delivered"}
    shown = get_case(rt, case["id"])
    assert [h["action"] for h in shown["history"]][-2:] == ["message_delivered", "state_changed"]
    with rt.reader.connect() as conn:
        assert verify_chain(conn, case["id"])[0]


def test_failing_act_changes_nothing(rt):
    deploy(rt, [Bundle({"m.bpmn": MESSAGE_PROCESS})])
    [case] = start_case(rt, "wait_for_message", "giessen")
    before = get_case(rt, case["id"])

    def broken(wf, trail, now):
        trail.add("x", "message_delivered")
        raise CaseError("nothing waits for 'unknown'")

    with pytest.raises(CaseError):
        step_case(rt, case["id"], broken)
    assert get_case(rt, case["id"]) == before
