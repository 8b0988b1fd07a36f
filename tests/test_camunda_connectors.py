"""Camunda service and send tasks bound to connectors registered by name: refused at upload when no connector
is registered, called at run time with the inputOutput parameters or the case's variables, results merged."""

import pytest

from engine.cases import get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.errors import DeployError
from engine.models import Bundle

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="Defs" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
"""
TAIL = """
    <bpmn:userTask id="Pruefen" name="Prüfen" camunda:candidateGroups="sachbearbeitung">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Call" />
    <bpmn:sequenceFlow id="F2" sourceRef="Call" targetRef="Pruefen" />
    <bpmn:sequenceFlow id="F3" sourceRef="Pruefen" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def camunda_task(attrs, body="", tag="serviceTask", pid="verbinden"):
    """start -> <tag id="Call" attrs>body</tag> -> user task Pruefen -> end (Camunda Modeler dialect)."""
    return (HEAD.format(pid=pid) + f'    <bpmn:{tag} id="Call" name="Archivieren" {attrs}>{body}'
            f"<bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:{tag}>" + TAIL).encode()


def refusal(rt, xml):
    with pytest.raises(DeployError) as info:
        deploy(rt, [Bundle({"c.bpmn": xml})])
    [problem] = info.value.problems
    return problem


class Recorder:
    """A fake connector: records its keyword arguments and answers ``result``."""

    def __init__(self, result=None):
        self.calls, self.result = [], result

    def __call__(self, **params):
        self.calls.append(params)
        return self.result


def test_unregistered_class_is_refused_naming_file_line_element_and_both_names(rt):
    problem = refusal(rt, camunda_task('camunda:class="org.example.invoice.ArchiveService"'))
    assert (problem.file, problem.line, problem.element) == ("c.bpmn", 7, "Call")
    assert "'Call' ('Archivieren')" in problem.message
    assert "'org.example.invoice.ArchiveService' or 'ArchiveService'" in problem.message
    assert "no connector is registered" in problem.message


@pytest.mark.parametrize("attrs, missing", [
    ('camunda:delegateExpression="${archivService}"', "'archivService'"),
    ('camunda:delegateExpression="#{archivService}"', "'archivService'"),
    ('camunda:type="external" camunda:topic="archivierung"', "'archivierung'"),
])
def test_unregistered_bean_or_topic_is_refused(rt, attrs, missing):
    assert f"no connector is registered as {missing}" in refusal(rt, camunda_task(attrs)).message


@pytest.mark.parametrize("attrs, text", [
    ('camunda:expression="${archiv.speichern(execution)}"', "calls Java code"),
    ('camunda:delegateExpression="${archiv.dienst}"', "does not name a connector"),
    ('camunda:type="external"', "does not name a connector"),
    ('camunda:type="connector"', 'camunda:type="connector" is not supported'),
    ("", "has no implementation"),
])
def test_unsupported_bindings_are_refused_clearly(rt, attrs, text):
    assert text in refusal(rt, camunda_task(attrs)).message


def test_send_task_with_a_topic_is_refused_without_a_connector(rt):
    problem = refusal(rt, camunda_task('camunda:type="external" camunda:topic="mail"', tag="sendTask"))
    assert problem.message.startswith("send task 'Call'") and "'mail'" in problem.message


def test_class_by_simple_name_gets_the_case_variables_its_signature_names_and_merges_a_dict(rt):
    calls = []

    def archive(rechnung, betrag):
        calls.append((rechnung, betrag))
        return {"archiviert": True, "ablage": f"A-{rechnung}"}

    rt.services["ArchiveService"] = archive
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:class="org.example.invoice.ArchiveService"')})])
    [case] = start_case(rt, "verbinden", "marburg", {"rechnung": "R-7", "betrag": 120, "sonst": "x"})
    assert calls == [("R-7", 120)]
    data = get_case(rt, case["id"])["data"]
    assert data["archiviert"] is True and data["ablage"] == "A-R-7" and data["sonst"] == "x"
    assert [t["element_id"] for t in list_tasks(rt, case_id=case["id"])] == ["Pruefen"]


def test_fully_qualified_name_wins_over_the_simple_name(rt):
    full, simple = Recorder({"wer": "voll"}), Recorder({"wer": "kurz"})
    rt.services.update({"org.example.ArchiveService": full, "ArchiveService": simple})
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:class="org.example.ArchiveService"')})])
    [case] = start_case(rt, "verbinden", "marburg")
    assert get_case(rt, case["id"])["data"]["wer"] == "voll" and not simple.calls


def test_external_topic_with_kwargs_gets_every_variable(rt):
    topic = Recorder({"geprueft": "ja"})
    rt.services["bonitaet"] = topic
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:type="external" camunda:topic="bonitaet"')})])
    [case] = start_case(rt, "verbinden", "giessen", {"name": "Erika", "alter": 40})
    assert topic.calls == [{"name": "Erika", "alter": 40}]
    assert get_case(rt, case["id"])["data"]["geprueft"] == "ja"


def test_input_and_output_parameters(rt):
    bean = Recorder({"status": "OK", "nummer": 17})
    rt.services["archivDienst"] = bean
    body = """<bpmn:extensionElements><camunda:inputOutput>
        <camunda:inputParameter name="akte">${aktenzeichen}</camunda:inputParameter>
        <camunda:inputParameter name="gross">${betrag &gt; 100}</camunda:inputParameter>
        <camunda:inputParameter name="art">Rechnung</camunda:inputParameter>
        <camunda:outputParameter name="archivnummer">${nummer}</camunda:outputParameter>
      </camunda:inputOutput></bpmn:extensionElements>"""
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:delegateExpression="${archivDienst}"', body)})])
    [case] = start_case(rt, "verbinden", "wetzlar", {"aktenzeichen": "WZ-1", "betrag": 250})
    assert bean.calls == [{"akte": "WZ-1", "gross": True, "art": "Rechnung"}]
    data = get_case(rt, case["id"])["data"]
    assert data["archivnummer"] == 17 and "status" not in data  # output parameters: only those are set


def test_a_parameter_that_reaches_for_code_is_refused(rt):
    rt.services["archivDienst"] = Recorder()
    body = """<bpmn:extensionElements><camunda:inputOutput>
        <camunda:inputParameter name="x">${a.__class__}</camunda:inputParameter>
      </camunda:inputOutput></bpmn:extensionElements>"""
    problem = refusal(rt, camunda_task('camunda:delegateExpression="${archivDienst}"', body))
    assert problem.element == "Call" and "parameter 'x'" in problem.message


def test_a_list_parameter_is_refused(rt):
    rt.services["archivDienst"] = Recorder()
    body = """<bpmn:extensionElements><camunda:inputOutput>
        <camunda:inputParameter name="x"><camunda:list><camunda:value>1</camunda:value></camunda:list>
        </camunda:inputParameter></camunda:inputOutput></bpmn:extensionElements>"""
    assert "no camunda:list" in refusal(rt, camunda_task('camunda:delegateExpression="${archivDienst}"', body)).message


def test_a_scalar_result_needs_a_result_variable(rt):
    rt.services["zaehler"] = Recorder(42)
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:delegateExpression="${zaehler}" '
                                               'camunda:resultVariable="anzahl"')})])
    [case] = start_case(rt, "verbinden", "marburg")
    assert get_case(rt, case["id"])["data"]["anzahl"] == 42
    deploy(rt, [Bundle({"d.bpmn": camunda_task('camunda:delegateExpression="${zaehler}"', pid="ohne")})])
    [failed] = start_case(rt, "ohne", "marburg")
    assert failed["state"] == "error" and "name a camunda:resultVariable" in failed["error"]


def test_a_failing_connector_stops_the_case_with_an_error_naming_it(rt):
    def broken(**_):
        raise ConnectionError("Archiv nicht erreichbar")

    rt.services["archiv"] = broken
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:type="external" camunda:topic="archiv"')})])
    [case] = start_case(rt, "verbinden", "marburg")
    assert case["state"] == "error"
    assert "service 'archiv' failed: ConnectionError: Archiv nicht erreichbar" in case["error"]


def test_send_task_with_a_class_calls_its_connector_and_a_plain_send_task_does_not(rt):
    mail = Recorder({"versandt": True})
    rt.services["MailService"] = mail
    deploy(rt, [Bundle({"c.bpmn": camunda_task('camunda:class="de.example.MailService"', tag="sendTask")})])
    [case] = start_case(rt, "verbinden", "fulda", {"an": "a@example.org"})
    assert mail.calls == [{"an": "a@example.org"}] and get_case(rt, case["id"])["data"]["versandt"] is True
    deploy(rt, [Bundle({"p.bpmn": camunda_task("", tag="sendTask", pid="schlicht")})])
    [plain] = start_case(rt, "schlicht", "fulda")
    assert plain["state"] != "error" and len(mail.calls) == 1
