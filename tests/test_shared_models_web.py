"""The ePayment provider's notification reaches a shared model through the web API: signed with the city's
secret from tenants.toml, it becomes the city's payment message (zahlung_eingegangen) for the case whose
Kassenzeichen it names, and the Gewerbeanmeldung moves on to the notifications of the authorities."""

import hashlib
import hmac
import json

from conftest import ROOT
from test_web_fixtures import *  # noqa: F403

from engine.cases import get_case, list_tasks, start_case
from engine.jobs import Worker


def _signed(body, secret):
    raw = json.dumps(body).encode()
    return raw, {"Content-Type": "application/json",
                 "X-Signature": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()}


def test_payment_notification_pays_the_gewerbe_fee(client, web_rt):
    example = json.loads((ROOT / "processes" / "gewerbeanmeldung" / "tests" / "zahlung-marburg.json").read_text())
    [case] = start_case(web_rt, "gewerbeanmeldung", "marburg", example["data"])
    [check] = list_tasks(web_rt, case_id=case["id"])
    from engine.cases import complete_task

    complete_task(web_rt, check["id"], "mia", {"vollstaendig": True})
    Worker(web_rt).run_due()  # Sollstellung, then the Zahlungsaufforderung (no reply channel: Postversand)
    data = get_case(web_rt, case["id"])["data"]
    kassenzeichen = data["kassenzeichen"]
    assert data["bezahlt"] is False and kassenzeichen.startswith("5.")
    secret = web_rt.tenants.get("marburg").settings["payment_notify_secret"]
    body = {"kassenzeichen": kassenzeichen, "status": "BOOKED", "betrag": "40.00"}
    raw, headers = _signed(body, secret)
    assert client.post("/api/v1/payments/giessen/notify", data=raw, headers=headers).status_code == 401
    [post] = list_tasks(web_rt, case_id=case["id"])
    assert post["element_id"] == "Send_Zahlungsaufforderung_Postversand"
    complete_task(web_rt, post["id"], "post", {})
    resp = client.post("/api/v1/payments/marburg/notify", data=raw, headers=headers)
    assert resp.status_code == 202 and resp.get_json()["status"] == "delivered"
    shown = get_case(web_rt, case["id"])
    assert shown["data"]["bezahlt"] is True and shown["data"]["zahlung"] == body
    assert sorted(t["element_id"] for t in shown["tasks"]) == ["Task_Mitteilung", "Task_Mitteilung"]
    assert {"epayment"} <= {h["actor"] for h in shown["history"] if h["action"] == "message_delivered"}
