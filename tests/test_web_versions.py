"""Versions on the designers' pages and by API; moving cases (admins); suspend/resume/terminate (admins)."""

import io

import pytest
from chain_bpmn import chain, script, user
from conftest import ROOT, make_runtime
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import PASSWORD, csrf_of, login, open_task, post_form, start

from engine.cases import get_case, list_tasks
from engine.deploy import bundles_from_paths, deploy
from engine.models import Bundle
from engine.users import add_user, create_token

V1 = chain("umzug", [user("A", "Prüfen"), user("B", "Bescheid")], name="Umzug")
V2 = chain("umzug", [user("A", "Prüfen neu", "steuern"), script("S", "Rechnen", "x = 42"), user("B", "Bescheid")],
           name="Umzug")


@pytest.fixture
def web_rt(sqlite_url, tmp_path, clock):
    """Only the Hundesteuer model (bound for every city) and what the tests deploy themselves."""
    runtime = make_runtime(sqlite_url, tmp_path / "var", clock=clock)
    deploy(runtime, bundles_from_paths([ROOT / "processes" / p for p in ("nachforderung", "hundesteuer-anmeldung")]))
    yield runtime
    runtime.close()


def bearer(rt, name):
    return {"Authorization": f"Bearer {create_token(rt, name)}"}


def two_versions(rt):
    deploy(rt, [Bundle({"umzug.bpmn": V1})], actor="dora")
    from engine.cases import start_case

    ids = [c["id"] for c in start_case(rt, "umzug", "marburg", count=2)]
    deploy(rt, [Bundle({"umzug.bpmn": V2})], actor="dora")
    return ids


def test_designer_sees_versions_diagram_url_bindings_and_diff(client, web_rt, users):
    add_user(web_rt, "dora", "marburg", "designer", PASSWORD, [])
    two_versions(web_rt)
    start(web_rt)
    assert login(client, "dora").status_code == 302
    listing = client.get("/modelle").get_data(as_text=True)
    assert 'href="/modelle/umzug/versionen/2"' in listing and 'href="/modelle/umzug/versionen/1/vergleich/2"' in listing
    assert "<td>2 / 0</td>" in listing  # version 1: two running cases

    page = client.get("/modelle/hundesteuer-anmeldung/versionen/1").get_data(as_text=True)
    assert 'data-url="/modelle/hundesteuer-anmeldung/versionen/1/diagramm.bpmn"' in page
    assert "Leistungen der Kommunen" in page and "<code>99" in page  # LeiKa keys of the bindings
    assert "starten auf dieser Version" in page
    xml = client.get("/modelle/umzug/versionen/1/diagramm.bpmn")
    assert xml.status_code == 200 and xml.mimetype == "application/xml" and b'<bpmn:userTask id="B"' in xml.data

    old = client.get("/modelle/umzug/versionen/1").get_data(as_text=True)
    assert "starten auf einer neueren Version" in old and "Vorgänge umstellen" not in old  # admins only

    diff = client.get("/modelle/umzug/versionen/1/vergleich/2").get_data(as_text=True)
    assert "2 hinzugefügt, 0 entfernt" in diff and "<code>S</code>" in diff and "Prüfen neu" in diff
    assert client.get("/modelle/umzug/versionen/1/umstellen?nach=2").status_code == 403  # moving: admins
    assert client.get("/modelle/umzug/versionen/9").status_code == 404


def test_caseworker_cannot_see_versions(logged_in, web_rt):
    assert logged_in.get("/modelle/hundesteuer-anmeldung/versionen/1").status_code == 403
    assert logged_in.get("/modelle/hundesteuer-anmeldung/versionen/1/diagramm.bpmn").status_code == 403


def test_api_versions_diff_and_bpmn(client, web_rt, users):
    add_user(web_rt, "dora", "marburg", "designer", PASSWORD, [])
    two_versions(web_rt)
    h = bearer(web_rt, "dora")
    listing = client.get("/api/v1/process-models", headers=h).get_json()
    [umzug] = [m for m in listing["models"] if m["process_id"] == "umzug"]
    assert [(v["version"], v["cases"]["open"], v["starts_new_cases"]) for v in umzug["versions"]] == \
        [(2, 0, True), (1, 2, False)]
    versions = client.get("/api/v1/process-models/umzug/versions", headers=h).get_json()
    assert [v["version"] for v in versions["versions"]] == [2, 1] and versions["bindings"] == []
    one = client.get("/api/v1/process-models/umzug/versions/1", headers=h).get_json()
    assert one["cases"]["by_tenant"] == {"marburg": 2} and one["bpmn_url"].endswith("/versions/1/bpmn")
    assert client.get(one["bpmn_url"], headers=h).data == V1
    d = client.get("/api/v1/process-models/umzug/versions/1/diff/2", headers=h).get_json()
    assert [e["id"] for e in d["added"]] == ["Flow_4", "S"] and "A" in [e["id"] for e in d["changed"]]
    assert client.get("/api/v1/process-models/umzug/versions/1/diff/7", headers=h).status_code == 404
    assert client.get("/api/v1/process-models/umzug/versions/1", headers=bearer(web_rt, "anna")).status_code == 403
    assert client.get("/api/v1/process-models/umzug/versions/1").status_code == 401
    # moving is admin work
    r = client.post("/api/v1/process-models/umzug/migrations/preview", json={"from": 1, "to": 2}, headers=h)
    assert r.status_code == 403


def test_admin_moves_cases_on_the_page_and_by_api(client, web_rt, users):
    ids = two_versions(web_rt)
    h = bearer(web_rt, "root")
    r = client.post("/api/v1/process-models/umzug/migrations/preview", json={"from": 1, "to": 2}, headers=h)
    assert r.status_code == 200 and r.get_json()["movable"] == 2
    assert client.post("/api/v1/process-models/umzug/migrations/preview", json={"from": 2, "to": 1},
                       headers=h).status_code == 422
    r = client.post("/api/v1/process-models/umzug/migrations", json={"from": 1, "to": 2, "cases": [ids[0]]}, headers=h)
    assert r.get_json()["moved"] == 1 and get_case(web_rt, ids[0])["version"] == 2

    assert login(client, "root").status_code == 302
    page = client.get("/modelle/umzug/versionen/1/umstellen?nach=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "1 von 1 laufenden Vorgängen können umgestellt werden" in html
    no_token = client.post("/modelle/umzug/versionen/1/umstellen?nach=2", data={})
    assert no_token.status_code == 400
    done = client.post("/modelle/umzug/versionen/1/umstellen?nach=2", data={"csrf_token": csrf_of(html)})
    assert done.status_code == 200
    assert "1 Vorgang/Vorgänge umgestellt, 0 nicht umgestellt" in done.get_data(as_text=True)
    shown = get_case(web_rt, ids[1])
    assert shown["version"] == 2
    assert [(h["actor"], h["new"]) for h in shown["history"] if h["action"] == "case_moved"] == \
        [("root", {"process_id": "umzug", "from_version": 1, "to_version": 2})]
    history = client.get(f"/vorgaenge/{ids[1]}").get_data(as_text=True)
    assert "Auf neue Modellversion umgestellt" in history and "Version 1 → 2" in history


def test_suspend_resume_terminate_on_the_case_page(client, web_rt, users):
    [case_id] = start(web_rt)
    task = open_task(web_rt, case_id)
    assert login(client, "anna").status_code == 302
    assert "anhalten" not in client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    refused = post_form(client, f"/vorgaenge/{case_id}/anhalten", {"grund": "x"}, page=f"/vorgaenge/{case_id}")
    assert refused.status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/posteingang").get_data(as_text=True))})

    assert login(client, "root").status_code == 302
    page = client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "Vorgang anhalten" in page and "Vorgang beenden" in page
    assert client.post(f"/vorgaenge/{case_id}/anhalten", data={"grund": "ohne Token"}).status_code == 400
    r = post_form(client, f"/vorgaenge/{case_id}/anhalten", {"grund": "Widerspruch"}, page=f"/vorgaenge/{case_id}")
    assert r.status_code == 302 and get_case(web_rt, case_id)["state"] == "suspended"
    page = client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    assert "Dieser Vorgang ist angehalten" in page and "Vorgang fortsetzen" in page and "Grund: Widerspruch" in page
    inbox = client.get("/posteingang").get_data(as_text=True)
    assert "Vorgang angehalten" in inbox

    # completing its task by API is refused with a clear message
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", json={}, headers=bearer(web_rt, "anna"))
    assert r.status_code == 409 and "angehalten" in r.get_json()["error"]

    post_form(client, f"/vorgaenge/{case_id}/fortsetzen", {"grund": "erledigt"}, page=f"/vorgaenge/{case_id}")
    assert get_case(web_rt, case_id)["state"] == "waiting"
    post_form(client, f"/vorgaenge/{case_id}/beenden", {"grund": ""}, page=f"/vorgaenge/{case_id}")
    assert "Bitte einen Grund angeben" in client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)
    post_form(client, f"/vorgaenge/{case_id}/beenden", {"grund": "zurückgezogen"}, page=f"/vorgaenge/{case_id}")
    assert get_case(web_rt, case_id)["state"] == "terminated" and list_tasks(web_rt, case_id=case_id) == []
    assert "beendet (abgebrochen)" in client.get(f"/vorgaenge/{case_id}").get_data(as_text=True)


def test_case_state_api_admin_only_across_tenants(client, web_rt, users):
    [marburg_case] = start(web_rt, "marburg")
    [wetzlar_case] = start(web_rt, "wetzlar")
    for name in ("anna", "lena", "wim"):
        r = client.post(f"/api/v1/cases/{wetzlar_case}/suspend", json={"reason": "x"}, headers=bearer(web_rt, name))
        assert r.status_code == 403
    admin = bearer(web_rt, "root")  # an admin of Marburg: admins see every tenant
    r = client.post(f"/api/v1/cases/{wetzlar_case}/suspend", json={"reason": "Prüfung"}, headers=admin)
    assert r.status_code == 200 and r.get_json() == {"case_id": wetzlar_case, "state": "suspended"}
    assert client.post(f"/api/v1/cases/{wetzlar_case}/suspend", json={"reason": "x"}, headers=admin).status_code == 409
    assert client.post(f"/api/v1/cases/{wetzlar_case}/resume", json={}, headers=admin).status_code == 422
    assert client.post(f"/api/v1/cases/{wetzlar_case}/resume", json={"reason": "ok"},
                       headers=admin).get_json()["state"] == "waiting"
    r = client.post(f"/api/v1/cases/{marburg_case}/terminate", json={"reason": "Rücknahme"}, headers=admin)
    assert r.get_json()["state"] == "terminated"
    assert client.post("/api/v1/cases/999999/suspend", json={"reason": "x"}, headers=admin).status_code == 404
    # the upload form still works next to the version pages (a version link in the success message)
    assert login(client, "root").status_code == 302
    token = csrf_of(client.get("/modelle").get_data(as_text=True))
    resp = client.post("/modelle", data={"csrf_token": token, "files": [(io.BytesIO(V1), "umzug.bpmn")]},
                       content_type="multipart/form-data")
    assert 'href="/modelle/umzug/versionen/1"' in resp.get_data(as_text=True)


def test_move_preview_page_says_in_german_why_a_case_cannot_move(client, web_rt, users):
    ids = two_versions(web_rt)
    from engine.cases import complete_task

    complete_task(web_rt, list_tasks(web_rt, case_id=ids[0])[0]["id"], "anna", {})  # now at B
    deploy(web_rt, [Bundle({"umzug.bpmn": chain("umzug", [user("A", "Prüfen")], name="Umzug")})])
    assert login(client, "root").status_code == 302
    html = client.get("/modelle/umzug/versionen/1/umstellen?nach=3").get_data(as_text=True)
    assert "1 von 2 laufenden Vorgängen können umgestellt werden, 1 nicht" in html
    assert "steht an B (Bescheid), das es in Version 3 nicht gibt" in html
    assert client.get("/modelle/umzug/versionen/2/umstellen?nach=1").status_code == 400


def test_task_page_of_a_suspended_case_says_so_and_refuses_completion(client, web_rt, users):
    [case_id] = start(web_rt)
    task = open_task(web_rt, case_id)
    from engine.suspension import suspend

    suspend(web_rt, case_id, "root", "Klärung")
    assert login(client, "anna").status_code == 302
    page = client.get(f"/aufgaben/{task['id']}").get_data(as_text=True)
    assert 'id="angehalten"' in page
    r = post_form(client, f"/aufgaben/{task['id']}", {"action": "complete", "vollstaendig": "true"},
                  page=f"/aufgaben/{task['id']}")
    assert r.status_code == 409 and "Der Vorgang ist angehalten" in r.get_data(as_text=True)
    assert open_task(web_rt, case_id)["id"] == task["id"]
