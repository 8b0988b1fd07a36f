"""Deploying models: versions, refusals with file and line, Camunda metadata, hostile XML."""

import json

import pytest
from bpmn_snippets import script_process, user_task_process, with_step
from conftest import DATA, ROOT
from sqlalchemy import func, select

from engine.cases import list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.errors import DeployError
from engine.models import Bundle
from engine.schema import ModelFile, ProcessVersion, Task


def count_versions(rt):
    with rt.reader.connect() as conn:
        return conn.execute(select(func.count()).select_from(ProcessVersion)).scalar_one()


def test_same_content_same_version_changed_content_next_version(rt):
    first = deploy(rt, [Bundle({"p.bpmn": user_task_process("p")})])
    again = deploy(rt, [Bundle({"p.bpmn": user_task_process("p")})])
    assert first == [{"process_id": "p", "version": 1, "new": True}]
    assert again == [{"process_id": "p", "version": 1, "new": False}]
    assert count_versions(rt) == 1
    old_case = start_case(rt, "p", "marburg")[0]
    changed = deploy(rt, [Bundle({"p.bpmn": user_task_process("p", name="Do it now")})])
    assert changed == [{"process_id": "p", "version": 2, "new": True}]
    new_case = start_case(rt, "p", "marburg")[0]
    titles = {t["case_id"]: t["title"] for t in list_tasks(rt)}
    assert titles == {old_case["id"]: "Do it", new_case["id"]: "Do it now"}  # the old case keeps version 1


def test_deploy_folder_keeps_files_and_forms(rt):
    results = deploy(rt, bundles_from_paths([DATA / "two_tasks"]))
    assert results == [{"process_id": "two_tasks", "version": 1, "new": True}]
    with rt.reader.connect() as conn:
        paths = set(conn.execute(select(ModelFile.path)).scalars())
        version = rt.version(conn, conn.execute(select(ProcessVersion.id)).scalar_one())
    assert paths == {"two_tasks.bpmn", "forms/a.schema.json"}
    assert version.meta["tasks"]["Task_A"]["form"]["required"] == ["amount"]
    assert version.meta["tasks"]["Task_A"]["groups"] == ["team"]


def test_shipped_processes_deploy(rt):
    results = deploy(rt, bundles_from_paths([ROOT / "processes"]))
    for shared in ("hundesteuer-anmeldung", "gewerbeanmeldung", "bewohnerparkausweis", "digitaler-briefkasten"):
        assert {"process_id": shared, "version": 1, "new": True} in results


def test_camunda_metadata_read_from_xml(rt):
    deploy(rt, bundles_from_paths([DATA / "camunda_approval.bpmn"]))
    case = start_case(rt, "camunda_approval", "giessen")[0]
    [task] = list_tasks(rt, case_id=case["id"])
    assert task["groups"] == ["sachbearbeitung", "teamleitung"]
    assert task["assignee"] == "anna"
    assert task["due"] == "2030-12-01T10:00:00.000000Z"
    with rt.reader.connect() as conn:
        meta = rt.version(conn, conn.execute(select(ProcessVersion.id)).scalar_one()).meta["tasks"]["Task_Review"]
    assert meta["candidate_users"] == ["anna", "bob"]
    assert meta["form"]["properties"]["amount"] == {"type": "integer", "title": "Amount", "minimum": 1.0}
    assert meta["form"]["required"] == ["amount"]
    assert meta["form"]["properties"]["channel"]["enum"] == ["mail", "post"]


def problems_of(rt, files):
    with pytest.raises(DeployError) as info:
        deploy(rt, [Bundle(files)])
    assert count_versions(rt) == 0, "a refused upload stores nothing"
    return info.value.problems


def test_xsd_error_names_file_and_line(rt):
    bad = with_step('    <bpmn:userTask id="Step" bogus="1"><bpmn:incoming>F1</bpmn:incoming>'
                    '<bpmn:outgoing>F2</bpmn:outgoing><bpmn:notAnElement/></bpmn:userTask>')
    problems = problems_of(rt, {"bad.bpmn": bad})
    line = bad.decode().splitlines()[6]
    # every schema error, each with line, column (of the element's start tag) and the element's id
    assert [(p.file, p.line, p.column, p.element) for p in problems] == [
        ("bad.bpmn", 7, line.index("<bpmn:userTask") + 1, "Step"),
        ("bad.bpmn", 7, line.index("<bpmn:notAnElement") + 1, "Step")]
    assert "bogus" in problems[0].message and "bpmn:notAnElement" in problems[1].message
    assert str(problems[1]).startswith(f"bad.bpmn:7:{line.index('<bpmn:notAnElement') + 1} [Step]: XML schema error")


def test_refusal_is_all_or_nothing(rt):
    problems = problems_of(rt, {"good.bpmn": user_task_process("good"),
                                "bad.bpmn": script_process("import os", pid="bad")})
    assert [(p.file, p.element) for p in problems] == [("bad.bpmn", "Step")]


@pytest.mark.parametrize("script, reason", [
    ("import os", "imports are not allowed"),
    ("x = ().__class__.__base__", "attributes starting with '_'"),
    ("x = getattr(a, 'b')", "'getattr' is not in the list of allowed names"),
    ("x = open('/etc/passwd').read()", "'open' is not in the list"),
    ("x = eval('1')", "'eval' is not in the list"),
    ("x = __builtins__", "names starting with '_'"),
    ("x = '{0.__class__}'.format(1)", ".format is not allowed"),
    ("x = (i for i in []).gi_frame", ".gi_frame is not allowed"),
    ("def f():\n    global y\n    y = 1", "'global' and 'nonlocal'"),
])
def test_unsafe_scripts_refused_at_deploy(rt, script, reason):
    [p] = problems_of(rt, {"s.bpmn": script_process(script)})
    assert p.element == "Step" and p.file == "s.bpmn"
    assert reason in p.message
    assert p.line >= 8


def test_unsafe_condition_refused_with_line(rt):
    doc = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:process id="gw" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="G"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="G" />
    <bpmn:sequenceFlow id="F2" sourceRef="G" targetRef="E">
      <bpmn:conditionExpression>{'x.__class__ is None'}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>""".encode()
    [p] = problems_of(rt, {"gw.bpmn": doc})
    assert (p.file, p.line, p.element) == ("gw.bpmn", 10, "F2")


def test_unsupported_element_refused(rt):
    doc = with_step('    <bpmn:complexGateway id="Step" name="Complex"><bpmn:incoming>F1</bpmn:incoming>'
                    '<bpmn:outgoing>F2</bpmn:outgoing></bpmn:complexGateway>')
    [p] = problems_of(rt, {"c.bpmn": doc})
    assert p.element == "Step" and p.message == "complex gateway 'Step' ('Complex'): complex gateways are not supported"


def test_unsupported_event_named_by_its_event_id_and_name(rt):
    doc = with_step('    <bpmn:intermediateThrowEvent id="Step" name="Weiter bei B"><bpmn:incoming>F1</bpmn:incoming>'
                    '<bpmn:outgoing>F2</bpmn:outgoing><bpmn:linkEventDefinition id="LinkDef_1" name="B" />'
                    '</bpmn:intermediateThrowEvent>')
    [p] = problems_of(rt, {"l.bpmn": doc})
    assert (p.file, p.element) == ("l.bpmn", "Step")
    assert p.message == "link event 'Step' ('Weiter bei B'): link events are not supported"


def test_business_rule_task_with_missing_decision_refused_clearly(rt):
    doc = with_step('    <bpmn:businessRuleTask id="Step" name="Gebühr bestimmen"><bpmn:extensionElements>'
                    '<spiffworkflow:calledDecisionId>gebuehr</spiffworkflow:calledDecisionId>'
                    '</bpmn:extensionElements><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>'
                    '</bpmn:businessRuleTask>')
    [p] = problems_of(rt, {"b.bpmn": doc})
    assert (p.file, p.line, p.element) == ("b.bpmn", 7, "Step")
    assert p.message == ("business rule task 'Step' ('Gebühr bestimmen'): decision 'gebuehr' is not in the upload "
                         "(upload the .dmn file that defines it)")


def test_camunda_task_variables_route_and_date_a_running_task(rt):
    doc = (DATA / "camunda_approval.bpmn").read_bytes().replace(
        b'camunda:candidateGroups="sachbearbeitung, teamleitung"', b'camunda:candidateGroups="${gruppe}"').replace(
        b'camunda:dueDate="2030-12-01T10:00:00Z" camunda:followUpDate="P3D"',
        b'camunda:dueDate="${frist}" camunda:followUpDate="${wiedervorlage}"')
    deploy(rt, [Bundle({"a.bpmn": doc})])
    data = {"gruppe": "steuern", "frist": "2031-01-02T10:00:00Z", "wiedervorlage": "2030-12-24T08:00:00Z"}
    case = start_case(rt, "camunda_approval", "giessen", data)[0]
    [task] = list_tasks(rt, case_id=case["id"])
    assert task["groups"] == ["steuern"] and task["due"] == "2031-01-02T10:00:00.000000Z"
    with rt.reader.connect() as conn:
        follow_up = conn.execute(select(Task.follow_up_at)).scalar_one()
    assert follow_up.isoformat().startswith("2030-12-24T08:00:00")


def test_camunda_expression_language_refused_clearly(rt):
    doc = (DATA / "camunda_approval.bpmn").read_bytes().replace(b"approved == True", b"${invoice.approved}")
    [p] = problems_of(rt, {"c.bpmn": doc})
    assert p.element == "F_yes" and "Camunda's expression language" in p.message


def test_camunda_literal_timer_translated_and_cron_refused(rt):
    timer = """    <bpmn:intermediateCatchEvent id="Step">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="T"><bpmn:timeDuration>{}</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>"""
    spiff_ns = b' xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
    plain = with_step(timer.format("PT5M")).replace(spiff_ns, b"")
    assert deploy(rt, [Bundle({"t.bpmn": plain})])[0]["new"]
    case = start_case(rt, "snippet", "fulda")[0]
    assert case["state"] == "waiting"
    cron = plain.replace(b"PT5M", b"0 0/5 * * * ?")
    with pytest.raises(DeployError) as info:
        deploy(rt, [Bundle({"t.bpmn": cron})])
    assert "cron timer cycles" in str(info.value)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:process id="x" name="&xxe;" isExecutable="true"/>
</bpmn:definitions>"""
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:process id="x" name="&lol3;" isExecutable="true"/>
</bpmn:definitions>"""


@pytest.mark.parametrize("payload, reason", [
    (XXE, "DOCTYPE or ENTITY declaration is not allowed"),
    (BOMB, "DOCTYPE or ENTITY declaration is not allowed"),
    (b"PK\x03\x04 not xml at all", "not an XML document"),
    (b"<bpmn:definitions", "XML syntax error"),
])
def test_hostile_xml_refused(rt, payload, reason):
    [p] = problems_of(rt, {"evil.bpmn": payload})
    assert p.file == "evil.bpmn" and reason in p.message
    assert "root:" not in str(p)  # nothing of /etc/passwd leaks into the message


def test_oversized_file_refused(rt):
    from dataclasses import replace

    rt.settings = replace(rt.settings, max_xml_bytes=1000)
    [p] = problems_of(rt, {"big.bpmn": user_task_process() + b"<!--" + b"x" * 2000 + b"-->"})
    assert "the limit is 1000" in p.message


def test_cli_deploy_refusal_exit_code_and_lines(cli, tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(script_process("import os"))
    proc = cli("deploy", bad, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: bad.bpmn:") and "[Step]" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = cli("deploy", bad, "--json", check=False)
    doc = json.loads(out.stdout)
    assert doc["problems"][0]["file"] == "bad.bpmn" and doc["problems"][0]["element"] == "Step"
    assert cli.json("process", "list") == []
