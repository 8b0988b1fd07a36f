"""The reusable Nachforderung (processes/nachforderung) called from another model, and call activities across
models: binding at deploy to the newest deployed version, "call activity target missing", called before
callers, cycles, running cases keep their binding; the answer by message (kept when early) or the deadline."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ROOT

from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.errors import DeployError
from engine.jobs import Worker
from engine.messages import deliver, list_messages
from engine.models import Bundle
from engine.schema import ProcessVersion

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FOLDER = ROOT / "processes" / "nachforderung"

CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Defs_Caller" targetNamespace="http://ozgflow.de/tests">
  <bpmn:collaboration id="Collab"><bpmn:participant id="P" processRef="{pid}" /></bpmn:collaboration>
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:laneSet id="LS"><bpmn:lane id="Lane_Steuern" name="steuern">
      <bpmn:flowNodeRef>Beginn</bpmn:flowNodeRef><bpmn:flowNodeRef>Pruefen</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>Vollstaendig</bpmn:flowNodeRef><bpmn:flowNodeRef>Nachfordern</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>Ende</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="Beginn"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Pruefen" name="Antrag prüfen">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:incoming>F4</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="Vollstaendig">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>Ja</bpmn:outgoing><bpmn:outgoing>Nein</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:callActivity id="Nachfordern" name="Unterlagen nachfordern" calledElement="{called}">
      <bpmn:incoming>Nein</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing>
    </bpmn:callActivity>
    <bpmn:endEvent id="Ende"><bpmn:incoming>Ja</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Beginn" targetRef="Pruefen" />
    <bpmn:sequenceFlow id="F2" sourceRef="Pruefen" targetRef="Vollstaendig" />
    <bpmn:sequenceFlow id="Ja" sourceRef="Vollstaendig" targetRef="Ende">
      <bpmn:conditionExpression>vollstaendig == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Nein" sourceRef="Vollstaendig" targetRef="Nachfordern">
      <bpmn:conditionExpression>vollstaendig != True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F4" sourceRef="Nachfordern" targetRef="Pruefen" />
  </bpmn:process>
</bpmn:definitions>
"""


def caller(pid="antrag_mit_nachforderung", called="nachforderung"):
    return Bundle({f"{pid}.bpmn": CALLER.format(pid=pid, called=called).encode()}, source=f"{pid}/")


def nachforderung(rename=None):
    [bundle] = bundles_from_paths([FOLDER])
    if rename:
        path = "nachforderung.bpmn"
        bundle.files[path] = bundle.files[path].replace(b'name="Nachforderung schreiben"',
                                                        f'name="{rename}"'.encode())
    return bundle


@pytest.fixture
def clock(rt):
    now = [T0]
    rt.clock = lambda: now[0]
    return now


def open_tasks(rt, case_id):
    return {t["element_id"]: t for t in list_tasks(rt, case_id=case_id)}


def complete(rt, case_id, element, data, user="anna"):
    tasks = open_tasks(rt, case_id)
    assert element in tasks, f"{element} is not open: {sorted(tasks)}"
    complete_task(rt, tasks[element]["id"], user, data)


def through_dispatch(rt, case_id):
    """The letter goes out (engine.dispatch, a job): by e-mail at once, by post once its Postversand task is
    completed. (The called process's data reaches the case's data when it ends.)"""
    Worker(rt).run_due()
    tasks = open_tasks(rt, case_id)
    if "Nachforderung_Brief_Postversand" in tasks:
        assert tasks["Nachforderung_Brief_Postversand"]["groups"] == ["poststelle"]
        complete_task(rt, tasks["Nachforderung_Brief_Postversand"]["id"], "paul", {})
    actions = [h["action"] for h in get_case(rt, case_id)["history"]]
    assert "letter_created" in actions and "letter_dispatched" in actions


def ask_for_documents(rt, case_id, text="Bitte den Sachkundenachweis nachreichen.", days=14):
    complete(rt, case_id, "Pruefen", {"vollstaendig": False})
    tasks = open_tasks(rt, case_id)
    assert tasks["Nachforderung_Schreiben"]["title"] == "Nachforderung schreiben"
    assert tasks["Nachforderung_Schreiben"]["groups"] == ["steuern"], "called tasks go to the caller's lane"
    complete(rt, case_id, "Nachforderung_Schreiben", {"nachforderung_text": text, "nachforderung_frist_tage": days})
    through_dispatch(rt, case_id)
    assert get_case(rt, case_id)["state"] == "waiting"
    assert open_tasks(rt, case_id) == {}, "the case waits for the answer or the deadline"


def versions(rt, pid):
    with rt.reader.connect() as conn:
        rows = conn.execute(ProcessVersion.__table__.select().where(ProcessVersion.process_id == pid)
                            .order_by(ProcessVersion.version)).mappings().all()
    return [dict(r, meta=json.loads(r["meta"])) for r in rows]


def test_call_target_missing_names_file_line_and_element(rt):
    with pytest.raises(DeployError) as refused:
        deploy(rt, [caller(called="gibt_es_nicht")])
    [problem] = refused.value.problems
    assert problem.file == "antrag_mit_nachforderung.bpmn" and problem.element == "Nachfordern"
    assert problem.line == CALLER.splitlines().index(
        next(line for line in CALLER.splitlines() if "<bpmn:callActivity" in line)) + 1
    assert "call activity target missing" in problem.message and "'gibt_es_nicht'" in problem.message
    assert versions(rt, "antrag_mit_nachforderung") == [], "a refused upload stores nothing"


def test_called_model_deploys_first_and_the_binding_is_recorded(rt):
    # given in the wrong order on purpose: the deploy sorts called before callers
    result = deploy(rt, [caller(), nachforderung()])
    assert [r["process_id"] for r in result] == ["nachforderung", "antrag_mit_nachforderung"]
    [nf] = versions(rt, "nachforderung")
    [v1] = versions(rt, "antrag_mit_nachforderung")
    assert v1["meta"]["calls"]["nachforderung"] == {"process_id": "nachforderung", "version": 1,
                                                    "version_id": nf["id"], "content_hash": nf["content_hash"]}
    assert v1["meta"]["tasks"]["Nachforderung_Schreiben"]["form"]["required"] == [
        "nachforderung_text", "nachforderung_frist_tage"]
    # the caller alone again, later: binds to what is deployed; same content and target → same version
    assert deploy(rt, [caller()]) == [{"process_id": "antrag_mit_nachforderung", "version": 1, "new": False}]


def test_running_case_keeps_the_version_it_bound_to(rt, clock):
    deploy(rt, [nachforderung(), caller()])
    [old] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    deploy(rt, [nachforderung(rename="Fehlende Unterlagen anfordern")])  # nachforderung v2
    assert deploy(rt, [caller()]) == [{"process_id": "antrag_mit_nachforderung", "version": 2, "new": True}]
    v1, v2 = versions(rt, "antrag_mit_nachforderung")
    assert v1["meta"]["calls"]["nachforderung"]["version"] == 1
    assert v2["meta"]["calls"]["nachforderung"]["version"] == 2
    [new] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    complete(rt, new["id"], "Pruefen", {"vollstaendig": False})
    assert open_tasks(rt, new["id"])["Nachforderung_Schreiben"]["title"] == "Fehlende Unterlagen anfordern"
    ask_for_documents(rt, old["id"])  # the old case still runs the Nachforderung it started with


def test_a_cycle_across_models_is_refused(rt):
    with pytest.raises(DeployError) as refused:
        deploy(rt, [caller("a", called="b"), caller("b", called="a")])
    assert "cycle" in str(refused.value)


def test_answer_by_message_ends_the_nachforderung(rt, clock):
    deploy(rt, [nachforderung(), caller()])
    [case] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    ask_for_documents(rt, case["id"])
    clock[0] = T0 + timedelta(days=3)
    docs = [{"document_id": 7, "filename": "sachkunde.pdf"}]
    result = deliver(rt, "unterlagen_nachgereicht", {"case_id": case["id"]}, {"documents": docs})
    assert result["status"] == "delivered"
    data = get_case(rt, case["id"])["data"]
    assert data["nachforderung_ergebnis"] == "eingegangen" and data["nachgereichte_unterlagen"] == docs
    assert data["nachforderung_text"] == "Bitte den Sachkundenachweis nachreichen."
    assert list(open_tasks(rt, case["id"])) == ["Pruefen"], "back to the caller's check"
    # the deadline timer is gone with the other branch of the event-based gateway
    clock[0] = T0 + timedelta(days=30)
    Worker(rt).run_due()
    assert get_case(rt, case["id"])["data"]["nachforderung_ergebnis"] == "eingegangen"
    complete(rt, case["id"], "Pruefen", {"vollstaendig": True})
    assert get_case(rt, case["id"])["state"] == "completed"


def test_deadline_runs_out(rt, clock):
    """The deadline counts from the letter's deemed delivery (§41(2) VwVfG: the fourth day after dispatch)
    and ends at the end of its last day in Berlin (§31 VwVfG, §§187 ff. BGB), rolled to the next working day."""
    deploy(rt, [nachforderung(), caller()])
    [case] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    ask_for_documents(rt, case["id"], days=9)  # sent by post on Monday 2 March 2026
    # deemed delivered Friday 6 March; + 9 days = Sunday 15 March → Monday 16 March, 24:00 in Berlin
    clock[0] = datetime(2026, 3, 16, 22, 59, tzinfo=UTC)
    Worker(rt).run_due()
    assert get_case(rt, case["id"])["data"].get("nachforderung_ergebnis") is None
    assert open_tasks(rt, case["id"]) == {}, "not yet: still waiting"
    clock[0] = datetime(2026, 3, 16, 23, 0, tzinfo=UTC)
    Worker(rt).run_due()
    found = get_case(rt, case["id"])
    assert found["data"]["nachforderung_ergebnis"] == "frist_abgelaufen"
    assert found["data"]["nachforderung_frist"] == {"ends_on": "2026-03-16", "ends_at": "2026-03-16T23:00:00+00:00"}
    assert found["data"]["letters"]["nachforderung"]["deemed_delivered_on"] == "2026-03-06"
    assert ("timer_fired", "Nachforderung_Warten") in [(h["action"], h["element_id"]) for h in found["history"]]
    assert list(open_tasks(rt, case["id"])) == ["Pruefen"]


def test_an_early_answer_is_kept_until_the_case_waits(rt, clock):
    deploy(rt, [nachforderung(), caller()])
    [case] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    early = deliver(rt, "unterlagen_nachgereicht", {"case_id": case["id"]}, {"documents": [{"document_id": 1}]})
    assert early["status"] == "kept"
    # the Nachforderung is written after the answer came
    complete(rt, case["id"], "Pruefen", {"vollstaendig": False})
    complete(rt, case["id"], "Nachforderung_Schreiben",
             {"nachforderung_text": "Nachweis", "nachforderung_frist_tage": 14})
    through_dispatch(rt, case["id"])
    Worker(rt).run_due()
    assert get_case(rt, case["id"])["data"]["nachforderung_ergebnis"] == "eingegangen"
    assert list_messages(rt, "kept") == []


def test_the_pattern_runs_again_in_the_same_case(rt, clock):
    """Deadline missed, asked again, answered: a second letter, a second deadline, the documents of both."""
    deploy(rt, [nachforderung(), caller()])
    [case] = start_case(rt, "antrag_mit_nachforderung", "marburg", {})
    ask_for_documents(rt, case["id"], days=7)
    clock[0] = T0 + timedelta(days=30)
    Worker(rt).run_due()
    assert get_case(rt, case["id"])["data"]["nachforderung_ergebnis"] == "frist_abgelaufen"
    ask_for_documents(rt, case["id"], text="Letzte Erinnerung: Sachkundenachweis", days=7)
    assert get_case(rt, case["id"])["data"]["nachforderung_ergebnis"] == "frist_abgelaufen", "from the first run"
    assert deliver(rt, "unterlagen_nachgereicht", {"case_id": case["id"]},
                   {"documents": [{"document_id": 3}]})["status"] == "delivered"
    found = get_case(rt, case["id"])
    assert found["data"]["nachforderung_ergebnis"] == "eingegangen"
    assert found["data"]["nachforderung_text"] == "Letzte Erinnerung: Sachkundenachweis"
    assert [h["action"] for h in found["history"]].count("letter_created") == 2
    assert found["data"]["letters"]["nachforderung"]["dispatched_at"].startswith("2026-04-01")


def test_a_camunda_model_cannot_call_a_spiff_model(rt):
    deploy(rt, [nachforderung()])
    xml = CALLER.format(pid="camunda_antrag", called="nachforderung").replace(
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"',
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"')
    with pytest.raises(DeployError) as refused:
        deploy(rt, [Bundle({"camunda.bpmn": xml.encode()})])
    [problem] = refused.value.problems
    assert problem.element == "Nachfordern" and "spiff model" in problem.message


def test_nested_calls_across_models_and_id_clashes(rt, clock):
    """oben → mittel → nachforderung, each deployed on its own; a user task id used on both sides is refused."""
    deploy(rt, [nachforderung()])
    mittel = CALLER.format(pid="mittel", called="nachforderung")
    for old in ("Pruefen", "Vollstaendig", "Nachfordern", "Beginn", "Ende", "Lane_Steuern", "Collab", '"P"'):
        mittel = mittel.replace(old, "M" + old if not old.startswith('"') else '"MP"')
    deploy(rt, [Bundle({"mittel.bpmn": mittel.encode()})])
    clash = CALLER.format(pid="clash", called="mittel").replace("Pruefen", "MPruefen")
    with pytest.raises(DeployError) as refused:
        deploy(rt, [Bundle({"clash.bpmn": clash.encode()})])
    [problem] = refused.value.problems
    assert problem.element == "MPruefen" and problem.file == "clash.bpmn" and problem.line
    assert "also a user task of the called model 'mittel'" in problem.message
    deploy(rt, [Bundle({"oben.bpmn": CALLER.format(pid="oben", called="mittel").encode()})])
    [oben] = versions(rt, "oben")
    assert set(oben["meta"]["calls"]) == {"mittel", "nachforderung"}
    [case] = start_case(rt, "oben", "marburg", {})
    complete(rt, case["id"], "Pruefen", {"vollstaendig": False})
    complete(rt, case["id"], "MPruefen", {"vollstaendig": False})
    assert "Nachforderung_Schreiben" in open_tasks(rt, case["id"])
