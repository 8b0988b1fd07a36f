"""The incidents page: team leads see their tenant's failed background jobs and retry or cancel them."""

from datetime import timedelta

from test_web_fixtures import *  # noqa: F403
from test_web_fixtures import csrf_of, login, start

from engine.audit import history
from engine.jobs import Worker, list_incidents, schedule
from engine.lean import Lean


def incident_for(rt, case_id, tenant):
    """A job of an unknown kind for the case: it fails at once and, with one try, becomes an incident."""
    now = rt.clock()
    with Lean.transaction(rt.db) as db:
        schedule(db, "no_such_kind", now, now, case_id=case_id, tenant=tenant, max_attempts=1)
    Worker(rt).run_due(now=now + timedelta(seconds=1))


def test_teamlead_retries_and_cancels(client, users, web_rt):
    [mr] = start(web_rt, "marburg")
    [wz] = start(web_rt, "wetzlar")
    incident_for(web_rt, mr, "marburg")
    incident_for(web_rt, wz, "wetzlar")
    login(client, "lena")
    html = client.get("/stoerungen/").get_data(as_text=True)
    assert "no handler is registered" in html
    [mine] = [i for i in list_incidents(web_rt) if i["tenant"] == "marburg"]
    [theirs] = [i for i in list_incidents(web_rt) if i["tenant"] == "wetzlar"]
    assert f'/stoerungen/{theirs["id"]}/retry' not in html, "a team lead sees only their tenant's incidents"
    token = csrf_of(html)
    assert client.post(f'/stoerungen/{theirs["id"]}/cancel', data={"csrf_token": token}).status_code == 404
    assert client.post(f'/stoerungen/{mine["id"]}/retry', data={}).status_code == 400  # no CSRF token
    assert client.post(f'/stoerungen/{mine["id"]}/retry', data={"csrf_token": token}).status_code == 302
    assert [i["id"] for i in list_incidents(web_rt)] == [theirs["id"]]
    with web_rt.reader.connect() as conn:
        assert [h["actor"] for h in history(conn, mr) if h["action"] == "incident_retried"] == ["lena"]


def test_caseworker_gets_403(client, users):
    login(client, "anna")
    assert client.get("/stoerungen/").status_code == 403
