"""The task page: the form from the task's JSON Schema, errors next to fields, drafts, completing."""

import re

from conftest import DATA
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, open_task, start

from engine.audit import history
from engine.cases import list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.users import create_token
from web.forms import errors_of, fields_of, typed_data

FESTSETZEN = {"type": "object", "required": ["jahressteuer", "entscheidung"], "properties": {
    "jahressteuer": {"type": "number", "title": "Jahressteuer (EUR)", "minimum": 0, "maximum": 10000},
    "entscheidung": {"type": "string", "enum": ["festgesetzt", "abgelehnt"]},
    "anzahl": {"type": "integer"},
    "ok": {"type": "boolean"},
    "halter": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}


def submit(client, tid, **form):
    token = csrf_of(client.get(f"/aufgaben/{tid}").get_data(as_text=True))
    return client.post(f"/aufgaben/{tid}", data={"csrf_token": token, **form})


def test_form_strings_become_the_schemas_types():
    data = typed_data(FESTSETZEN, {"jahressteuer": "1.234,50", "entscheidung": "abgelehnt", "anzahl": "3",
                                   "ok": "false", "halter.name": "Erika"})
    assert data == {"jahressteuer": 1234.5, "entscheidung": "abgelehnt", "anzahl": 3, "ok": False,
                    "halter": {"name": "Erika"}}
    assert typed_data(FESTSETZEN, {"jahressteuer": "90"}) == {"jahressteuer": 90}
    bad = typed_data(FESTSETZEN, {"jahressteuer": "viel", "anzahl": "2.5", "entscheidung": ""})
    assert bad == {"jahressteuer": "viel", "anzahl": "2.5"}
    assert errors_of(FESTSETZEN, bad) == {"jahressteuer": "Bitte eine Zahl eingeben.",
                                          "anzahl": "Bitte eine ganze Zahl eingeben.",
                                          "entscheidung": "Pflichtfeld: bitte ausfüllen."}
    assert errors_of(FESTSETZEN, {"jahressteuer": -1, "entscheidung": "x", "halter": {}}) == {
        "jahressteuer": "Der Wert muss mindestens 0 sein.",
        "entscheidung": "Bitte einen der vorgegebenen Werte wählen.",
        "halter.name": "Pflichtfeld: bitte ausfüllen."}
    kinds = {f.name: f.kind for f in fields_of(FESTSETZEN)}
    assert kinds == {"jahressteuer": "number", "entscheidung": "select", "anzahl": "integer", "ok": "boolean",
                     "halter": "group"}


def test_task_page_renders_the_form_named_after_field_ids(logged_in, web_rt):
    tid = open_task(web_rt, start(web_rt)[0])["id"]
    html = logged_in.get(f"/aufgaben/{tid}").get_data(as_text=True)
    assert "<h1>Antrag prüfen</h1>" in html and "MR-022.31-2026-00001" in html
    assert html.count('name="vollstaendig"') == 2 and 'type="radio"' in html  # Ja / Nein
    assert re.search(r'<textarea id="feld-anmerkung" name="anmerkung"', html)
    assert '<label for="feld-anmerkung">Anmerkung</label>' in html
    assert "Entwurf speichern" in html and "Abschließen" in html


def test_invalid_form_shows_errors_next_to_fields_and_keeps_input(logged_in, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    resp = submit(logged_in, tid, action="complete", anmerkung="Bitte <b>Impfpass</b> prüfen")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="feld-vollstaendig-fehler">Pflichtfeld: bitte ausfüllen.</span>' in html
    assert "Bitte &lt;b&gt;Impfpass&lt;/b&gt; prüfen</textarea>" in html
    assert open_task(web_rt, case_id)["id"] == tid and open_task(web_rt, case_id)["assignee"] is None
    with web_rt.reader.connect() as conn:
        assert history(conn, case_id)[-1]["action"] != "task_claimed"  # nothing changed


def test_draft_keeps_typed_work_without_completing(logged_in, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    resp = submit(logged_in, tid, action="draft", anmerkung="halb fertig", vollstaendig="false")
    assert resp.status_code == 302
    html = logged_in.get(f"/aufgaben/{tid}").get_data(as_text=True)
    assert "Entwurf gespeichert" in html and "halb fertig</textarea>" in html
    assert 'value="false" checked' in html
    assert open_task(web_rt, case_id)["id"] == tid


def test_complete_claims_on_the_way_and_advances_the_case(logged_in, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    submit(logged_in, tid, action="draft", anmerkung="Entwurf")
    resp = submit(logged_in, tid, action="complete", vollstaendig="true", anmerkung="alles da")
    assert resp.status_code == 302 and resp.headers["Location"] == "/posteingang"
    assert "abgeschlossen" in logged_in.get("/posteingang").get_data(as_text=True)
    nxt = open_task(web_rt, case_id)
    assert nxt["element_id"] == "Task_Festsetzen"
    with web_rt.reader.connect() as conn:
        actions = [(e["actor"], e["action"]) for e in history(conn, case_id)]
    i = actions.index(("anna", "task_claimed"))
    assert actions[i + 1] == ("anna", "task_completed")
    done = logged_in.get(f"/aufgaben/{tid}").get_data(as_text=True)
    assert "abgeschlossen von anna" in done and "Abschließen</button>" not in done
    # the next form: numbers typed the German way
    bad = submit(logged_in, nxt["id"], action="complete", abweichende_jahressteuer="neunzig",
                 entscheidung="festgesetzt")
    assert bad.status_code == 422 and "Bitte eine Zahl eingeben." in bad.get_data(as_text=True)
    assert 'value="neunzig"' in bad.get_data(as_text=True)
    ok = submit(logged_in, nxt["id"], action="complete", abweichende_jahressteuer="90,50", entscheidung="festgesetzt",
                begruendung="Ermäßigung nach der Satzung")
    assert ok.status_code == 302 and list_tasks(web_rt, case_id=case_id) == []


def test_someone_elses_task_cannot_be_completed(client, users, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    login(client, "bernd")
    client.post(f"/aufgaben/{tid}/uebernehmen",
                data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    login(client, "anna")
    resp = submit(client, tid, action="complete", vollstaendig="true", anmerkung="meins")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "bereits von bernd übernommen" in html and "meins</textarea>" in html
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    login(client, "carla")  # same city, other group: may look, not work
    page = client.get(f"/aufgaben/{tid}").get_data(as_text=True)
    assert "nicht bearbeiten" in page and "Abschließen</button>" not in page


def test_completed_twice_shows_a_clear_message_and_the_typed_data(client, users, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    login(client, "anna")
    token = csrf_of(client.get(f"/aufgaben/{tid}").get_data(as_text=True))
    client.post(f"/aufgaben/{tid}", data={"csrf_token": token, "action": "complete", "vollstaendig": "true"})
    resp = client.post(f"/aufgaben/{tid}", data={"csrf_token": token, "action": "complete",
                                                  "vollstaendig": "false", "anmerkung": "zu spät"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "inzwischen von anna abgeschlossen" in html and "zu spät</textarea>" in html


def test_task_post_needs_csrf_and_other_tenants_get_404(client, users, web_rt):
    tid = open_task(web_rt, start(web_rt)[0])["id"]
    login(client, "anna")
    assert client.post(f"/aufgaben/{tid}", data={"action": "complete", "vollstaendig": "true"}).status_code == 400
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})
    login(client, "wim")
    assert client.get(f"/aufgaben/{tid}").status_code == 404
    token = csrf_of(client.get("/posteingang").get_data(as_text=True))
    assert client.post(f"/aufgaben/{tid}", data={"csrf_token": token, "action": "complete"}).status_code == 404
    assert client.get("/aufgaben/kein-uuid").status_code == 404


def test_application_data_is_escaped_on_the_task_page(logged_in, web_rt):
    case_id = start(web_rt, data={"hundename": "<script>alert('x')</script>", "halter": {"name": "Erika"}})[0]
    html = logged_in.get(f"/aufgaben/{open_task(web_rt, case_id)['id']}").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<dt>halter</dt><dd><dl class=\"data\"><dt>name</dt><dd>Erika</dd></dl>" in html


def test_follow_up_date_shown_in_inbox_task_page_and_api(logged_in, web_rt):
    """camunda:followUpDate="P3D" (Wiedervorlage) — stored at start, shown to the caseworker and in task JSON."""
    deploy(web_rt, bundles_from_paths([DATA / "camunda_approval.bpmn"]))
    case_id = start_case(web_rt, "camunda_approval", "marburg")[0]["id"]
    [task] = list_tasks(web_rt, case_id=case_id)
    assert task["follow_up"] == "2026-11-05T09:00:00.000000Z" and task["due"] == "2030-12-01T10:00:00.000000Z"
    inbox = logged_in.get("/posteingang?scope=mine").get_data(as_text=True)
    assert "Wiedervorlage 05.11.2026" in inbox
    page = logged_in.get(f"/aufgaben/{task['id']}").get_data(as_text=True)
    assert re.search(r"<dt>Wiedervorlage</dt><dd>05\.11\.2026, 10:00</dd>", page)
    h = {"Authorization": f"Bearer {create_token(web_rt, 'anna')}"}
    [item] = [t for t in logged_in.get("/api/v1/tasks", headers=h).get_json()["items"] if t["id"] == task["id"]]
    assert item == task
    no_follow_up = open_task(web_rt, start(web_rt)[0])  # a task without one: no line, null in JSON
    assert no_follow_up["follow_up"] is None
    assert "Wiedervorlage" not in logged_in.get(f"/aufgaben/{no_follow_up['id']}").get_data(as_text=True)
