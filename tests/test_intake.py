"""The OZG mailbox end to end over real HTTP: the local FIT-Connect server, the pickup, the cases.

Every test gets a fresh server store and a fresh engine database (SQLite and PostgreSQL); the destination
keys are made once per module (2048-bit: generated keys only, to save time).
"""

import json
import os
import random
import shutil
import sqlite3
import time
import uuid

import pytest
from conftest import ROOT, Cli
from jwcrypto import jwk

from connectors.fitconnect import crypto
from connectors.fitconnect.application import DEMO_APPLICATIONS, load_application
from connectors.fitconnect.client import Receiver, Sender
from connectors.fitconnect.keys import ensure_demo_keys, generate_pair, key_folder
from connectors.fitconnect.receive import FitConnectSource
from connectors.fitconnect.server import create_app, running
from engine import migrate
from engine.cases import get_case, list_cases
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import bundles_from_paths, deploy
from engine.intake import pickup, poll_all, quarantine
from engine.runtime import Runtime
from engine.tenants import load_tenants

PROBLEM = crypto.PROBLEMS
MARBURG = next(p for p in DEMO_APPLICATIONS if p.stem.endswith("_marburg"))


@pytest.fixture(scope="module")
def keys_var(tmp_path_factory):
    var = tmp_path_factory.mktemp("mailbox") / "var"
    ensure_demo_keys(var, load_tenants(DEFAULT_TENANTS), key_size=2048)
    return var


class World:
    """A running local FIT-Connect server and an engine runtime that picks up from it."""

    def __init__(self, url, server_db, rt, db_url, keys_var, tmp_path):
        self.url, self.server_db, self.rt, self.db_url = url, server_db, rt, db_url
        self.keys_var, self.tmp_path = keys_var, tmp_path

    def destination(self, tenant):
        return self.rt.tenants.get(tenant).destinations[0]

    def send(self, path, tenant):
        out = load_application(path)
        with Sender(self.url, "demo-sender", "demo-sender-secret") as sender:
            return sender.send(self.destination(tenant).id, service=out.service, metadata=out.metadata,
                               data=out.data, attachments=out.attachments)

    def send_parts(self, tenant, service, metadata, data, attachments, announce=None, key=None):
        """Send hand-made parts (for bad submissions): ``key`` overrides the encryption key of the data."""
        dest = self.destination(tenant).id
        with Sender(self.url, "demo-sender", "demo-sender-secret") as sender:
            real = sender.destination_key(dest, sender.destination(dest)["encryptionKid"])
            ids = sender.announce(dest, service, announce if announce is not None else list(attachments))
            for aid, content in attachments.items():
                sender.upload_attachment(ids["submissionId"], aid, crypto.encrypt(content, real))
            sender.submit(ids["submissionId"], crypto.encrypt(metadata, real, cty="application/json"),
                          crypto.encrypt(data, key or real, cty="application/json"))
            return ids

    def event_log(self, tenant, case_id):
        d = self.destination(tenant)
        with Receiver(self.url, d.client_id, d.secret()) as receiver:
            return [crypto.read_set(t)[1] for t in receiver.event_log(case_id)]

    def cli(self):
        cli = Cli(self.db_url, self.tmp_path)
        cli.env.update(OZGFLOW_VAR=str(self.keys_var), OZGFLOW_FITCONNECT_URL=self.url)
        return cli


@pytest.fixture
def world(db_url, keys_var, tmp_path):
    tenants = load_tenants(DEFAULT_TENANTS)
    shutil.rmtree(keys_var / "kasse", ignore_errors=True)  # the treasury's records of an earlier test's database
    server_db = tmp_path / "fitconnect-server.sqlite"
    app = create_app({"DATABASE": str(server_db), "VAR_DIR": str(keys_var), "DESTINATIONS": tenants.destinations,
                      "SIGNING_KEY_FILE": str(keys_var / "delivery-service.signing.private.jwk.json")})
    rt = Runtime(Settings(var_dir=keys_var, database_url=db_url, tenants_file=DEFAULT_TENANTS,
                          processes_dir=ROOT / "processes"), tenants=tenants)
    migrate.upgrade(rt.db)
    deploy(rt, bundles_from_paths([ROOT / "processes"]))
    with running(app) as url:
        yield World(url, server_db, rt, db_url, keys_var, tmp_path)
    rt.close()


def test_three_samples_become_three_cases(world):
    sent = {tenant: world.send(path, tenant) for path in DEMO_APPLICATIONS
            for tenant in [path.stem.rsplit("_", 1)[1]]}
    report = poll_all(world.rt, base_url=world.url)
    assert sorted(report.accepted) == sorted(s["submissionId"] for s in sent.values())
    assert report.rejected == [] and report.errors == []
    cases = {c["tenant"]: c for c in list_cases(world.rt)}
    assert set(cases) == {"marburg", "giessen", "wetzlar"}
    for tenant, ids in sent.items():
        case = get_case(world.rt, cases[tenant]["id"])
        assert case["submission_id"] == ids["submissionId"]
        assert case["data"]["antrag"]["fitconnect_case_id"] == ids["caseId"]
        assert case["data"]["antrag"]["documents"], "the attachments are in the case"
        log = world.event_log(tenant, ids["caseId"])
        assert list(log[-1]["events"]) == [crypto.ACCEPT_SUBMISSION]
        # the accept is signed with the destination's key: it verifies with the public one
        d = world.destination(tenant)
        with Receiver(world.url, d.client_id, d.secret()) as receiver:
            token = receiver.event_log(ids["caseId"])[-1]
        claims = crypto.verify_set(token, [key_folder(world.keys_var, d).signing_public_key()])
        assert claims["sub"] == f"submission:{ids['submissionId']}" and claims["txn"] == f"case:{ids['caseId']}"
        tags = claims["events"][crypto.ACCEPT_SUBMISSION]["authenticationTags"]
        assert set(tags) == {"metadata", "data", "attachments"}
    marburg = get_case(world.rt, cases["marburg"]["id"])
    assert marburg["process_id"] == "hundesteuer-anmeldung"
    assert marburg["data"]["hund"]["name"] == "Bruno" and marburg["tasks"][0]["element_id"] == "Task_AntragPruefen"
    # each sample lands in its own shared model, with its city's settings ("stadt") and the payment metadata
    giessen = get_case(world.rt, cases["giessen"]["id"])
    assert giessen["process_id"] == "gewerbeanmeldung"
    assert [t["element_id"] for t in giessen["tasks"]] == ["Task_AnzeigePruefen"]
    assert giessen["data"]["stadt"]["id"] == "giessen" and giessen["data"]["gebuehr"] == 26.0
    assert giessen["data"]["antrag"]["payment"]["status"] == "BOOKED"
    wetzlar = get_case(world.rt, cases["wetzlar"]["id"])
    assert wetzlar["process_id"] == "bewohnerparkausweis"
    assert wetzlar["data"]["zone"] == "A" and wetzlar["data"]["pruefergebnis"] == "regelfall"
    assert [t["element_id"] for t in wetzlar["tasks"]] == ["Task_AntragPruefen"]


def test_duplicate_pickup_is_exactly_once(world):
    ids = world.send(MARBURG, "marburg")
    first = poll_all(world.rt, base_url=world.url)
    second = poll_all(world.rt, base_url=world.url)
    assert first.accepted == [ids["submissionId"]] and second.accepted == []
    assert len(list_cases(world.rt)) == 1
    events = [next(iter(e["events"])) for e in world.event_log("marburg", ids["caseId"])]
    assert events.count(crypto.ACCEPT_SUBMISSION) == 1


def _parts(**changes):
    out = load_application(MARBURG)
    metadata = json.loads(out.metadata)
    return out, metadata


def bad_submissions(world):
    """(name, expected problem, sent ids) for each kind of bad submission."""
    out, metadata = _parts()
    aid = next(iter(out.attachments))
    cases = []

    m = json.loads(out.metadata)
    m["contentStructure"]["data"]["hash"]["content"] = "0" * 128
    cases.append(("hash", "hash-mismatch", world.send_parts("marburg", out.service, json.dumps(m).encode(),
                                                           out.data, out.attachments)))
    other_key = jwk.JWK(**generate_pair("encryption", key_size=2048)[1])
    cases.append(("undecryptable", "encryption-issue",
                  world.send_parts("marburg", out.service, out.metadata, out.data, out.attachments,
                                   key=other_key)))
    m = json.loads(out.metadata)
    del m["contentStructure"]
    cases.append(("schema", "schema-violation", world.send_parts("marburg", out.service, json.dumps(m).encode(),
                                                                 out.data, out.attachments)))
    extra = str(uuid.uuid4())
    cases.append(("extra attachment", "attachments-mismatch",
                  world.send_parts("marburg", out.service, out.metadata, out.data,
                                   {**out.attachments, extra: b"%PDF-1.4 extra"})))
    cases.append(("missing attachment", "attachments-mismatch",
                  world.send_parts("marburg", out.service, out.metadata, out.data, {}, announce=[])))
    m = json.loads(out.metadata)
    m["publicServiceType"] = {"name": "Fischereischein", "identifier": "urn:de:fim:leika:leistung:99000000000000"}
    cases.append(("service", "service-mismatch", world.send_parts("marburg", out.service, json.dumps(m).encode(),
                                                                  out.data, out.attachments)))
    data = json.loads(out.data)
    del data["halter"]  # the model's data.schema.json requires it
    data_bytes = json.dumps(data).encode()
    m = json.loads(out.metadata)
    m["contentStructure"]["data"]["hash"]["content"] = crypto.sha512_hex(data_bytes)
    cases.append(("data schema", "schema-violation", world.send_parts("marburg", out.service,
                                                                      json.dumps(m).encode(), data_bytes,
                                                                      out.attachments)))
    tampered = world.send_parts("marburg", out.service, out.metadata, out.data, out.attachments)
    with Sender(world.url, "demo-sender", "demo-sender-secret") as sender:
        dest = world.destination("marburg").id
        key = sender.destination_key(dest, sender.destination(dest)["encryptionKid"])
    with sqlite3.connect(world.server_db) as conn:  # a part swapped in transit: same content, new encryption
        conn.execute("UPDATE attachment SET content = ? WHERE submission_id = ? AND attachment_id = ?",
                     (crypto.encrypt(out.attachments[aid], key), tampered["submissionId"], aid))
    cases.append(("wrong tag", "incorrect-authentication-tag", tampered))
    return cases


def test_bad_submissions_rejected_with_problem_and_quarantined(world):
    cases = bad_submissions(world)
    report = poll_all(world.rt, base_url=world.url)
    assert report.accepted == [] and report.errors == []
    assert sorted(report.rejected) == sorted(ids["submissionId"] for _n, _p, ids in cases)
    assert list_cases(world.rt) == [], "a bad submission never becomes a case"
    held = {q["submission_id"]: q for q in quarantine(world.rt)}
    for name, expected, ids in cases:
        entry = held[ids["submissionId"]]
        assert entry["problem_type"] == PROBLEM + expected, name
        assert entry["tenant"] == "marburg" and entry["reason"]
        [reject] = [e for e in world.event_log("marburg", ids["caseId"]) if crypto.REJECT_SUBMISSION in e["events"]]
        problems = reject["events"][crypto.REJECT_SUBMISSION]["problems"]
        assert problems[0]["type"] == PROBLEM + expected, name
    with world.rt.reader.connect() as conn:  # the raw encrypted parts are kept
        raw = conn.exec_driver_sql("SELECT raw FROM submission").scalars().all()
    assert all(json.loads(r)["encryptedMetadata"].count(".") == 4 for r in raw)


def test_oversized_part_rejected(world):
    ids = world.send(MARBURG, "marburg")
    tenant = world.rt.tenants.get("marburg")
    d = tenant.destinations[0]
    with Receiver(world.url, d.client_id, d.secret()) as receiver:
        source = FitConnectSource(receiver, d, world.keys_var, max_part_bytes=200)
        report = pickup(world.rt, "marburg", source)
    assert report.rejected == [ids["submissionId"]]
    assert quarantine(world.rt)[0]["problem_type"] == PROBLEM + "technical-error"


def test_unreachable_mailbox_is_reported_not_raised(world):
    report = poll_all(world.rt, base_url="http://127.0.0.1:9")  # nothing listens on the discard port
    assert report.errors and report.accepted == []


def test_cli_pickup_and_quarantine(world):
    world.send(MARBURG, "marburg")
    cli = world.cli()
    doc = cli.json("mailbox", "pickup")
    assert len(doc["accepted"]) == 1 and doc["errors"] == []
    assert cli.json("mailbox", "quarantine") == []
    [case] = cli.json("case", "list")
    assert case["submission_id"] == doc["accepted"][0]


def test_workers_killed_mid_pickup_still_exactly_once(world):
    sent = [world.send(MARBURG, "marburg") for _ in range(3)]
    cli = world.cli()
    rng = random.Random(7)
    for _ in range(6):  # start pickups and kill -9 them at random moments
        proc = cli.popen("mailbox", "pickup", "--tenant", "marburg")
        time.sleep(rng.uniform(0.3, 1.5))
        proc.kill()
        proc.wait()
    racing = [cli.popen("mailbox", "pickup", "--tenant", "marburg") for _ in range(2)]  # two at once
    for proc in racing:
        assert proc.wait(timeout=120) == 0, proc.communicate()
    cli("mailbox", "pickup", "--tenant", "marburg")
    cases = list_cases(world.rt)
    assert sorted(c["submission_id"] for c in cases) == sorted(s["submissionId"] for s in sent)
    for ids in sent:
        events = [next(iter(e["events"])) for e in world.event_log("marburg", ids["caseId"])]
        assert events.count(crypto.ACCEPT_SUBMISSION) == 1 and crypto.REJECT_SUBMISSION not in events
    with world.rt.reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM submission WHERE answered_at IS NULL").scalar() == 0


def test_worker_once_picks_up_and_survives_an_unreachable_mailbox(world):
    ids = world.send(MARBURG, "marburg")
    cli = world.cli()
    done = cli.json("worker", "--once")
    assert done["done"] >= 1
    [case] = cli.json("case", "list")
    assert case["submission_id"] == ids["submissionId"]
    cli.env["OZGFLOW_FITCONNECT_URL"] = "http://127.0.0.1:9"  # nothing listens there
    from engine.intake import wake_pickup

    assert wake_pickup(world.rt)  # the next round is due at once, not in 10 s
    proc = cli("worker", "--once", check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "unreachable" in proc.stderr


def test_callback_makes_the_pickup_due_now(world):
    from datetime import timedelta

    from engine.jobs import Worker, ensure_periodic
    from engine.lean import Lean
    from web import create_app

    ensure_periodic(world.rt)
    with Lean.transaction(world.rt.db) as db:  # the next round is far away
        db.run("UPDATE job SET due_at = ? WHERE dedupe_key = 'periodic:mailbox_poll'",
               (db.ts(world.rt.clock() + timedelta(hours=1)),))
    app = create_app({"TESTING": True, "FITCONNECT_CALLBACK_SECRET": "s3cret"}, runtime=world.rt)
    client = app.test_client()
    body = json.dumps({"type": "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions",
                       "submissionIds": ["x"]})
    stamp = str(int(time.time()))
    refused = client.post("/api/v1/fitconnect/callback", data=body, headers={
        "callback-timestamp": stamp, "callback-authentication": "00" * 64, "Content-Type": "application/json"})
    assert refused.status_code == 401
    ids = world.send(MARBURG, "marburg")
    woken = client.post("/api/v1/fitconnect/callback", data=body, headers={
        "callback-timestamp": stamp, "callback-authentication": crypto.callback_signature("s3cret", stamp, body),
        "Content-Type": "application/json"})
    assert woken.status_code == 202
    os.environ["OZGFLOW_FITCONNECT_URL"] = world.url  # what the worker picks up from
    try:
        Worker(world.rt).run_due()
    finally:
        del os.environ["OZGFLOW_FITCONNECT_URL"]
    [case] = list_cases(world.rt)
    assert case["submission_id"] == ids["submissionId"]
