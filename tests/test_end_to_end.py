"""Issue #7 end to end, once per shipped model (every ``processes/<id>/`` with example cases):

a real encrypted submission through the local FIT-Connect server with ``replyChannel`` eMail → pickup → the
tasks of the model's example case → its letters (e-mailed ones received by a real SMTP server on loopback,
aiosmtpd, with the PDF stored as the case's document) → the case closes → the xdomea package in
``var/efile/<tenant>/`` is valid against the XSD and holds the submission's documents with their hashes →
import confirmed (``ozgflow efile confirm``) → ``ozgflow verify`` passes → the retention run, with the clock
past the Aufbewahrungsende, deletes the case and leaves its tombstone.

The example used is the model's first one (by file name) that ends "completed" and e-mails a letter, else its
first completed one. Models are found at collection time, so models added later are included by themselves.
"""

import dataclasses
import hashlib
import json
import shutil
import socket
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, SHARED, Cli
from lxml import etree
from test_intake import keys_var  # noqa: F401  (module fixture: the destinations' keys)

from connectors.fitconnect.application import DEMO_APPLICATIONS, load_application
from connectors.fitconnect.client import Sender
from connectors.fitconnect.crypto import sha512_hex
from connectors.fitconnect.server import create_app, running
from engine import examples, migrate, retention
from engine.cases import get_case, list_cases
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import bundles_from_paths, deploy, order_bundles
from engine.dispatch import list_dispatches
from engine.efile import get_export
from engine.errors import DeployError
from engine.intake import GENERIC_INTAKE, poll_all
from engine.jobs import Worker
from engine.runtime import Runtime
from engine.safexml import parse_xml
from engine.schema import Document
from engine.tenants import Binding, load_tenants

PROCESSES = ROOT / "processes"
XSD = SHARED / "ozg" / "xdomea-3.0.0" / "xdomea_3.0.0" / "xdomea.xsd"
CITIZEN = "buerger.e2e@example.org"
UNBOUND_LEIKA = "99000000000000"  # a service no model is bound to: the generic intake takes it


def _examples(folder):
    return [(p.name, json.loads(p.read_text(encoding="utf-8"))) for p in sorted((folder / "tests").glob("*.json"))]


def _mails_a_letter(example):
    letters = ((example.get("expect") or {}).get("data_contains") or {}).get("letters") or {}
    return any(isinstance(v, dict) and v.get("channel") == "email" for v in letters.values())


def pick_example(folder):
    found = _examples(folder)
    completed = [e for e in found if (e[1].get("expect") or {}).get("state") == "completed"]
    return next((e for e in completed if _mails_a_letter(e[1])), completed[0] if completed else found[0])


MODELS = sorted(p.name for p in PROCESSES.iterdir() if p.is_dir() and any((p / "tests").glob("*.json")))


# --- the world: FIT-Connect server, SMTP server, engine --------------------------------------------------


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OZGFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OZGFLOW_SMTP_PORT", str(port))
    yield inbox
    controller.stop()


def leika_for(tenants, tenant, process_id):
    for b in tenants.bindings:
        if b.process == process_id and b.tenant in (tenant, None):
            return b.leika, tenants
    # a model no service is bound to: the tenant's destination also takes an unbound service, which reaches
    # the generic intake, or — for another model (e.g. one that is usually called) — a binding made for the test
    t = tenants.tenants[tenant]
    first = dataclasses.replace(t.destinations[0], services=(*t.destinations[0].services, UNBOUND_LEIKA))
    changed = dataclasses.replace(t, destinations=(first, *t.destinations[1:]))
    bindings = tenants.bindings if process_id == GENERIC_INTAKE else (
        *tenants.bindings, Binding(leika=UNBOUND_LEIKA, process=process_id, tenant=tenant))
    return UNBOUND_LEIKA, dataclasses.replace(tenants, tenants={**tenants.tenants, tenant: changed},
                                              bindings=bindings)


def parts_for(leika, example):
    """Metadata, data and attachments of a submission carrying the example's data (attachments and metadata
    from the demo application of that service, else the first demo application)."""
    demo = next((load_application(p) for p in DEMO_APPLICATIONS if load_application(p).leika == leika),
                load_application(DEMO_APPLICATIONS[0]))
    metadata = json.loads(demo.metadata)
    metadata["publicServiceType"] = {**metadata["publicServiceType"],
                                     "identifier": f"urn:de:fim:leika:leistung:{leika}"}
    wanted = (example.get("metadata") or {}).get("replyChannel") or {}
    metadata["replyChannel"] = wanted if wanted and "eMail" not in wanted else {"eMail": {"address": CITIZEN}}
    if (example.get("metadata") or {}).get("paymentInformation"):
        metadata["paymentInformation"] = example["metadata"]["paymentInformation"]
    data = {k: v for k, v in (example.get("data") or {}).items() if k != "antrag"}
    data_bytes = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    metadata["contentStructure"]["data"]["hash"] = {"type": "sha512", "content": sha512_hex(data_bytes)}
    if data.get("$schema"):
        metadata["contentStructure"]["data"]["submissionSchema"]["schemaUri"] = data["$schema"]
    return metadata, data_bytes, demo.attachments


@pytest.fixture
def world(db_url, keys_var, tmp_path, smtp):  # noqa: F811
    var = tmp_path / "var"
    shutil.copytree(keys_var, var)
    shutil.rmtree(var / "efile", ignore_errors=True)
    return {"db_url": db_url, "var": var, "tmp": tmp_path, "smtp": smtp}


def _send(url, tenants, tenant, leika, metadata, data_bytes, attachments):
    dest = tenants.tenants[tenant].destinations[0]
    assert leika in dest.services
    with Sender(url, "demo-sender", "demo-sender-secret") as sender:
        return sender.send(dest.id, service={"name": metadata["publicServiceType"]["name"], "identifier": leika},
                           metadata=json.dumps(metadata).encode(), data=data_bytes, attachments=attachments)


def deploy_models(rt, model):
    """Deploy every model in dependency order; one that is still being written may fail, unless it is the model
    under test (then the test fails with its problems)."""
    for bundle in order_bundles(bundles_from_paths([PROCESSES]), rt.settings.max_xml_bytes):
        try:
            deploy(rt, [bundle])
        except DeployError:
            if Path(bundle.source).name == model:
                raise


def run_steps(rt, clock, case_id, example, name):
    for i, step in enumerate(example.get("steps", []), 1):
        where = f"{name} step {i}"
        if "task" in step:
            examples._task_step(rt, case_id, step, where)
        elif "message" in step:
            examples._message_step(rt, case_id, step, where)
        elif "advance" in step:
            examples._advance(rt, clock, step["advance"], where)
        elif step.get("jobs"):
            examples.run_jobs(rt)
        assert get_case(rt, case_id)["state"] != "error", f"{where}: the case failed"
    examples.run_jobs(rt)


# --- the test ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_end_to_end(model, world):
    name, example = pick_example(PROCESSES / model)
    tenant = example["tenant"]
    leika, tenants = leika_for(load_tenants(DEFAULT_TENANTS), tenant, model)
    var = world["var"]
    app = create_app({"DATABASE": str(world["tmp"] / "fitconnect.sqlite"), "VAR_DIR": str(var),
                      "DESTINATIONS": tenants.destinations,
                      "SIGNING_KEY_FILE": str(var / "delivery-service.signing.private.jwk.json")})
    clock = examples.Clock(examples._parse_now(example.get("now") or examples.DEFAULT_NOW))
    rt = Runtime(Settings(var_dir=var, database_url=world["db_url"], tenants_file=DEFAULT_TENANTS,
                          processes_dir=PROCESSES), tenants=tenants, clock=clock)
    try:
        migrate.upgrade(rt.db)
        deploy_models(rt, model)
        metadata, data_bytes, attachments = parts_for(leika, example)
        with running(app) as url:
            ids = _send(url, tenants, tenant, leika, metadata, data_bytes, attachments)
            report = poll_all(rt, base_url=url)
        assert report.accepted == [ids["submissionId"]], (report.rejected, report.errors)
        [case] = list_cases(rt)
        assert case["process_id"] == model and case["tenant"] == tenant
        case_id = case["id"]

        # the tasks of the example, then the letters
        run_steps(rt, clock, case_id, example, f"{model}/{name}")
        done = get_case(rt, case_id)
        assert done["state"] == "completed", (done["state"], done["tasks"])
        examples.check_expectations(rt, done, {k: v for k, v in example.get("expect", {}).items()
                                               if k not in ("treasury",)}, name)
        check_letters(rt, done, world["smtp"])
        if _mails_a_letter(example):  # the example says a letter goes by e-mail: the SMTP server got it
            assert world["smtp"].messages, "no e-mail reached the SMTP server"

        # the electronic file
        Worker(rt).run_due(now=clock() + timedelta(minutes=5))
        export = get_export(rt, case_id)
        check_package(export, var, tenant, rt, case_id, metadata)

        cli = Cli(world["db_url"], world["tmp"])
        cli.env.update(OZGFLOW_VAR=str(var))
        assert "NOT confirmed" in cli("efile", "show", case_id).stdout
        cli("efile", "confirm", case_id, "--by", "eakte-e2e")
        verified = cli.json("verify", case_id)
        assert verified["ok"] is True and verified.get("confirmed") in (True, None), verified

        # retention: nothing before the end, the case is gone after it
        export = get_export(rt, case_id)
        assert export["confirmed"]
        end = datetime.fromisoformat(export["retention_until"]).replace(hour=12, tzinfo=UTC)
        assert retention.run(rt, now=end - timedelta(days=1))["deleted"] == []
        result = retention.run(rt, now=end + timedelta(days=1))
        assert [d["case_id"] if isinstance(d, dict) else d for d in result["deleted"]] == [case_id]
        assert list_cases(rt) == [] and not Path(export["location"]).exists()
        [stone] = retention.tombstones(rt)
        assert stone["case_id"] == case_id and stone["package_sha256"] == export["package_sha256"]
    finally:
        rt.close()


def check_letters(rt, case, smtp):
    """Every letter of the case is a stored PDF document; e-mailed ones arrived at the SMTP server."""
    sent = case["data"].get("letters") or {}
    assert sent, "the example sends no letter"
    rows = {r["letter"]: r for r in list_dispatches(rt, case_id=case["id"])}
    mailed = {n for n, e in sent.items() if e["channel"] == "email"}
    assert len(smtp.messages) == len(mailed)
    with rt.reader.connect() as conn:
        docs = {d.id: d for d in conn.execute(Document.__table__.select().where(Document.case_id == case["id"]))}
    received = {}
    import email
    import email.policy

    for rcpts, raw in smtp.messages:
        assert rcpts == [CITIZEN]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.iter_attachments():
            received[part.get_filename()] = part.get_content()
    for letter, entry in sent.items():
        doc = docs[entry["document_id"]]
        assert doc.purpose == "letter" and entry["dispatched_at"]
        assert rows[letter]["channel"] == entry["channel"] and rows[letter]["dispatched_at"] is not None
        if entry["channel"] == "email":
            pdf = received[f"{letter}.pdf"]
            assert pdf.startswith(b"%PDF") and hashlib.sha256(pdf).hexdigest() == doc.sha256


def check_package(export, var, tenant, rt, case_id, metadata):
    location = Path(export["location"])
    assert location.parent == var / "efile" / tenant and location.name.endswith("_Abgabe.Abgabe.0401.zip")
    with zipfile.ZipFile(location) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    [xml_name] = [n for n in entries if n.endswith(".xml")]
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    tree = parse_xml(entries[xml_name], xml_name, 50 * 1024 * 1024)
    assert schema.validate(tree), schema.error_log
    by_sha512 = {hashlib.sha512(c).hexdigest() for n, c in entries.items() if n != xml_name}
    for att in metadata["contentStructure"]["attachments"]:  # the citizen's files, byte for byte
        assert att["hash"]["content"] in by_sha512, att["filename"]
    with rt.reader.connect() as conn:
        letters = {d.sha256 for d in conn.execute(Document.__table__.select().where(
            Document.case_id == case_id, Document.purpose == "letter"))}
    assert letters <= {hashlib.sha256(c).hexdigest() for c in entries.values()}
    assert {d["sha256"] for d in export["documents"]} >= letters
