"""The electronic file: a closed case becomes a valid xdomea 0401 package in the tenant's E-Akte outbox, and
counts as done when the E-Akte confirms it (0402 in the inbox, or an operator). Mailbox cases run over the
local FIT-Connect server (see test_intake)."""

import hashlib
import io
import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DATA, ROOT, SHARED
from lxml import etree
from test_intake import MARBURG, keys_var, world  # noqa: F401  (fixtures)

from engine.audit import history
from engine.cases import complete_task, list_tasks, start_case
from engine.deploy import bundles_from_paths, deploy
from engine.efile import EXPORT_DELAY_SECONDS, EfileProblem, export_case, get_export, process_answers, verify_case
from engine.intake import poll_all
from engine.jobs import Worker, ensure_periodic

XSD = SHARED / "ozg" / "xdomea-3.0.0" / "xdomea_3.0.0" / "xdomea.xsd"
NS = "{urn:xoev-de:xdomea:schema:3.0.0}"
STEPS = json.loads((ROOT / "processes" / "hundesteuer-anmeldung" / "tests" / "vollstaendig-marburg.json")
                   .read_text(encoding="utf-8"))["steps"]


def finish_mailbox_case(box):
    """Send the Marburg sample, pick it up, work its tasks, run the worker: the exported case's id."""
    box.send(MARBURG, "marburg")
    poll_all(box.rt, base_url=box.url)
    case_id = next(t["case_id"] for t in list_tasks(box.rt, tenant="marburg"))
    for step in STEPS:
        if step.get("jobs"):  # e.g. the letter job before a Postversand task (engine.dispatch)
            Worker(box.rt).run_due()
            continue
        task = next(t for t in list_tasks(box.rt, case_id=case_id) if t["element_id"] == step["task"])
        complete_task(box.rt, task["id"], step["user"], step["data"])
    export_due(box.rt)
    return case_id


def export_due(rt):
    """Run the worker when the export of a just completed case is due (a minute after completion)."""
    return Worker(rt).run_due(now=rt.clock() + timedelta(seconds=EXPORT_DELAY_SECONDS))


@pytest.fixture
def exported(world):  # noqa: F811
    return world, finish_mailbox_case(world)


def read_package(export):
    with zipfile.ZipFile(export["location"]) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_closed_mailbox_case_is_a_valid_xdomea_package(exported):
    box, case_id = exported
    export = get_export(box.rt, case_id)
    outbox = box.keys_var / "efile" / "marburg"
    assert export["location"] == str(outbox / f"{export['prozess_id']}_Abgabe.Abgabe.0401.zip")
    files = read_package(export)
    message_name = f"{export['prozess_id']}_Abgabe.Abgabe.0401.xml"
    assert [n for n in files if n.endswith(".xml")] == [message_name]
    # valid against the XSD as published (not only against our shipped copy)
    root = etree.fromstring(files[message_name])
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(root), schema.error_log
    vorgang = root.find(f"{NS}Schriftgutobjekt/{NS}Vorgang")
    with box.rt.reader.connect() as conn:
        case = conn.execute(etree_free_select(case_id)).mappings().one()
        events = history(conn, case_id)
        submission = conn.execute(sql("SELECT metadata_json FROM submission WHERE case_id = :c"), {"c": case_id}
                                  ).scalar_one()
    assert vorgang.findtext(f"{NS}AllgemeineMetadaten/{NS}Kennzeichen") == case["aktenzeichen"]
    assert "Hundesteuer" in vorgang.findtext(f"{NS}AllgemeineMetadaten/{NS}Betreff")
    archive = vorgang.find(f"{NS}ArchivspezifischeMetadaten")
    assert archive.findtext(f"{NS}Aufbewahrungsdauer/{NS}AnzahlJahre") == "10"  # the tenant file's default
    assert archive.findtext(f"{NS}Aufbewahrungsende") == export["retention_until"]
    # the history up to the export, one HistorienProtokollInformation per entry, in order
    actions = [h.findtext(f"{NS}Aktion").split(" ")[0] for h in vorgang.iter(f"{NS}HistorienProtokollInformation")]
    assert actions == [e["action"] for e in events][:export["audit_seq"]]
    assert events[export["audit_seq"]]["action"] == "efile_exported"
    # every attachment, byte for byte as the citizen sent it (the metadata's SHA-512)
    named = {a["hash"]["content"] for a in json.loads(submission)["contentStructure"]["attachments"]}
    documents = {n: c for n, c in files.items() if n != message_name}
    with box.rt.reader.connect() as conn:  # and the letters the case sent (engine.dispatch)
        letters = set(conn.execute(sql("SELECT sha512 FROM document WHERE case_id = :c AND purpose = 'letter'"),
                                   {"c": case_id}).scalars())
    assert len(documents) == len(named) + len(letters) == len(list(vorgang.iter(f"{NS}Dokument"))) > 0
    assert {hashlib.sha512(c).hexdigest() for c in documents.values()} == named | letters
    report = verify_case(box.rt, case_id)
    assert report["ok"] and not report["confirmed"] and "not yet confirmed" in report["message"], report


def etree_free_select(case_id):
    from sqlalchemy import select

    from engine.schema import Case
    return select(Case.__table__).where(Case.id == case_id)


def sql(text):
    from sqlalchemy import text as t
    return t(text)


def answer(export, ok=True):
    """An Abgabe.ImportBestaetigen.0402 as an E-Akte writes it."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xdomea:Abgabe.ImportBestaetigen.0402 xmlns:xdomea="urn:xoev-de:xdomea:schema:3.0.0">
  <xdomea:Kopf>
    <xdomea:ProzessID>{export['prozess_id']}</xdomea:ProzessID>
    <xdomea:Nachrichtentyp><code>0402</code></xdomea:Nachrichtentyp>
    <xdomea:Erstellungszeitpunkt>2026-01-05T10:00:00Z</xdomea:Erstellungszeitpunkt>
    <xdomea:Absender/><xdomea:Empfaenger/>
  </xdomea:Kopf>
  <xdomea:AbgegebenesObjekt>
    <xdomea:IDSGO>{export['vorgang_id']}</xdomea:IDSGO>
    <xdomea:Erfolgreich>{'1' if ok else '0'}</xdomea:Erfolgreich>
  </xdomea:AbgegebenesObjekt>
</xdomea:Abgabe.ImportBestaetigen.0402>""".encode()


def test_import_confirmation_from_the_inbox(exported):
    box, case_id = exported
    export = get_export(box.rt, case_id)
    inbox = box.keys_var / "efile" / "marburg" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "evil.xml").write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                     b"<x>&e;</x>")
    (inbox / "answer.xml").write_bytes(answer(export))
    ensure_periodic(box.rt)
    Worker(box.rt).run_due()  # the periodic efile_inbox job
    assert get_export(box.rt, case_id)["confirmed_by"] == "efile"
    assert (inbox / "done" / "answer.xml").is_file() and (inbox / "refused" / "evil.xml").is_file()
    shutil.rmtree(inbox)  # the var folder is the module's
    with box.rt.reader.connect() as conn:
        confirmed = [e for e in history(conn, case_id) if e["action"] == "efile_confirmed"]
    assert confirmed[0]["new"] == {"prozess_id": export["prozess_id"], "via": "0402"}
    report = verify_case(box.rt, case_id)
    assert report["ok"] and report["confirmed"] and "confirmed by the E-Akte" in report["message"]


def test_refused_import_is_recorded_not_confirmed(exported):
    box, case_id = exported
    inbox = box.keys_var / "efile" / "marburg" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "no.xml").write_bytes(answer(get_export(box.rt, case_id), ok=False))
    [result] = process_answers(box.rt, "marburg")
    shutil.rmtree(inbox)
    assert not result["ok"] and result["case_id"] == case_id
    assert get_export(box.rt, case_id)["confirmed_at"] is None


def test_operator_confirms_by_command(exported):
    box, case_id = exported
    cli = box.cli()
    assert cli.json("efile", "show", case_id)["confirmed"] is False
    out = cli.json("efile", "confirm", case_id, "--by", "petra")
    assert out["confirmed_by"] == "petra" and out["confirmed"]
    again = cli("efile", "confirm", case_id, check=False)
    assert again.returncode == 1 and "confirmed already" in again.stderr
    proc = cli("verify", case_id)
    assert "import confirmed" in proc.stdout


def test_hand_started_case_with_model_retention(rt, tmp_path):
    bundle = tmp_path / "two_tasks"
    shutil.copytree(DATA / "two_tasks", bundle)
    bpmn = next(bundle.glob("*.bpmn"))
    text = bpmn.read_text(encoding="utf-8")
    head, sep, rest = text.partition('<bpmn:process id="two_tasks"')
    assert sep, "the test model's process element"
    tag_end = rest.index(">") + 1
    props = ('<bpmn:extensionElements><spiffworkflow:properties>'
             '<spiffworkflow:property name="retentionYears" value="3" />'
             '<spiffworkflow:property name="aussonderungsart" value="A" />'
             '</spiffworkflow:properties></bpmn:extensionElements>')
    bpmn.write_text(head + sep + rest[:tag_end] + props + rest[tag_end:], encoding="utf-8")
    deploy(rt, bundles_from_paths([bundle]))
    rt.clock = lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    case_id = start_case(rt, "two_tasks", "wetzlar", {"x": 1})[0]["id"]
    complete_task(rt, list_tasks(rt, case_id=case_id)[0]["id"], "anna", {"amount": 3})
    assert Worker(rt).run_due().done == 0, "nothing to export while the case runs"
    complete_task(rt, list_tasks(rt, case_id=case_id)[0]["id"], "anna")
    assert Worker(rt).run_due().ran == 0, "the export waits a minute after completion"
    assert export_due(rt).done == 1
    export = get_export(rt, case_id)
    assert (export["retention_years"], export["aussonderungsart"], export["retention_until"]) == (3, "A",
                                                                                                  "2029-12-31")
    assert export["location"].startswith(str(rt.settings.var_dir / "efile" / "wetzlar"))
    with zipfile.ZipFile(io.BytesIO(open(export["location"], "rb").read())) as zf:
        assert zf.namelist() == [f"{export['prozess_id']}_Abgabe.Abgabe.0401.xml"]
    assert verify_case(rt, case_id)["ok"]


def test_export_retried_after_a_crash_finds_its_own_package(rt):
    from engine import efile

    deploy(rt, bundles_from_paths([DATA / "two_tasks"]))
    case_id = start_case(rt, "two_tasks", "limburg", {"x": 1})[0]["id"]
    for _ in range(2):
        complete_task(rt, list_tasks(rt, case_id=case_id)[0]["id"], "anna", {"amount": 3})
    # a first try wrote the package and died before recording it
    case, _export, events, documents, submission, _retention = efile._gather(rt, case_id)
    package = efile.build_package(rt, case, events, documents, submission, 10, "V", efile._closed_at(events))
    written = efile.target_for(rt, "limburg").deliver(package["filename"], package["content"])
    done = export_case(rt, case_id)
    assert (done["location"], done["package_sha256"]) == (written, package["package_sha256"])
    assert export_case(rt, case_id) == done  # exported once: nothing happens again
    # a file of that name with other content is never overwritten: the export fails (an incident)
    other = start_case(rt, "two_tasks", "limburg", {"x": 2})[0]["id"]
    for _ in range(2):
        complete_task(rt, list_tasks(rt, case_id=other)[0]["id"], "anna", {"amount": 3})
    case, _export, events, documents, submission, _retention = efile._gather(rt, other)
    name = efile.build_package(rt, case, events, documents, submission, 10, "V", efile._closed_at(events))["filename"]
    efile.target_for(rt, "limburg").deliver(name, b"someone else's file")
    with pytest.raises(EfileProblem, match="exists with other content"):
        export_case(rt, other)
    assert Path(written).with_name(name).read_bytes() == b"someone else's file"
