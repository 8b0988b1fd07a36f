"""The citizen's answer to a Nachforderung through the OZG mailbox, over real HTTP: a follow-up submission in the
same FIT-Connect case (caseId of the first one) becomes no new case; its attachment becomes a document of the
waiting case and the message ``unterlagen_nachgereicht`` ends the Nachforderung. Early and late answers are
kept, never dropped."""

import json
import zipfile
from datetime import timedelta

import pytest
from conftest import ROOT
from test_intake import MARBURG, World, keys_var  # noqa: F401  (fixture)
from test_nachforderung import CALLER, complete, open_tasks, through_dispatch

from connectors.fitconnect import crypto
from connectors.fitconnect.application import load_application
from connectors.fitconnect.client import Sender
from connectors.fitconnect.server import create_app, running
from engine import migrate
from engine.cases import complete_task, get_case, list_cases
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import bundles_from_paths, deploy
from engine.efile import get_export, verify_case
from engine.intake import poll_all, quarantine
from engine.jobs import Worker
from engine.messages import list_messages
from engine.models import Bundle
from engine.runtime import Runtime
from engine.schema import Document
from engine.tenants import load_tenants
from web.cases import describe

PDF = b"%PDF-1.4\n% Sachkundenachweis\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def list_documents(rt, case_id):
    with rt.reader.connect() as conn:
        return [dict(r) for r in conn.execute(Document.__table__.select().where(Document.case_id == case_id)
                                              .order_by(Document.id)).mappings()]


@pytest.fixture
def world(db_url, keys_var, tmp_path):  # noqa: F811  (test_intake's, with only the models this test needs)
    tenants = load_tenants(DEFAULT_TENANTS)
    server_db = tmp_path / "fitconnect-server.sqlite"
    app = create_app({"DATABASE": str(server_db), "VAR_DIR": str(keys_var), "DESTINATIONS": tenants.destinations,
                      "SIGNING_KEY_FILE": str(keys_var / "delivery-service.signing.private.jwk.json")})
    rt = Runtime(Settings(var_dir=keys_var, database_url=db_url, tenants_file=DEFAULT_TENANTS,
                          processes_dir=ROOT / "processes"), tenants=tenants)
    migrate.upgrade(rt.db)
    deploy(rt, bundles_from_paths([ROOT / "processes" / "nachforderung"]))
    with running(app) as url:
        yield World(url, server_db, rt, db_url, keys_var, tmp_path)
    rt.close()


def use_caller_for_hundesteuer(world):
    """Marburg's Hundesteuer service bound to a process that calls the Nachforderung (the test's own model)."""
    xml = CALLER.format(pid="hundesteuer-anmeldung", called="nachforderung").encode()
    [result] = deploy(world.rt, [Bundle({"hundesteuer-anmeldung.bpmn": xml}, source="test")])
    assert result["new"]


def send_followup(world, tmp_path, fitconnect_case_id, tenant="marburg"):
    """A further submission in the FIT-Connect case ``fitconnect_case_id``: one PDF, purpose attachment."""
    first = json.loads(MARBURG.read_text())
    metadata = first["metadata"]
    metadata["contentStructure"]["attachments"] = [{
        "attachmentId": "5b0e6c1a-3d2f-4e8b-9a71-0c4d2e6f8a13", "purpose": "attachment",
        "filename": "Sachkundenachweis.pdf", "description": "Nachgereicht", "mimeType": "application/pdf",
        "hash": {"type": "sha512", "content": ""}}]
    (tmp_path / "nachweis.pdf").write_bytes(PDF)
    application = tmp_path / "application_followup.json"
    application.write_text(json.dumps({"metadata": metadata, "data": first["data"],
                                       "attachmentFiles": {"5b0e6c1a-3d2f-4e8b-9a71-0c4d2e6f8a13": "nachweis.pdf"}}))
    out = load_application(application)
    dest = world.destination(tenant).id
    with Sender(world.url, "demo-sender", "demo-sender-secret") as sender:
        key = sender.destination_key(dest, sender.destination(dest)["encryptionKid"])
        ids = sender.announce(dest, out.service, list(out.attachments), case_id=fitconnect_case_id)
        for aid, content in out.attachments.items():
            sender.upload_attachment(ids["submissionId"], aid, crypto.encrypt(content, key))
        sender.submit(ids["submissionId"], crypto.encrypt(out.metadata, key, cty="application/json"),
                      crypto.encrypt(out.data, key, cty="application/json"))
    assert ids["caseId"] == fitconnect_case_id
    return ids


def test_followup_submission_answers_the_waiting_nachforderung(world, tmp_path):
    use_caller_for_hundesteuer(world)
    first = world.send(MARBURG, "marburg")
    assert poll_all(world.rt, base_url=world.url).accepted == [first["submissionId"]]
    [case] = list_cases(world.rt)
    case_id = case["id"]
    complete(world.rt, case_id, "Pruefen", {"vollstaendig": False})
    complete(world.rt, case_id, "Nachforderung_Schreiben", {"nachforderung_text": "Sachkundenachweis fehlt",
                                                            "nachforderung_frist_tage": 14})
    through_dispatch(world.rt, case_id)  # the Marburg applicant chose e-mail: the letter goes as .eml
    assert open_tasks(world.rt, case_id) == {}

    answer = send_followup(world, tmp_path, first["caseId"])
    report = poll_all(world.rt, base_url=world.url)
    assert report.accepted == [answer["submissionId"]] and report.errors == [], (report, quarantine(world.rt))
    assert [c["id"] for c in list_cases(world.rt)] == [case_id], "a follow-up is no new case"
    log = world.event_log("marburg", first["caseId"])
    assert [next(iter(e["events"])) for e in log].count(crypto.ACCEPT_SUBMISSION) == 2

    docs = [d for d in list_documents(world.rt, case_id) if d["filename"] == "Sachkundenachweis.pdf"]
    assert len(docs) == 1 and docs[0]["purpose"] == "attachment"
    Worker(world.rt).run_due()  # the deliver_message job
    found = get_case(world.rt, case_id)
    assert found["data"]["nachforderung_ergebnis"] == "eingegangen"
    [listed] = found["data"]["nachgereichte_unterlagen"]
    assert listed["document_id"] == docs[0]["id"] and listed["filename"] == "Sachkundenachweis.pdf"
    actions = [(h["action"], h["actor"]) for h in found["history"]]
    assert ("followup_received", "mailbox") in actions and ("message_delivered", "system") in [
        (a, "system" if actor != "mailbox" else actor) for a, actor in actions]
    assert list(open_tasks(world.rt, case_id)) == ["Pruefen"]
    assert list_messages(world.rt, "kept") == [] and list_messages(world.rt, "dead") == []
    entry = next(h for h in found["history"] if h["action"] == "followup_received")
    assert describe(entry, {}) == ("Unterlagen über das Postfach nachgereicht", "Sachkundenachweis.pdf")
    # closed and exported: the package holds the follow-up's document too, and the chain verifies
    complete(world.rt, case_id, "Pruefen", {"vollstaendig": True})
    Worker(world.rt).run_due(now=world.rt.clock() + timedelta(hours=1))  # the e-file export job
    report = verify_case(world.rt, case_id)
    assert report["ok"], report
    export = get_export(world.rt, case_id)
    assert docs[0]["id"] in [d["document_id"] for d in export["documents"]]
    with zipfile.ZipFile(export["location"]) as package:
        assert any("Sachkundenachweis" in name for name in package.namelist()), package.namelist()


def test_early_followup_is_kept_and_a_late_one_is_not_lost(world, tmp_path):
    use_caller_for_hundesteuer(world)
    first = world.send(MARBURG, "marburg")
    poll_all(world.rt, base_url=world.url)
    [case] = list_cases(world.rt)
    # the citizen sends the document before anyone asked for it: attached, message kept
    send_followup(world, tmp_path, first["caseId"])
    assert len(poll_all(world.rt, base_url=world.url).accepted) == 1
    Worker(world.rt).run_due()
    [kept] = list_messages(world.rt, "kept")
    assert kept["case_id"] == case["id"] and kept["name"] == "unterlagen_nachgereicht"
    assert any(d["filename"] == "Sachkundenachweis.pdf" for d in list_documents(world.rt, case["id"]))
    # the Nachforderung is written later: the kept answer ends it at once
    complete(world.rt, case["id"], "Pruefen", {"vollstaendig": False})
    complete(world.rt, case["id"], "Nachforderung_Schreiben", {"nachforderung_text": "Nachweis",
                                                               "nachforderung_frist_tage": 14})
    through_dispatch(world.rt, case["id"])
    Worker(world.rt).run_due()
    assert get_case(world.rt, case["id"])["data"]["nachforderung_ergebnis"] == "eingegangen"
    # the case is closed; another follow-up: stored with its submission and dead-lettered for an operator
    task = open_tasks(world.rt, case["id"])["Pruefen"]
    complete_task(world.rt, task["id"], "anna", {"vollstaendig": True})
    assert get_case(world.rt, case["id"])["state"] == "completed"
    late = send_followup(world, tmp_path, first["caseId"])
    assert poll_all(world.rt, base_url=world.url).accepted == [late["submissionId"]]
    [dead] = list_messages(world.rt, "dead")
    assert dead["case_id"] == case["id"] and late["submissionId"] in dead["reason"]
    assert len(list_cases(world.rt)) == 1
