"""The JSON API under /api/v1 with bearer tokens: shapes like the CLI's, status codes, tenant isolation."""

from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import open_task, start

from engine.cases import get_case, list_tasks
from engine.users import create_token


def bearer(rt, name):
    return {"Authorization": f"Bearer {create_token(rt, name)}"}


def test_without_a_valid_token_401(client, users):
    for headers in ({}, {"Authorization": "Bearer falsch"}, {"Authorization": "Basic YW5uYTp4"}):
        resp = client.get("/api/v1/tasks", headers=headers)
        assert resp.status_code == 401 and resp.is_json and "token" in resp.get_json()["error"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_tasks_list_has_the_cli_shape_and_filters(client, users, web_rt):
    start(web_rt, count=3)
    start(web_rt, "wetzlar")
    h = bearer(web_rt, "anna")
    body = client.get("/api/v1/tasks", headers=h).get_json()
    assert body["total"] == 3 and len(body["items"]) == 3
    assert body["items"] == list_tasks(web_rt, tenant="marburg")  # exactly what `ozgflow task list --json` says
    first = body["items"][0]
    assert set(first) == {"id", "case_id", "element_id", "title", "groups", "assignee", "due", "follow_up"}
    client.post(f"/api/v1/tasks/{first['id']}/claim", headers=h)
    mine = client.get("/api/v1/tasks?scope=mine", headers=h).get_json()
    assert mine["total"] == 1 and mine["items"][0]["assignee"] == "anna"
    assert client.get("/api/v1/tasks?scope=unassigned&per_page=1", headers=h).get_json()["total"] == 2
    assert client.get("/api/v1/tasks?per_page=x", headers=h).status_code == 400


def test_claim_unclaim_complete_without_csrf(client, users, web_rt):
    case_id = start(web_rt)[0]
    tid = open_task(web_rt, case_id)["id"]
    h = bearer(web_rt, "anna")
    resp = client.post(f"/api/v1/tasks/{tid}/claim", headers=h)
    assert resp.status_code == 200 and resp.get_json()["assignee"] == "anna"
    other = bearer(web_rt, "bernd")
    assert client.post(f"/api/v1/tasks/{tid}/claim", headers=other).status_code == 409
    assert client.post(f"/api/v1/tasks/{tid}/unclaim", headers=other).status_code == 403
    assert client.post(f"/api/v1/tasks/{tid}/unclaim", headers=h).get_json()["assignee"] is None
    bad = client.post(f"/api/v1/tasks/{tid}/complete", headers=h, json={"vollstaendig": "vielleicht"})
    assert bad.status_code == 422 and "vollstaendig" in bad.get_json()["fields"]
    assert client.post(f"/api/v1/tasks/{tid}/complete", headers=h, data="[1]",
                       content_type="application/json").status_code == 400
    assert client.post(f"/api/v1/tasks/{tid}/complete", headers=h, data="{kaputt",
                       content_type="application/json").status_code == 400
    done = client.post(f"/api/v1/tasks/{tid}/complete", headers=h, json={"vollstaendig": True})
    assert done.status_code == 200
    assert done.get_json() == {"task_id": tid, "case_id": case_id, "state": "waiting"}
    again = client.post(f"/api/v1/tasks/{tid}/complete", headers=h, json={"vollstaendig": True})
    assert again.status_code == 409 and again.is_json


def test_case_show_has_the_cli_shape(client, users, web_rt):
    case_id = start(web_rt)[0]
    body = client.get(f"/api/v1/cases/{case_id}", headers=bearer(web_rt, "anna")).get_json()
    assert body == get_case(web_rt, case_id)


def test_other_tenants_get_404_by_api(client, users, web_rt):
    case_id = start(web_rt, "marburg")[0]
    tid = open_task(web_rt, case_id)["id"]
    h = bearer(web_rt, "wim")
    assert client.get("/api/v1/tasks", headers=h).get_json() == {"items": [], "total": 0}
    assert client.get("/api/v1/tasks?q=MR-", headers=h).get_json()["total"] == 0
    assert client.get(f"/api/v1/cases/{case_id}", headers=h).status_code == 404
    for action in ("claim", "unclaim", "complete"):
        resp = client.post(f"/api/v1/tasks/{tid}/{action}", headers=h, json={"vollstaendig": True})
        assert resp.status_code == 404 and resp.is_json
    assert open_task(web_rt, case_id)["assignee"] is None
    assert client.post("/api/v1/tasks/nicht-da/claim", headers=h).status_code == 404
    assert client.get("/api/v1/cases/999", headers=h).status_code == 404
    assert client.get("/api/v1/nichts", headers=h).status_code == 404


def test_a_session_cookie_is_no_api_login(logged_in):
    assert logged_in.get("/api/v1/tasks").status_code == 401
