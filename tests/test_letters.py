"""Decision letters and their dispatch (engine.letters, engine.dispatch, connectors.mail): rendering in the
sandbox, PDF/A, e-mail by SMTP (a real aiosmtpd server on loopback) or as .eml files, PGP/MIME to the
citizen's key, the Postversand task for channels we cannot serve, the deemed-delivery date."""

import email
import email.policy
import hashlib
import json
import re
import socket
import tempfile
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import gnupg
import pytest
from sqlalchemy import select

from engine import letters, migrate
from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.config import Settings
from engine.deploy import deploy
from engine.dispatch import deemed_delivery, list_dispatches, preview
from engine.errors import DeployError
from engine.jobs import Worker
from engine.models import Bundle
from engine.runtime import Runtime
from engine.schema import Document

T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)  # a Monday

TENANTS = """
[defaults.mail]
from_address = "rathaus@marburg.example"

[tenants.marburg]
name = "Universitätsstadt Marburg"
ags = "06534014"

[tenants.marburg.letterhead]
authority = "Der Magistrat der Universitätsstadt Marburg"
department = "Fachdienst Steuern"
street = "Markt 1"
postcode_city = "35037 Marburg"
signature_name = "Erika Mustermann"
signature_role = "Sachbearbeiterin"

[tenants.giessen]
name = "Universitätsstadt Gießen"
ags = "06531005"
"""

LETTER = """<html><head><style>body { font-family: sans-serif }</style></head><body>
{% include "letterhead" %}
<h1>{{ letter.title }}</h1>
<p>Aktenzeichen {{ case.aktenzeichen }} vom {{ today|datum }}</p>
<p>Sehr geehrte Person {{ data.name }},</p>
<p>die Steuer beträgt {{ data.betrag|euro }}.</p>
{% include "signature" %}
</body></html>"""


def process(email_allowed="true", deemed="vwvfg41", letter="bescheid", pid="brief", lane=None):
    lanes = ""
    if lane:
        lanes = f"""<bpmn:laneSet id="ls"><bpmn:lane id="L1" name="{lane}">
        <bpmn:flowNodeRef>Pruefen</bpmn:flowNodeRef><bpmn:flowNodeRef>Senden</bpmn:flowNodeRef></bpmn:lane>
        </bpmn:laneSet>"""
    rule = f'<spiffworkflow:property name="deemed_delivery" value="{deemed}"/>' if deemed else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" isExecutable="true">{lanes}
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Pruefen"/>
    <bpmn:userTask id="Pruefen" name="Prüfen">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="preview_letter" value="{letter}"/>
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Pruefen" targetRef="Senden"/>
    <bpmn:sendTask id="Senden" name="Bescheid senden">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="letter" value="{letter}"/>
        <spiffworkflow:property name="title" value="Steuerbescheid"/>
        <spiffworkflow:property name="email_allowed" value="{email_allowed}"/>{rule}
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:sendTask>
    <bpmn:sequenceFlow id="f3" sourceRef="Senden" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


@pytest.fixture
def rt(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("OZGFLOW_SMTP_HOST", raising=False)
    monkeypatch.delenv("OZGFLOW_SMTP_PORT", raising=False)
    tenants = tmp_path / "tenants.toml"
    tenants.write_text(TENANTS, encoding="utf-8")
    runtime = Runtime(Settings.from_env({"OZGFLOW_DATABASE_URL": db_url, "OZGFLOW_VAR": str(tmp_path / "var"),
                                         "OZGFLOW_TENANTS": str(tenants)}))
    migrate.upgrade(runtime.db)
    now = [T0]
    runtime.clock = lambda: now[0]
    runtime.now = now
    yield runtime
    runtime.close()


def deploy_letter(rt, template=LETTER, **kw):
    files = {"brief.bpmn": process(**kw), f"letters/{kw.get('letter', 'bescheid')}.html": template.encode()}
    return deploy(rt, [Bundle(files, source="brief")])


def run_case(rt, reply_channel=None, data=None):
    antrag = {"reply_channel": reply_channel} if reply_channel else {}
    [case] = start_case(rt, "brief", "marburg", {"name": "Muster <b>", "betrag": 1234.5, "antrag": antrag,
                                                 **(data or {})})
    [task] = list_tasks(rt, case_id=case["id"])
    complete_task(rt, task["id"], "anna", {})
    Worker(rt).run_due()
    return get_case(rt, case["id"])


def actions(case):
    return [h["action"] for h in case["history"]]


# --- rendering ---------------------------------------------------------------------------------------------


def test_template_renders_with_context_and_escapes_data(rt):
    tenant = rt.tenants.get("marburg")
    ctx = letters.context(tenant, {"id": 7, "aktenzeichen": "AZ-1", "tenant": "marburg", "process_id": "brief"},
                          {"name": "<script>x</script>", "betrag": 90}, "bescheid", "Steuerbescheid",
                          today=date(2025, 6, 2))
    html = letters.render_html({"letters/bescheid.html": LETTER.encode()}, "bescheid", ctx)
    assert "Der Magistrat der Universitätsstadt Marburg" in html and "Erika Mustermann" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "02.06.2025" in html and "90,00 €" in html and "AZ-1" in html and "<h1>Steuerbescheid</h1>" in html


@pytest.mark.parametrize("escape", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ data.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ''.__doc__ }}",
    "{% if ''.__class__ %}x{% endif %}{{ ''.__class__|string }}",
])
def test_sandbox_refuses_escapes(escape):
    tenant_ctx = {"data": {}, "case": {}, "tenant": {"letterhead": {}}, "letter": {}, "today": date(2025, 1, 1)}
    with pytest.raises(letters.LetterError, match="sandbox forbids|undefined|Undefined") as info:
        letters.render_html({"letters/x.html": escape.encode()}, "x", tenant_ctx)
    assert "subclasses" not in str(info.value) or "forbids" in str(info.value)


def test_templates_never_see_secrets_of_the_tenant_file():
    from engine.tenants import Tenant

    tenant = Tenant("x", "X-Stadt", "06534014", "{seq}", "000", settings={
        "payment_notify_secret": "geheim-1", "mail": {"smtp_password_env": "PW"}, "letterhead": {"authority": "A"},
        "kasse": {"target": "file", "api_token": "geheim-2"}})
    ctx = letters.context(tenant, {}, {}, "x")
    html = letters.render_html({"letters/x.html": b"{{ tenant }}"}, "x", ctx)
    assert "geheim" not in html and "smtp" not in html and "'authority': 'A'" in html.replace("&#39;", "'")


def test_sandbox_output_never_holds_internals():
    """Attribute lookups the sandbox does not refuse outright come back empty, never as Python internals."""
    html = letters.render_html({"letters/x.html": b"[{{ data.__dict__ }}{{ data.x.y }}]"}, "x",
                               {"data": {}, "tenant": {"letterhead": {}}})
    assert html == "[]"


def test_include_cannot_leave_the_letters_folder():
    with pytest.raises(letters.LetterError, match="not part of the model|TemplateNotFound"):
        letters.render_html({"letters/x.html": b'{% include "../brief.bpmn" %}', "brief.bpmn": b"<x/>"}, "x", {})


def pdf_a_part(pdf):
    """The PDF/A part named in the XMP metadata (streams inflated where compressed)."""
    texts = [pdf]
    for m in re.finditer(rb"stream\r?\n", pdf):
        try:
            texts.append(zlib.decompressobj().decompress(pdf[m.end():m.end() + 200000]))
        except zlib.error:
            continue
    for text in texts:
        found = re.search(rb'pdfaid:part(?:="|>)(\d)', text)
        if found:
            return int(found.group(1))
    return None


def test_pdf_is_pdf_a_and_refuses_external_resources():
    pdf = letters.render_pdf("<html><body><p>Hallo</p></body></html>")
    assert pdf.startswith(b"%PDF") and pdf_a_part(pdf) == 3
    for url in ("file:///etc/passwd", "http://127.0.0.1/", "https://example.org/x.png"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            letters.url_fetcher().fetch(url)
    # a template pointing at the disk renders, but the file is never read into the PDF
    leaky = letters.render_pdf('<html><body><img src="file:///etc/passwd"><p>x</p></body></html>')
    assert leaky.startswith(b"%PDF") and b"root:" not in leaky


# --- deploy ---------------------------------------------------------------------------------------------------


def test_deploy_refuses_missing_or_broken_templates(rt):
    with pytest.raises(DeployError, match=r"letters/bescheid.html' is not in the upload") as info:
        deploy(rt, [Bundle({"brief.bpmn": process()}, source="brief")])
    assert "Senden" in str(info.value) and "brief.bpmn" in str(info.value)
    with pytest.raises(DeployError, match=r"bescheid.html. line 3: Encountered unknown tag .endfor."):
        deploy(rt, [Bundle({"brief.bpmn": process(), "letters/bescheid.html": b"a\nb\n{% endfor %}"}, source="b")])
    with pytest.raises(DeployError, match="deemed_delivery 'bgb'"):
        deploy(rt, [Bundle({"brief.bpmn": process(deemed="bgb"), "letters/bescheid.html": b"x"}, source="b")])


def test_running_case_keeps_its_versions_template(rt):
    deploy_letter(rt, template="<p>Version eins {{ data.name }}</p>")
    [case] = start_case(rt, "brief", "marburg", {"name": "A"})
    deploy_letter(rt, template="<p>Version zwei {{ data.name }}</p>")
    assert "Version eins" in preview(rt, case["id"], "bescheid")
    [newer] = start_case(rt, "brief", "marburg", {"name": "B"})
    assert "Version zwei" in preview(rt, newer["id"], "bescheid")


# --- dispatch ---------------------------------------------------------------------------------------------------


def test_email_without_smtp_writes_eml_and_records_everything(rt):
    deploy_letter(rt)
    case = run_case(rt, {"eMail": {"address": "buerger@example.org"}})
    assert case["state"] == "completed"
    entry = case["data"]["letters"]["bescheid"]
    assert entry["channel"] == "email" and entry["dispatched_at"].startswith("2025-06-02T08:00:00")
    assert entry["deemed_delivered_on"] == "2025-06-06"  # Monday + 4 = Friday
    [eml] = list((Path(rt.settings.var_dir) / "mail" / "marburg").glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "buerger@example.org" and msg["From"] == "rathaus@marburg.example"
    assert "Steuerbescheid" in msg["Subject"]
    [pdf_part] = [p for p in msg.iter_attachments()]
    pdf = pdf_part.get_content()
    assert pdf.startswith(b"%PDF") and pdf_part.get_filename() == "bescheid.pdf"
    with rt.reader.connect() as conn:
        doc = conn.execute(select(Document.__table__).where(Document.id == entry["document_id"])).mappings().one()
    assert doc["purpose"] == "letter" and doc["case_id"] == case["id"] and doc["size"] == len(pdf)
    [row] = list_dispatches(rt, case_id=case["id"])
    assert row["channel"] == "email" and row["document_id"] == doc["id"] and row["reason"] is None
    assert row["dispatched_at"] == T0 and row["deemed_delivered_on"] == date(2025, 6, 6)
    acts = actions(case)
    assert acts.index("letter_created") < acts.index("letter_dispatched")


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OZGFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OZGFLOW_SMTP_PORT", str(port))
    yield inbox
    controller.stop()


def citizen_key():
    home = tempfile.mkdtemp(prefix="test-gpg-")
    gpg = gnupg.GPG(gnupghome=home, gpgbinary="/usr/bin/gpg")
    key = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH",
                                        subkey_curve="cv25519", name_email="buerger@example.org",
                                        no_protection=True))
    return gpg, gpg.export_keys(key.fingerprint)


def test_smtp_with_pgp_mime_is_decryptable_by_the_citizen(rt, smtp):
    gpg, public = citizen_key()
    deploy_letter(rt, deemed="ao122")
    case = run_case(rt, {"eMail": {"address": "buerger@example.org", "pgpPublicKey": public}})
    assert case["state"] == "completed"
    [(sender, rcpts, raw)] = smtp.messages
    assert sender == "rathaus@marburg.example" and rcpts == ["buerger@example.org"]
    outer = email.message_from_bytes(raw, policy=email.policy.default)
    assert outer.get_content_type() == "multipart/encrypted"
    assert outer.get_param("protocol") == "application/pgp-encrypted"
    assert b"%PDF" not in raw and b"Muster" not in raw
    control, armored = outer.get_payload()
    assert control.get_content_type() == "application/pgp-encrypted"
    clear = gpg.decrypt(armored.get_payload())
    assert clear.ok, clear.status
    inner = email.message_from_bytes(clear.data, policy=email.policy.default)
    [pdf] = [p.get_content() for p in inner.iter_attachments()]
    assert pdf.startswith(b"%PDF") and pdf_a_part(pdf) == 3
    dispatched = [h for h in case["history"] if h["action"] == "letter_dispatched"][0]
    assert dispatched["new"]["encrypted"] is True and dispatched["new"]["via"] == "smtp"


def test_a_key_that_cannot_be_used_never_sends_in_clear(rt, smtp):
    deploy_letter(rt)
    bad = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n"
    case = run_case(rt, {"eMail": {"address": "buerger@example.org", "pgpPublicKey": bad}})
    assert smtp.messages == [] and case["state"] != "completed"
    assert "letters" not in case["data"] and list_dispatches(rt, case_id=case["id"]) == []


@pytest.mark.parametrize("channel, email_allowed, reason", [
    ({"elster": {"accountId": "1234567890"}}, "true", "replyChannel elster is not served"),
    ({"fink": {"finkPostfachRef": "hh/by/1"}}, "true", "replyChannel fink is not served"),
    ({"eMail": {"address": "b@example.org"}}, "false", "letter needs written form (email_allowed is false)"),
    (None, "true", "the case has no replyChannel"),
])
def test_postversand_task_when_we_cannot_email(rt, channel, email_allowed, reason):
    deploy_letter(rt, email_allowed=email_allowed, deemed="ao122", lane="Steueramt")
    case = run_case(rt, channel)
    assert case["state"] == "waiting" and "letters" not in case["data"]
    [task] = case["tasks"]
    assert task["element_id"] == "Senden_Postversand" and task["title"] == "Postversand: Steuerbescheid"
    assert task["groups"] == ["Steueramt"]
    [row] = list_dispatches(rt, case_id=case["id"])
    assert row["channel"] == "post" and row["reason"] == reason and row["dispatched_at"] is None
    assert not list((Path(rt.settings.var_dir) / "mail").glob("*/*.eml"))
    rt.now[0] = datetime(2025, 6, 4, 9, 0, tzinfo=UTC)  # Wednesday: +4 = Sunday -> Monday 9 June (Whit Monday!)
    complete_task(rt, task["id"], "poststelle-paul", {})
    done = get_case(rt, case["id"])
    assert done["state"] == "completed"
    entry = done["data"]["letters"]["bescheid"]
    assert entry["channel"] == "post" and entry["document_id"] == row["document_id"]
    assert entry["deemed_delivered_on"] == "2025-06-10"  # Sun 8 June -> Whit Monday 9 June is a holiday -> Tue
    [row] = list_dispatches(rt, case_id=case["id"])
    assert row["dispatched_at"] == rt.now[0] and row["deemed_delivered_on"] == date(2025, 6, 10)
    posted = [h for h in done["history"] if h["action"] == "letter_dispatched"]
    assert posted[0]["actor"] == "poststelle-paul" and posted[0]["new"]["channel"] == "post"


def test_postversand_group_defaults_to_poststelle(rt):
    deploy_letter(rt, email_allowed="false")
    case = run_case(rt, None)
    assert case["tasks"][0]["groups"] == ["poststelle"]


def test_no_rule_no_deemed_delivery(rt):
    deploy_letter(rt, deemed=None)
    case = run_case(rt, {"eMail": {"address": "buerger@example.org"}})
    assert case["data"]["letters"]["bescheid"]["deemed_delivered_on"] is None


@pytest.mark.parametrize("dispatched, expected", [
    (datetime(2025, 6, 2, 8, 0, tzinfo=UTC), date(2025, 6, 6)),  # Mon -> Fri
    (datetime(2025, 6, 5, 8, 0, tzinfo=UTC), date(2025, 6, 10)),  # Thu -> Mon 9 June = Whit Monday -> Tue
    (datetime(2025, 6, 6, 8, 0, tzinfo=UTC), date(2025, 6, 10)),  # Fri -> Tue
    (datetime(2025, 12, 20, 23, 30, tzinfo=UTC), date(2025, 12, 29)),  # 21 Dec Berlin; 25 Dec holiday -> 29 Dec
])
def test_deemed_delivery_fourth_day_moves_off_weekends_and_holidays(dispatched, expected):
    assert deemed_delivery("vwvfg41", dispatched) == expected
    assert deemed_delivery("ao122", dispatched) == expected
    assert deemed_delivery(None, dispatched) is None


def test_preview_renders_current_data_and_tenants_stay_apart(rt):
    deploy_letter(rt)
    [case] = start_case(rt, "brief", "marburg", {"name": "Vorschau", "betrag": 5})
    html = preview(rt, case["id"], "bescheid")
    assert "Vorschau" in html and "5,00 €" in html
    assert preview(rt, case["id"], "bescheid", pdf=True).startswith(b"%PDF")
    meta = json.loads(rt.db.connect().exec_driver_sql("SELECT meta FROM process_version").scalar())
    assert meta["tasks"]["Pruefen"]["preview_letter"] == "bescheid"


CAMUNDA = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="brief" isExecutable="true">
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Senden"/>
    <bpmn:sendTask id="Senden" name="Antwort senden">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="letter" value="bescheid"/>
        <camunda:property name="email_allowed" value="true"/>
      </camunda:properties></bpmn:extensionElements>
    </bpmn:sendTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Senden" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_camunda_send_task_with_a_letter_is_sent(rt):
    deploy(rt, [Bundle({"brief.bpmn": CAMUNDA.encode(), "letters/bescheid.html": LETTER.encode()}, source="c")])
    [case] = start_case(rt, "brief", "marburg", {"name": "Camunda", "antrag": {
        "reply_channel": {"eMail": {"address": "c@example.org"}}}})
    assert get_case(rt, case["id"])["state"] == "running"  # waits for the letter job
    Worker(rt).run_due()
    done = get_case(rt, case["id"])
    assert done["state"] == "completed" and done["data"]["letters"]["bescheid"]["channel"] == "email"
    assert done["data"]["letters"]["bescheid"]["deemed_delivered_on"] is None
    assert len(list((Path(rt.settings.var_dir) / "mail" / "marburg").glob("*.eml"))) == 1


def test_send_task_without_letter_keeps_the_library_behaviour(rt):
    plain = CAMUNDA.replace('<camunda:property name="letter" value="bescheid"/>', "")
    plain = plain.replace("sendTask", "intermediateThrowEvent")  # Camunda send tasks without a letter are refused
    deploy(rt, [Bundle({"brief.bpmn": plain.encode()}, source="c")])
    [case] = start_case(rt, "brief", "marburg", {})
    assert get_case(rt, case["id"])["state"] == "completed" and list_dispatches(rt) == []


def test_missing_values_render_empty_not_as_a_failure():
    html = letters.render_html({"letters/x.html": b"[{{ data.fehlt|euro }}|{{ data.fehlt|datum }}|{{ data.a.b }}]"},
                               "x", {"data": {}})
    assert html == "[||]"


def test_a_suspended_case_sends_nothing_until_resumed(rt):
    from engine.suspension import resume, suspend

    deploy_letter(rt)
    [case] = start_case(rt, "brief", "marburg", {"name": "Pause", "antrag": {
        "reply_channel": {"eMail": {"address": "p@example.org"}}}})
    complete_task(rt, list_tasks(rt, case_id=case["id"])[0]["id"], "anna", {})
    suspend(rt, case["id"], "admin", "Prüfung durch die Rechtsabteilung")
    Worker(rt).run_due()
    outbox = Path(rt.settings.var_dir) / "mail" / "marburg"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))
    resume(rt, case["id"], "admin", "geprüft")
    Worker(rt).run_due()
    assert len(list(outbox.glob("*.eml"))) == 1 and get_case(rt, case["id"])["state"] == "completed"


class MarkingSeal:
    """A stand-in seal service: appends a marker after the PDF's end (a real one signs it)."""

    def __init__(self):
        self.calls = []

    def seal(self, pdf, *, tenant, case_id, letter):
        self.calls.append((tenant, case_id, letter))
        return pdf + b"\n%sealed-by-test\n"


def test_letters_pass_the_seal_connector_before_storing_and_sending(rt):
    rt.letter_seal = seal = MarkingSeal()
    deploy_letter(rt)
    case = run_case(rt, {"eMail": {"address": "buerger@example.org"}})
    assert seal.calls == [("marburg", case["id"], "bescheid")]
    [eml] = list((Path(rt.settings.var_dir) / "mail" / "marburg").glob("*.eml"))
    [part] = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default).iter_attachments()
    assert part.get_content().endswith(b"%sealed-by-test\n")
    with rt.reader.connect() as conn:
        doc = conn.execute(select(Document.__table__).where(
            Document.id == case["data"]["letters"]["bescheid"]["document_id"])).mappings().one()
    assert doc["sha256"] == hashlib.sha256(part.get_content()).hexdigest()
