"""Camunda expressions (${…}, #{…}) translated into restricted Python at deploy; the rest refused clearly."""

from pathlib import Path

import pytest
from bpmn_snippets import with_step

from engine.camunda_expressions import ExpressionUnsupported, translate
from engine.errors import DeployError
from engine.models import Bundle, compile_bundle
from engine.restricted import check_code


@pytest.mark.parametrize("camunda, python", [
    ("${approved}", "approved"),
    ("${!approved}", "(not approved)"),
    ("#{approved}", "approved"),
    ("${amount > 1000}", "amount > 1000"),
    ("${amount <= 5.5}", "amount <= 5.5"),
    ("${status == 'ok'}", "status == 'ok'"),
    ('${status != "ok"}', "status != 'ok'"),
    ("${a && b || !c}", "a and b or (not c)"),
    ("${not a and b or c}", "(not a) and b or c"),
    ("${(a || b) && c}", "(a or b) and c"),
    ("${!a == b}", "(not a) == b"),  # JUEL: ! binds tighter than ==
    ("${x eq 'y' and n ge 3}", "x == 'y' and n >= 3"),
    ("${x != null}", "x != None"),
    ("${done == true}", "done == True"),
    ("  ${ approved }  ", "approved"),
    (r"${name == 'it\'s'}", "name == \"it's\""),
])
def test_the_subset_translates_to_restricted_python(camunda, python):
    assert translate(camunda) == python
    check_code(python, "eval")


@pytest.mark.parametrize("camunda, reason", [
    ("${invoice.amount > 5}", "property paths"),
    ("${dateTime().plusDays(2)}", "method calls"),
    ("${a + 1}", "'+ 1'"),
    ("${empty x}", "unexpected 'x'"),
    ("${a < b < c}", "unexpected '<'"),
    ("${continue == true}", "reserved word"),
    ("${__class__}", "leading '_'"),
    ("${a ? b : c}", "'? b : c'"),
    ("${(a}", "ends too early"),
    ("${}", "ends too early"),
    ("approved is ${approved}", "only one ${…}"),
    ("${a} ${b}", "only one ${…}"),
    ("${" + "(" * 40 + "a" + ")" * 40 + "}", "nested too deeply"),
    ("${" + "!" * 40 + "a}", "nested too deeply"),
])
def test_anything_else_is_refused_with_a_reason(camunda, reason):
    with pytest.raises(ExpressionUnsupported) as info:
        translate(camunda)
    assert reason in str(info.value)
    assert "Supported:" in str(info.value) or "only one" in str(info.value)


CAMUNDA_GATEWAY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="Defs" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="approval" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="Gw" default="F_no"><bpmn:incoming>F1</bpmn:incoming>
      <bpmn:outgoing>F_yes</bpmn:outgoing><bpmn:outgoing>F_no</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="Approve" name="Approve" camunda:candidateGroups="teamleitung">
      <bpmn:incoming>F_yes</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F3</bpmn:incoming><bpmn:incoming>F_no</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Gw" />
    <bpmn:sequenceFlow id="F_yes" sourceRef="Gw" targetRef="Approve">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        >{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F_no" sourceRef="Gw" targetRef="End_1" />
    <bpmn:sequenceFlow id="F3" sourceRef="Approve" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def gateway_model(condition):
    return CAMUNDA_GATEWAY.replace("{condition}", condition.replace("&", "&amp;").replace("<", "&lt;")).encode()


@pytest.mark.parametrize("condition, data, approves", [
    ("${amount > 1000 && status == 'ok'}", {"amount": 1500, "status": "ok"}, True),
    ("${amount > 1000 && status == 'ok'}", {"amount": 500, "status": "ok"}, False),
    ("${!approved}", {"approved": False}, True),
    ("#{approved || vip}", {"approved": False, "vip": False}, False),
])
def test_a_camunda_gateway_condition_runs(rt, condition, data, approves):
    from engine.cases import list_tasks, start_case
    from engine.deploy import deploy

    deploy(rt, [Bundle({"approval.bpmn": gateway_model(condition)})])
    [case] = start_case(rt, "approval", "marburg", data)
    assert case["error"] is None
    tasks = list_tasks(rt, case_id=case["id"])
    assert [t["element_id"] for t in tasks] == (["Approve"] if approves else [])


def test_unsupported_expression_refused_at_deploy_with_line_and_element():
    with pytest.raises(DeployError) as info:
        compile_bundle(Bundle({"approval.bpmn": gateway_model("${invoice.amount > 1000}")}))
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.element) == ("approval.bpmn", 15, "F_yes")  # the line of the text
    assert "property paths" in problem.message


def test_plain_python_expressions_keep_working():
    compiled = compile_bundle(Bundle({"approval.bpmn": gateway_model("amount > 1000 and status == 'ok'")}))
    assert compiled[0].process_id == "approval"


def test_expression_reaching_for_dunders_is_refused_even_in_python_form():
    with pytest.raises(DeployError, match="not allowed"):
        compile_bundle(Bundle({"p.bpmn": with_step(
            '<bpmn:userTask id="Step"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>'
            '</bpmn:userTask><bpmn:sequenceFlow id="Fx" sourceRef="Step" targetRef="EndEvent_1">'
            '<bpmn:conditionExpression>().__class__</bpmn:conditionExpression></bpmn:sequenceFlow>')}))


APPROVAL = (Path(__file__).parent / "data" / "camunda_approval.bpmn").read_bytes()


def approval_with(old, new):
    assert old.encode() in APPROVAL
    return Bundle({"approval.bpmn": APPROVAL.replace(old.encode(), new.encode())})


def test_task_attribute_variables_become_case_variables():
    bundle = approval_with('camunda:candidateGroups="sachbearbeitung, teamleitung"',
                           'camunda:candidateGroups="${gruppe}"')
    bundle.files["approval.bpmn"] = bundle.files["approval.bpmn"].replace(
        b'camunda:dueDate="2030-12-01T10:00:00Z" camunda:followUpDate="P3D"',
        b'camunda:dueDate="${frist}" camunda:followUpDate="${wiedervorlage}"')
    [compiled] = compile_bundle(bundle)
    meta = compiled.meta["tasks"]["Task_Review"]
    assert meta["groups"] == [] and meta["groups_variable"] == "gruppe"
    assert meta["due_variable"] == "frist" and meta["due"] is None
    assert meta["follow_up_variable"] == "wiedervorlage" and meta["follow_up"] is None


@pytest.mark.parametrize("old, new, reason", [
    ('camunda:candidateGroups="sachbearbeitung, teamleitung"', 'camunda:candidateGroups="${gruppe.name}"',
     "camunda:candidateGroups='${gruppe.name}' is an expression we cannot evaluate"),
    ('camunda:candidateGroups="sachbearbeitung, teamleitung"', 'camunda:candidateGroups="a, ${b}"',
     "is an expression we cannot evaluate"),
    ('camunda:candidateUsers="anna,bob"', 'camunda:candidateUsers="${initiator}"',
     "camunda:candidateUsers='${initiator}' is an expression: users must be named here"),
    ('camunda:assignee="anna"', 'camunda:assignee="${initiator}"',
     "camunda:assignee='${initiator}' is an expression"),
    ('camunda:assignee="anna"', 'camunda:assignee="#{initiator}"', "camunda:assignee='#{initiator}'"),
    ('camunda:dueDate="2030-12-01T10:00:00Z"', 'camunda:dueDate="${dateTime().plusDays(2).toDate()}"',
     "is an expression we cannot evaluate: write an ISO-8601 date"),
    ('camunda:followUpDate="P3D"', 'camunda:followUpDate="nächste Woche"',
     "camunda:followUpDate='nächste Woche' is not an ISO-8601 date, date-time or duration"),
])
def test_task_attribute_expressions_refused_at_upload(old, new, reason):
    with pytest.raises(DeployError) as info:
        compile_bundle(approval_with(old, new))
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.element) == ("approval.bpmn", 10, "Task_Review")  # lxml: tag end
    assert "user task 'Task_Review' ('Review request')" in problem.message and reason in problem.message


def test_literal_task_attributes_still_accepted():
    compile_bundle(approval_with('camunda:dueDate="2030-12-01T10:00:00Z"', 'camunda:dueDate="2030-12-01"'))
    compile_bundle(approval_with('camunda:followUpDate="P3D"', 'camunda:followUpDate="PT4H"'))
