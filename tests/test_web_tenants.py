"""Tenants never see each other: every route of the app, requested by a user (and a token) of Wetzlar with the
ids of Marburg's case, task, document, saved filter and absence, reveals nothing of them and changes
nothing — pages, downloads, the API and the search."""

import re

import pytest
from sqlalchemy import func, select
from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import SAMPLE_PDF, add_document, csrf_of, login, open_task, start

from engine.audit import history
from engine.deputies import add_absence
from engine.inbox import save_filter
from engine.schema import Comment
from engine.users import create_token

SECRET_NAME = "Geheimname"
# Not user-facing: machine callers with their own signatures (HMAC), or the login itself.
SKIP = {"static", "auth.login", "auth.logout", "background.payment_notify", "mailbox.callback"}


@pytest.fixture
def marburg(web_rt, users, clock):
    """Marburg's objects: a case with an applicant, its task (unassigned), a document, a filter, an absence."""
    data = {"hundename": "Bello", "halter": {"familienname": SECRET_NAME, "vornamen": "Zacharias"}}
    case_id = start(web_rt, data=data)[0]
    ids = {"case_id": case_id, "task_id": open_task(web_rt, case_id)["id"],
           "document_id": add_document(web_rt, case_id, SAMPLE_PDF, "Geheim.pdf"),
           "filter_id": save_filter(web_rt, users["bernd"], "Bernds Filter", {"scope": "mine"}),
           "absence_id": add_absence(web_rt, users["bernd"], "anna", clock.now, clock.now.replace(year=2027)),
           "job_id": 1, "tenant_id": "marburg", "action": "retry",
           "process_id": "hundesteuer-anmeldung", "version": 1, "a": 1, "b": 1}  # shared models (web.versions)
    return ids


def _url(rule, ids):
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(ids[m.group(1)]), rule.rule)


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint not in SKIP:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def _leaks(resp):
    body = resp.get_data()
    return [m for m in (b"MR-", SECRET_NAME.encode(), b"Zacharias", SAMPLE_PDF[:40], b"Geheim.pdf", b"bernd",
                        b"Bernds Filter") if m in body]


def test_every_route_hides_marburg_from_wetzlar(app, client, web_rt, marburg):
    login(client, "wim")
    token = create_token(web_rt, "wim")
    seen = 0
    for rule, method in _routes(app):
        url = _url(rule, marburg)
        if rule.rule.startswith("/api/"):
            resp = client.open(url, method=method, json={} if method == "POST" else None,
                               headers={"Authorization": f"Bearer {token}"})
        elif method == "POST":
            token_csrf = csrf_of(client.get("/posteingang").get_data(as_text=True))
            resp = client.post(url, data={"csrf_token": token_csrf, "task_ids": marburg["task_id"],
                                          "text": "von Wetzlar", "action": "complete", "vollstaendig": "true"})
        else:
            resp = client.get(url)
        seen += 1
        assert _leaks(resp) == [], (method, url, resp.status_code)
        if any(f"<{k}>" in rule.rule or f":{k}>" in rule.rule for k in ("case_id", "task_id", "document_id",
                                                                          "filter_id", "absence_id")):
            assert resp.status_code in (403, 404), (method, url, resp.status_code)
    assert seen > 30
    # the search does not find Marburg's applicant, the API's inbox lists nothing of Marburg
    assert b"Zacharias" not in client.get(f"/posteingang?q={SECRET_NAME}").get_data()
    api = client.get(f"/api/v1/tasks?q={SECRET_NAME}", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert api == {"items": [], "total": 0}
    # and nothing changed in Marburg
    assert open_task(web_rt, marburg["case_id"])["assignee"] is None
    with web_rt.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Comment)).scalar() == 0
        assert {e["actor"] for e in history(conn, marburg["case_id"])} <= {"system", "init"}


def test_the_same_routes_do_show_marburg_to_marburg(client, marburg):
    login(client, "anna")
    assert b"Zacharias Geheimname" in client.get(f"/vorgaenge/{marburg['case_id']}").get_data()
    assert client.get(f"/vorgaenge/{marburg['case_id']}/dokumente/{marburg['document_id']}").data == SAMPLE_PDF
    assert b"Zacharias Geheimname" in client.get(f"/posteingang?q={SECRET_NAME}").get_data()
