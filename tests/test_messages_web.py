"""The background endpoints over HTTP: messages (202/404), signed payment notifications, incidents, metrics."""

import hashlib
import hmac
import json
from dataclasses import replace

from test_messages import process
from test_web_fixtures import *  # noqa: F403

from engine.cases import get_case, start_case
from engine.deploy import deploy
from engine.jobs import Worker, schedule
from engine.lean import Lean
from engine.models import Bundle
from engine.users import create_token

SECRET = "zahlungs-geheimnis"


def bearer(rt, name):
    return {"Authorization": f"Bearer {create_token(rt, name)}"}


def test_message_api_delivers_keeps_and_dead_letters(client, users, web_rt):
    deploy(web_rt, [Bundle({"m.bpmn": process("erst_pruefen", first_user_task=True)}),
                    Bundle({"z.bpmn": process("zahlen")})])
    [waiting] = start_case(web_rt, "zahlen", "marburg")
    [early] = start_case(web_rt, "erst_pruefen", "marburg")
    h = bearer(web_rt, "anna")
    sent = client.post("/api/v1/messages", headers=h,
                       json={"name": "zahlung", "correlation": {"case_id": waiting["id"]}, "payload": {"ok": 1}})
    assert sent.status_code == 202 and sent.get_json()["status"] == "delivered"
    entry = next(h for h in get_case(web_rt, waiting["id"])["history"] if h["action"] == "message_delivered")
    assert entry["actor"] == "anna"
    kept = client.post("/api/v1/messages", headers=h,
                       json={"name": "zahlung", "correlation": {"aktenzeichen": early["aktenzeichen"]}})
    assert kept.status_code == 202 and kept.get_json()["status"] == "kept"
    lost = client.post("/api/v1/messages", headers=h, json={"name": "zahlung", "correlation": {"case_id": 999}})
    assert lost.status_code == 404 and lost.get_json()["status"] == "dead"
    assert client.post("/api/v1/messages", headers=h, json={"name": "x"}).status_code == 400
    assert client.post("/api/v1/messages", json={"name": "x", "correlation": {"case_id": 1}}).status_code == 401
    # A Wetzlar token does not reach a Marburg case: for it, the case does not exist.
    other = client.post("/api/v1/messages", headers=bearer(web_rt, "wim"),
                        json={"name": "zahlung", "correlation": {"case_id": early["id"]}})
    assert other.status_code == 404
    # Dead letters: team leads and admins only.
    assert client.get("/api/v1/messages/dead", headers=h).status_code == 403
    dead = client.get("/api/v1/messages/dead", headers=bearer(web_rt, "lena")).get_json()["items"]
    assert [m["correlation"] for m in dead] == [{"case_id": 999, "tenant": "marburg"}]


def _with_payment_secret(rt):
    marburg = rt.tenants.tenants["marburg"]
    # the default message name "zahlung" (the shipped cities name theirs zahlung_eingegangen)
    settings = {**marburg.settings, "payment_notify_secret": SECRET, "payment_message": "zahlung"}
    rt.tenants.tenants["marburg"] = replace(marburg, settings=settings)


def _signed(body):
    raw = json.dumps(body).encode()
    return raw, {"X-Signature": hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
                 "Content-Type": "application/json"}


def test_payment_notification_signed_by_the_tenant_becomes_a_message(client, web_rt):
    _with_payment_secret(web_rt)
    deploy(web_rt, [Bundle({"z.bpmn": process("zahlen")})])
    [case] = start_case(web_rt, "zahlen", "marburg", {"kassenzeichen": "5.0100.000123.4"})
    body = {"kassenzeichen": "5.0100.000123.4", "status": "BOOKED", "betrag": "45.00"}
    raw, headers = _signed(body)
    forged = client.post("/api/v1/payments/marburg/notify", data=raw,
                         headers={**headers, "X-Signature": "0" * 64})
    assert forged.status_code == 401
    assert client.post("/api/v1/payments/wetzlar/notify", data=raw, headers=headers).status_code == 401
    resp = client.post("/api/v1/payments/marburg/notify", data=raw, headers=headers)
    assert resp.status_code == 202 and resp.get_json()["status"] == "delivered"
    shown = get_case(web_rt, case["id"])
    assert shown["state"] == "completed" and shown["data"]["zahlung"] == body
    unknown, headers = _signed({"kassenzeichen": "9.9999", "status": "BOOKED"})
    assert client.post("/api/v1/payments/marburg/notify", data=unknown, headers=headers).status_code == 404


def test_incidents_over_the_api_and_metrics(client, users, web_rt, clock):
    deploy(web_rt, [Bundle({"z.bpmn": process("zahlen")})])
    [case] = start_case(web_rt, "zahlen", "marburg")
    with Lean.transaction(web_rt.db) as db:
        schedule(db, "no_such_kind", clock(), clock(), case_id=case["id"], tenant="marburg", max_attempts=1)
    Worker(web_rt).run_due()
    lead = bearer(web_rt, "lena")
    assert client.get("/api/v1/incidents", headers=bearer(web_rt, "anna")).status_code == 403
    [incident] = client.get("/api/v1/incidents", headers=lead).get_json()["items"]
    assert client.get("/api/v1/incidents", headers=bearer(web_rt, "root")).get_json()["items"] == [incident]
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ozgflow_jobs_incident{kind="no_such_kind"} 1' in text
    assert "ozgflow_incidents_open 1" in text and 'ozgflow_cases{state="waiting"} 1' in text
    assert "# TYPE ozgflow_timer_lateness_seconds gauge" in text
    retried = client.post(f"/api/v1/incidents/{incident['id']}/retry", headers=lead)
    assert retried.status_code == 200 and retried.get_json()["state"] == "pending"
    assert client.post(f"/api/v1/incidents/{incident['id']}/cancel", headers=lead).status_code == 409
    assert client.post("/api/v1/incidents/999/retry", headers=lead).status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert "ozgflow_incidents_open 0" in text and 'ozgflow_jobs_due{kind="no_such_kind"} 1' in text
