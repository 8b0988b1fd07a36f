"""The second wall: what slips past the deploy check still runs without dangerous builtins, and a
failing service call is a workflow error, not SpiffWorkflow's NameError."""

import pytest
from bpmn_snippets import with_step

from engine.cases import get_case, start_case
from engine.deploy import deploy
from engine.models import Bundle
from engine.restricted import CodeViolation, RestrictedEnvironment, check_code


def test_environment_has_only_whitelisted_builtins():
    env = RestrictedEnvironment()
    assert env.evaluate("len([1, 2]) + abs(-1)", {}) == 3
    for forbidden in ("open('/etc/passwd')", "__import__('os')", "getattr(1, 'real')", "eval('1')"):
        with pytest.raises(NameError):
            env.evaluate(forbidden, {})


def test_script_uses_data_and_helpers():
    env = RestrictedEnvironment()
    ctx = {"amount": 4}
    env.execute("total = sum([amount, 1])\nwhen = (datetime(2026, 1, 1) + timedelta(days=1)).isoformat()", ctx)
    assert ctx["total"] == 5 and ctx["when"] == "2026-01-02T00:00:00"


@pytest.mark.parametrize("code", ["x.y", "a == 1 and b", "[i * 2 for i in items]", "max(a, b)"])
def test_ordinary_expressions_pass(code):
    check_code(code, "eval")


def test_expression_syntax_error_reported():
    with pytest.raises(CodeViolation, match="not a valid Python expression"):
        check_code("x ===", "eval")


def service_process(operation):
    return with_step(f"""    <bpmn:serviceTask id="Step" name="Call">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="answer">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="value" type="str" value="'hallo'" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>""", pid=f"svc_{operation}")


def test_service_task_calls_registered_connector(rt):
    deploy(rt, [Bundle({"s.bpmn": service_process("echo")})])
    [case] = start_case(rt, "svc_echo", "marburg")
    shown = get_case(rt, case["id"])
    assert shown["state"] == "completed" and shown["data"]["answer"] == {"value": "hallo"}
    assert any(h["action"] == "service_called" and h["element_id"] == "Step" for h in shown["history"])


def test_failing_service_is_a_workflow_error(rt):
    def broken(**_params):
        raise ConnectionError("E-Akte nicht erreichbar")

    rt.services["broken"] = broken
    rt.script_engine.services = rt.services
    deploy(rt, [Bundle({"s.bpmn": service_process("broken")})])
    [case] = start_case(rt, "svc_broken", "marburg")
    assert case["state"] == "error"
    assert "service 'broken' failed: ConnectionError: E-Akte nicht erreichbar" in case["error"]
    assert "NameError" not in case["error"]


def test_unregistered_service_is_named(rt):
    deploy(rt, [Bundle({"s.bpmn": service_process("nowhere")})])
    [case] = start_case(rt, "svc_nowhere", "marburg")
    assert "no connector registered for service 'nowhere'" in case["error"]
