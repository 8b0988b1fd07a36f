"""The local FIT-Connect server and the HTTP clients, over real HTTP on a loopback port.

One server (a werkzeug thread) serves the whole module, with the shipped tenant file and the demo keys
``ensure_demo_keys`` writes. A second small HTTP server receives the new-submission callbacks. Nothing is
patched: the clients talk to the server as the pickup and an online service will.
"""

import json
import queue
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
from werkzeug.wrappers import Request, Response

from connectors.fitconnect import crypto
from connectors.fitconnect.application import DEMO_APPLICATIONS, load_application
from connectors.fitconnect.client import Receiver, Sender
from connectors.fitconnect.errors import ApiError, AuthError, Conflict, NotFoundError
from connectors.fitconnect.keys import ensure_demo_keys, generate_pair, key_folder
from connectors.fitconnect.server import create_app, running
from engine.config import DEFAULT_TENANTS
from engine.tenants import load_tenants

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "ozg" / "fit-connect"
SCHEMA = ROOT / "connectors" / "fitconnect" / "schemas" / "fit-connect-metadata-1.0.0.schema.json"
CALLBACK_SECRET = "test-callback-secret"
# (application file, tenant) for the three samples
CASES = [(path, path.stem.rsplit("_", 1)[1]) for path in DEMO_APPLICATIONS]


class Mailbox:
    """The running server and what a test needs to talk to it."""

    def __init__(self, url, var_dir, tenants, callbacks, database):
        self.url, self.var_dir, self.tenants, self.callbacks, self.database = (url, var_dir, tenants, callbacks,
                                                                               database)

    def destination(self, tenant):
        return self.tenants.get(tenant).destinations[0]

    def keys(self, tenant):
        return key_folder(self.var_dir, self.destination(tenant))

    def receiver(self, tenant):
        d = self.destination(tenant)
        return Receiver(self.url, d.client_id, d.secret())

    def sender(self):
        return Sender(self.url, "demo-sender", "demo-sender-secret")

    def send(self, path, tenant):
        outgoing = load_application(path)
        with self.sender() as sender:
            return sender.send(self.destination(tenant).id, service=outgoing.service, metadata=outgoing.metadata,
                               data=outgoing.data, attachments=outgoing.attachments)


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory):
    base = tmp_path_factory.mktemp("fitconnect")
    tenants = load_tenants(DEFAULT_TENANTS)
    ensure_demo_keys(base / "var", tenants, key_size=2048)  # 2048 bits: generated keys only, to save time
    callbacks = queue.Queue()

    @Request.application
    def callback_receiver(request):
        callbacks.put((dict(request.headers), request.get_data(as_text=True)))
        return Response(status=204)

    with running(callback_receiver) as callback_url:
        app = create_app({"DATABASE": str(base / "var" / "fitconnect-server.sqlite"), "VAR_DIR": str(base / "var"),
                          "DESTINATIONS": tenants.destinations, "CALLBACK_URL": callback_url + "/callback",
                          "CALLBACK_SECRET": CALLBACK_SECRET,
                          "SERVICE_NAMES": {b.leika: b.name for b in tenants.bindings}})
        with running(app) as url:
            yield Mailbox(url, base / "var", tenants, callbacks, app.config["DATABASE"])


def decrypt_json(token, key):
    return json.loads(crypto.decrypt(token, key))


@pytest.mark.parametrize("path,tenant", CASES, ids=[t for _, t in CASES])
def test_sample_travels_from_sender_to_receiver_and_is_accepted(mailbox, path, tenant):
    sent = mailbox.send(path, tenant)
    keys = mailbox.keys(tenant)
    destination = mailbox.destination(tenant)
    with mailbox.receiver(tenant) as receiver:
        listed = receiver.list_submissions(destination.id)
        assert {"destinationId": destination.id, "submissionId": sent["submissionId"],
                "caseId": sent["caseId"]} in listed
        sub = receiver.fetch_submission(sent["submissionId"])
        private = keys.encryption_private_key()
        metadata = decrypt_json(sub["encryptedMetadata"], private)
        jsonschema.validate(metadata, json.loads(SCHEMA.read_text(encoding="utf-8")))
        data = crypto.decrypt(sub["encryptedData"], private)
        assert json.loads(data) == json.loads(path.read_text(encoding="utf-8"))["data"]
        assert crypto.hash_matches(data, metadata["contentStructure"]["data"]["hash"]["content"])
        parts = {aid: receiver.fetch_attachment(sub["submissionId"], aid) for aid in sub["attachments"]}
        expected_ids = [a["attachmentId"] for a in metadata["contentStructure"]["attachments"]]
        assert sorted(parts) == sorted(expected_ids) and parts
        for entry in metadata["contentStructure"]["attachments"]:
            content = crypto.decrypt(parts[entry["attachmentId"]], private)
            assert content.startswith(b"%PDF") and crypto.hash_matches(content, entry["hash"]["content"])

        # The delivery service's own events: signed with its key, the submit event naming every part's tag.
        service_keys = receiver.delivery_service_keys()
        events = [crypto.verify_set(t, service_keys) for t in receiver.event_log(sub["caseId"])]
        assert [crypto.event_of(c)[0] for c in events][:2] == [crypto.CREATE_SUBMISSION, crypto.SUBMIT_SUBMISSION]
        tags = crypto.authentication_tags(sub["encryptedMetadata"], sub["encryptedData"], parts)
        assert crypto.event_of(events[1])[1] == {"authenticationTags": tags}

        accept = crypto.make_set(keys.signing_private_key(), issuer=destination.id,
                                 submission_id=sub["submissionId"], case_id=sub["caseId"],
                                 event=crypto.ACCEPT_SUBMISSION, payload={"authenticationTags": tags})
        receiver.post_event(sub["caseId"], accept)
        log = receiver.event_log(sub["caseId"])
        assert log[-1] == accept
        signing_kid = keys.signing_public_key().get("kid")
        public = receiver.destination_key(destination.id, signing_kid)
        claims = crypto.verify_set(log[-1], [public])
        assert claims["sub"] == f"submission:{sub['submissionId']}" and claims["txn"] == f"case:{sub['caseId']}"
        assert sent["submissionId"] not in {s["submissionId"] for s in receiver.list_submissions(destination.id)}
        with pytest.raises(Conflict):
            receiver.post_event(sub["caseId"], accept)


def test_wire_shapes_match_the_samples(mailbox):
    sample_dir = SAMPLES / "01_hundesteuer_anmeldung_marburg" / "encrypted"
    sent = mailbox.send(DEMO_APPLICATIONS[0], "marburg")
    with mailbox.receiver("marburg") as receiver:
        token = receiver.token()
    auth = {"Authorization": f"Bearer {token}"}
    listing = httpx.get(f"{mailbox.url}/v2/submissions", headers=auth).json()
    sample_listing = json.loads((sample_dir / "GET_v2_submissions.response.json").read_text())
    assert list(listing) == list(sample_listing)
    assert list(listing["submissions"][0]) == list(sample_listing["submissions"][0])
    fetched = httpx.get(f"{mailbox.url}/v2/submissions/{sent['submissionId']}", headers=auth).json()
    sample = json.loads((sample_dir / "GET_v2_submissions_submissionId.response.json").read_text())
    assert list(fetched) == list(sample)
    assert fetched["serviceType"] == sample["serviceType"]
    events = httpx.get(f"{mailbox.url}/v2/cases/{sent['caseId']}/events", headers=auth).json()
    assert list(events) == ["eventLog"]
    _, claims = crypto.read_set(events["eventLog"][0])
    sample_claims = json.loads((sample_dir / "accept-submission.set.payload.json").read_text())
    assert list(claims) == list(sample_claims)
    destination = httpx.get(f"{mailbox.url}/v2/destinations/{sent['destinationId']}", headers=auth).json()
    assert destination["status"] == "active" and destination["encryptionKid"] == "test-dest-enc-0001"
    assert {"identifier": "urn:de:fim:leika:leistung:99102013104000",
            "name": "Hundesteuer Anmeldung"} in destination["services"]


def test_callback_announces_new_submission_with_a_valid_hmac(mailbox):
    while not mailbox.callbacks.empty():
        mailbox.callbacks.get_nowait()
    sent = mailbox.send(DEMO_APPLICATIONS[2], "wetzlar")
    for _ in range(10):
        headers, body = mailbox.callbacks.get(timeout=10)
        if sent["submissionId"] in body:
            break
    headers = {k.lower(): v for k, v in headers.items()}
    crypto.verify_callback(CALLBACK_SECRET, headers["callback-timestamp"], body, headers["callback-authentication"])
    sample = json.loads((SAMPLES / "03_bewohnerparkausweis_wetzlar" / "encrypted" / "callback.request.json")
                        .read_text())
    assert list(json.loads(body)) == list(json.loads(sample["body"]))
    assert json.loads(body)["submissions"] == [sent]
    with pytest.raises(crypto.CryptoError):
        crypto.verify_callback("another-secret", headers["callback-timestamp"], body,
                               headers["callback-authentication"])
    with mailbox.receiver("wetzlar") as receiver:  # the notify event is logged once the callback got through
        for _ in range(50):
            log = receiver.event_log(sent["caseId"])
            if len(log) == 3:
                break
        assert crypto.event_of(crypto.read_set(log[-1])[1])[0] == crypto.NOTIFY_SUBMISSION


def test_wrong_credentials_and_missing_tokens_get_401(mailbox):
    with pytest.raises(AuthError) as caught, Receiver(mailbox.url, "ozgflow-marburg", "wrong") as receiver:
        receiver.list_submissions()
    assert caught.value.status == 401
    with pytest.raises(AuthError), Sender(mailbox.url, "nobody", "demo-sender-secret") as sender:
        sender.destination(mailbox.destination("marburg").id)
    answer = httpx.post(f"{mailbox.url}/token", data={"grant_type": "client_credentials", "client_id": "demo-sender",
                                                      "client_secret": "demo-sender-secret!"})
    assert answer.status_code == 401 and answer.json() == {"error": "invalid_client"}
    assert httpx.get(f"{mailbox.url}/v2/submissions").status_code == 401
    refused = httpx.get(f"{mailbox.url}/v2/submissions", headers={"Authorization": "Bearer made-up"})
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    assert "Bearer" in refused.headers["WWW-Authenticate"]


def test_events_with_a_bad_signature_are_refused(mailbox):
    sent = mailbox.send(DEMO_APPLICATIONS[1], "giessen")
    destination = mailbox.destination("giessen")
    stranger, _ = generate_pair("signing", 2048)
    stranger_key = crypto.load_key(json.dumps({**stranger, "kid": mailbox.keys("giessen").signing_public_key()
                                               .get("kid")}))
    with mailbox.receiver("giessen") as receiver:
        sub = receiver.fetch_submission(sent["submissionId"])
        parts = {a: receiver.fetch_attachment(sub["submissionId"], a) for a in sub["attachments"]}
        tags = crypto.authentication_tags(sub["encryptedMetadata"], sub["encryptedData"], parts)
        before = receiver.event_log(sent["caseId"])

        def accept(key, **overrides):
            args = {"issuer": destination.id, "submission_id": sent["submissionId"], "case_id": sent["caseId"],
                    "event": crypto.ACCEPT_SUBMISSION, "payload": {"authenticationTags": tags}} | overrides
            return crypto.make_set(key, **args)

        forged = accept(stranger_key)  # right kid, wrong key
        head, body, signature = accept(mailbox.keys("giessen").signing_private_key()).split(".")
        _, other_body, _ = accept(mailbox.keys("giessen").signing_private_key(), jti="x").split(".")
        tampered = f"{head}.{other_body}.{signature}"
        wrong_tags = accept(mailbox.keys("giessen").signing_private_key(),
                            payload={"authenticationTags": {**tags, "data": "AAAA"}})
        for token in (forged, tampered, wrong_tags, "not.a.token", f"{head}.{body}."):
            with pytest.raises(ApiError) as caught:
                receiver.post_event(sent["caseId"], token)
            assert caught.value.status == 422, caught.value
        assert receiver.event_log(sent["caseId"]) == before
        reject = crypto.make_set(mailbox.keys("giessen").signing_private_key(), issuer=destination.id,
                                 submission_id=sent["submissionId"], case_id=sent["caseId"],
                                 event=crypto.REJECT_SUBMISSION,
                                 payload={"problems": [{"type": crypto.PROBLEMS + "hash-mismatch",
                                                        "title": "Prüfsumme stimmt nicht", "instance": "data"}]})
        receiver.post_event(sent["caseId"], reject)
        assert receiver.event_log(sent["caseId"])[-1] == reject


def test_clients_see_only_what_is_theirs(mailbox):
    sent = mailbox.send(DEMO_APPLICATIONS[0], "marburg")
    with mailbox.receiver("wetzlar") as other:
        assert sent["submissionId"] not in {s["submissionId"] for s in other.list_submissions()}
        with pytest.raises(AuthError):
            other.list_submissions(mailbox.destination("marburg").id)
        with pytest.raises(NotFoundError):
            other.fetch_submission(sent["submissionId"])
        with pytest.raises(NotFoundError):
            other.event_log(sent["caseId"])
    with mailbox.sender() as sender:  # a sender reads the event log of its case and the destination keys
        assert len(sender.event_log(sent["caseId"])) >= 2
        kid = sender.destination(sent["destinationId"])["encryptionKid"]
        assert not sender.destination_key(sent["destinationId"], kid).has_private
        with pytest.raises(AuthError):
            sender._call("GET", "/v2/submissions")


def test_announce_and_submit_are_checked(mailbox):
    destination = mailbox.destination("limburg")
    service = {"name": "Hundesteuer Anmeldung", "identifier": "urn:de:fim:leika:leistung:99102013104000"}
    attachment = "0f1e2d3c-4b5a-4968-8776-655443322101"
    with mailbox.sender() as sender:
        key = sender.destination_key(destination.id, sender.destination(destination.id)["encryptionKid"])
        part = crypto.encrypt(b"{}", key, cty="application/json")
        # the older field name serviceType is understood as well
        old_style = sender._call("POST", "/v2/submissions", expect=(201,), json={
            "destinationId": destination.id, "announcedAttachments": [attachment], "serviceType": service}).json()
        assert set(old_style) == {"destinationId", "submissionId", "caseId"}
        with pytest.raises(ApiError) as caught:  # announced attachment not uploaded yet
            sender.submit(old_style["submissionId"], part, part)
        assert caught.value.status == 422
        with pytest.raises(NotFoundError):
            sender.upload_attachment(old_style["submissionId"], "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c02", part)
        with pytest.raises(ApiError) as caught:
            sender.upload_attachment(old_style["submissionId"], attachment, "not a JWE")
        assert caught.value.status == 422
        sender.upload_attachment(old_style["submissionId"], attachment, part)
        sender.submit(old_style["submissionId"], part, part)
        with pytest.raises(Conflict):
            sender.submit(old_style["submissionId"], part, part)
        with pytest.raises(ApiError) as caught:
            sender.announce(destination.id, {"name": "?", "identifier": "urn:de:fim:leika:leistung:99999999999999"},
                            [])
        assert caught.value.status == 422 and "does not accept" in str(caught.value)
        with pytest.raises(NotFoundError):
            sender.announce("00000000-0000-4000-8000-000000000000", service, [])


def test_mailbox_send_command(mailbox, tmp_path):
    env = {"OZGFLOW_FITCONNECT_URL": mailbox.url, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "ozgflow", "mailbox", "send", str(DEMO_APPLICATIONS[2]),
                           "--tenant", "wetzlar", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    sent = json.loads(proc.stdout)
    assert sent["tenant"] == "wetzlar" and sent["attachments"] == 2 and sent["service"] == "99108001001000"
    with mailbox.receiver("wetzlar") as receiver:
        assert receiver.fetch_submission(sent["submissionId"])["caseId"] == sent["caseId"]
    unreachable = subprocess.run([sys.executable, "-m", "ozgflow", "mailbox", "send", str(DEMO_APPLICATIONS[0]),
                                  "--tenant", "marburg"], cwd=tmp_path, capture_output=True, text=True,
                                 env={**env, "OZGFLOW_FITCONNECT_URL": "http://127.0.0.1:9"}, timeout=120)
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert unreachable.stderr.startswith("error: ")


def test_expired_token_is_refused_and_the_client_fetches_a_new_one(tmp_path):
    """Time is injected (CLOCK): the server's clock jumps past the token's lifetime."""
    tenants = load_tenants(DEFAULT_TENANTS)
    ensure_demo_keys(tmp_path / "var", tenants, key_size=2048)
    now = [1_800_000_000.0]
    app = create_app({"DATABASE": str(tmp_path / "server.sqlite"), "VAR_DIR": str(tmp_path / "var"),
                      "DESTINATIONS": tenants.destinations, "CLOCK": lambda: now[0], "TOKEN_TTL": 60})
    destination = tenants.get("fulda").destinations[0]
    with running(app) as url, Receiver(url, destination.client_id, destination.secret()) as receiver:
        first = receiver.token()
        assert receiver.list_submissions() == []
        now[0] += 61
        assert httpx.get(f"{url}/v2/submissions", headers={"Authorization": f"Bearer {first}"}).status_code == 401
        assert receiver.list_submissions() == []  # one 401, a fresh token, the same call again
        assert receiver.token() != first
