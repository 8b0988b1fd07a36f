"""Vertretung (a deputy works an absent colleague's tasks, "in Vertretung für" in the history) and the
Vier-Augen rule (``four_eyes_of``: whoever completed the earlier task cannot complete this one)."""

from datetime import timedelta

import pytest
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, open_task, start

from engine.audit import history
from engine.cases import list_tasks, start_case
from engine.deploy import deploy
from engine.deputies import add_absence
from engine.inbox import Forbidden, InboxFilter, claim, complete, list_inbox
from engine.models import Bundle
from engine.users import create_token, get_user


def logout(client):
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})


def test_deputy_sees_and_works_the_absent_colleagues_tasks(client, users, web_rt, clock):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    claim(web_rt, users["anna"], tid)
    login(client, "anna")
    page = client.get("/abwesenheit").get_data(as_text=True)
    resp = client.post("/abwesenheit", data={"csrf_token": csrf_of(page), "von": "2026-11-03", "bis": "2026-11-06",
                                             "vertretung": "carla"}, follow_redirects=True)
    assert "Abwesenheit eingetragen" in resp.get_data(as_text=True)
    assert "geplant" in resp.get_data(as_text=True)
    bad = client.post("/abwesenheit", data={"csrf_token": csrf_of(page), "von": "2026-11-06", "bis": "2026-11-03",
                                            "vertretung": "carla"}, follow_redirects=True)
    assert "Das Ende der Abwesenheit muss nach ihrem Beginn liegen" in bad.get_data(as_text=True)
    wim = client.post("/abwesenheit", data={"csrf_token": csrf_of(page), "von": "2026-11-03", "bis": "2026-11-06",
                                            "vertretung": "wim"}, follow_redirects=True)
    assert "gibt es in Ihrer Kommune nicht" in wim.get_data(as_text=True)  # no deputies from other tenants
    logout(client)

    carla = get_user(web_rt, name="carla")  # Marburg, but not in group "steuern"
    assert list_inbox(web_rt, carla)["total"] == 0  # not yet: the absence starts tomorrow
    clock.advance(days=1)
    result = list_inbox(web_rt, carla)
    assert [t["id"] for t in result["items"]] == [tid] and result["items"][0]["on_behalf_of"] == "anna"
    login(client, "carla")
    inbox = client.get("/posteingang").get_data(as_text=True)
    assert tid in inbox and "Vertretung</strong>" in inbox
    page = client.get(f"/aufgaben/{tid}").get_data(as_text=True)
    assert "in Vertretung für anna" in page
    resp = client.post(f"/aufgaben/{tid}", data={"csrf_token": csrf_of(page), "action": "complete",
                                                  "vollstaendig": "true"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    with web_rt.reader.connect() as conn:
        events = [(e["actor"], e["action"], e["new"]) for e in history(conn, case_id)]
    claimed = [e for e in events if e[1] == "task_claimed"][-1]
    assert claimed[0] == "carla" and claimed[2]["on_behalf_of"] == "anna"
    assert ("carla", "task_completed") in [(a, b) for a, b, _ in events]
    case_page = client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "Antrag prüfen (in Vertretung für anna)" in case_page
    clock.advance(days=5)  # the absence is over: nothing of anna's is carla's any more
    assert list_inbox(web_rt, carla, InboxFilter())["total"] == 0


def test_only_team_leads_record_absences_for_others(users, web_rt, clock):
    from engine.deputies import AbsenceError, list_absences

    now = clock.now
    with pytest.raises(AbsenceError):
        add_absence(web_rt, users["anna"], "carla", now, now + timedelta(days=1), absent="bernd")
    add_absence(web_rt, users["lena"], "carla", now, now + timedelta(days=1), absent="bernd")
    assert [(a["absent"], a["deputy"], a["current"]) for a in list_absences(web_rt, users["carla"])] == \
        [("bernd", "carla", True)]
    assert list_absences(web_rt, users["anna"]) == []


FOUR_EYES = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://ozgflow.de/tests">
  <bpmn:process id="zweitzeichnung" name="Zweitzeichnung" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_Entwurf" name="Bescheid entwerfen" camunda:candidateGroups="steuern">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="Task_Freigabe" name="Bescheid freigeben" camunda:candidateGroups="steuern">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="four_eyes_of" value="Task_Entwurf" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_Entwurf" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_Entwurf" targetRef="Task_Freigabe" />
    <bpmn:sequenceFlow id="F3" sourceRef="Task_Freigabe" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_four_eyes_the_drafter_cannot_approve(client, users, web_rt):
    deploy(web_rt, [Bundle({"zweitzeichnung.bpmn": FOUR_EYES}, "test")], actor="test")
    case_id = start_case(web_rt, "zweitzeichnung", "marburg")[0]["id"]
    complete(web_rt, users["anna"], list_tasks(web_rt, case_id=case_id)[0]["id"], {})
    approve = list_tasks(web_rt, case_id=case_id)[0]
    assert approve["element_id"] == "Task_Freigabe"
    login(client, "anna")
    page = client.get(f"/aufgaben/{approve['id']}").get_data(as_text=True)
    assert 'id="vier-augen"' in page and "Vier-Augen-Prinzip" in page and "„Bescheid entwerfen“" in page
    assert 'value="complete"' not in page  # no button to press
    resp = client.post(f"/aufgaben/{approve['id']}", data={"csrf_token": csrf_of(page), "action": "complete"})
    assert resp.status_code == 403 and "Vier-Augen-Prinzip" in resp.get_data(as_text=True)
    token = create_token(web_rt, "anna")
    api = client.post(f"/api/v1/tasks/{approve['id']}/complete", json={},
                      headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 403 and "Vier-Augen" in api.get_json()["error"]
    with pytest.raises(Forbidden):
        complete(web_rt, users["anna"], approve["id"], {})
    assert list_tasks(web_rt, case_id=case_id)[0]["id"] == approve["id"]  # still open, nothing changed
    assert complete(web_rt, users["bernd"], approve["id"], {})["state"] == "completed"
