"""The electronic file (E-Akte): a closed case leaves as an xdomea 3.0.0 ``Abgabe.Abgabe.0401`` package.

xdomea is the binding German standard for handing records between systems (DESIGN.md §6). When a case
reaches ``completed`` a step hook schedules an ``efile_export`` job in the step's transaction; the job builds
the message (Vorgang with Betreff, Kennzeichen = Aktenzeichen, retention, the case history as
``HistorienProtokollInformation``, one ``Dokument`` per primary document), validates it against the shipped
XSD (``engine/xdomea/schema``) and hands ``<ProzessID>_Abgabe.Abgabe.0401.zip`` to the tenant's e-file target
(``connectors.efile``; by default the outbox ``var/efile/<tenant>/``). The hashes of the package, the message,
each document and the submission are recorded (``efile_export``) for ``verify``.

The export counts as done when the E-Akte confirms it: an ``Abgabe.ImportBestaetigen.0402`` message in the
target's inbox (picked up by the periodic ``efile_inbox`` job) or an operator's ``ozgflow efile confirm``.
History actions: ``efile_exported``, ``efile_confirmed``, ``efile_import_failed``.

Retention comes from the model (process properties ``retentionYears`` and ``aussonderungsart``), else from the
tenant file (``[tenants.<id>.efile]``, then ``[defaults.efile]``), else 10 years and ``V`` (vernichten). The
Aufbewahrungsende is the 31 December of the closing year plus the years (the period runs from the end of the
year in which the file was closed).
"""

import hashlib
import io
import json
import tomllib
import uuid
import zipfile
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from connectors.efile import TARGETS, EfileError, PackageExists

from .blobs import blob_store
from .cases import SYSTEM, iso, record
from .errors import NotFound, OzgflowError
from .jobs import register, schedule
from .lean import Lean
from .safexml import UnsafeXml, parse_xml
from .schema import AuditEvent, Case, Document, EfileExport, ModelFile, Submission

NS = "urn:xoev-de:xdomea:schema:3.0.0"
X = f"{{{NS}}}"
SCHEMA = Path(__file__).resolve().parent / "xdomea" / "schema" / "xdomea_3.0.0" / "xdomea.xsd"
UUID_NS = uuid.UUID("6f0c7c1e-4b8e-4d39-9d6a-2f1f0e7a0401")  # ours: stable xdomea ids from case ids
DEFAULT_RETENTION_YEARS = 10
DEFAULT_AUSSONDERUNGSART = "V"
MAX_ANSWER_BYTES = 1024 * 1024
EXPORT_DELAY_SECONDS = 60
CLOSED_STATES = ("completed", "terminated")  # a terminated case (engine.suspension) is filed with its history too
FORMATS = {"pdf": "018", "png": "019", "jpg": "011", "jpeg": "010", "xml": "030", "txt": "045", "csv": "002",
           "docx": "035", "odt": "015", "tif": "023", "tiff": "024", "eml": "006", "htm": "007", "html": "008"}
PURPOSES = {"form": "Antrag", "attachment": "Anlage", "report": "Bericht", "letter": "Bescheid"}


class EfileProblem(OzgflowError):
    """A package cannot be built, validated, delivered or confirmed."""


@lru_cache(maxsize=1)
def xdomea_schema():
    """The xdomea 3.0.0 schema, compiled once per process (local files only, never the network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA), parser))


def validate(root):
    """Raise EfileProblem naming the first errors when ``root`` is not a valid xdomea message."""
    schema = xdomea_schema()
    if not schema.validate(root):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:5])
        raise EfileProblem(f"the xdomea message is not valid against the XSD: {errors}")


# --- configuration ------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _file_defaults(path):
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8")).get("defaults", {}).get("efile", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def efile_settings(rt, tenant):
    """The tenant's e-file settings: target, dir, retention_years, aussonderungsart (see the module doc)."""
    own = rt.tenants.get(tenant).settings.get("efile", {})
    merged = {"target": "outbox", "retention_years": DEFAULT_RETENTION_YEARS,
              "aussonderungsart": DEFAULT_AUSSONDERUNGSART, **_file_defaults(str(rt.settings.tenants_file)), **own}
    merged["dir"] = Path(own["dir"]) if own.get("dir") else rt.settings.var_dir / "efile" / tenant
    return merged


def target_for(rt, tenant):
    """The tenant's e-file connector (``connectors.efile.TARGETS`` by the configured name)."""
    settings = efile_settings(rt, tenant)
    factory = TARGETS.get(settings["target"])
    if factory is None:
        raise EfileProblem(f"tenant {tenant}: unknown e-file target {settings['target']!r} (known: "
                           f"{', '.join(TARGETS)})")
    return factory(settings["dir"])


def model_retention(conn, version_id, process_id):
    """(years, aussonderungsart) named by the model's process properties, None where it names none."""
    years = art = None
    for path, content in conn.execute(select(ModelFile.path, ModelFile.content)
                                      .where(ModelFile.version_id == version_id)):
        if not path.endswith(".bpmn"):
            continue
        try:
            tree = parse_xml(bytes(content), path, 50 * 1024 * 1024)
        except UnsafeXml:
            continue
        for process in tree.getroot().xpath("//*[local-name()='process'][@id=$id]", id=process_id):
            for prop in process.xpath("./*[local-name()='extensionElements']//*[local-name()='property']"):
                if prop.get("name") == "retentionYears" and (prop.get("value") or "").isdigit():
                    years = int(prop.get("value"))
                elif prop.get("name") == "aussonderungsart" and prop.get("value") in ("A", "B", "V"):
                    art = prop.get("value")
    return years, art


# --- the step hook and the export job -------------------------------------------------------------------------


def schedule_export(db, ctx):
    """Step hook: a case that has just completed gets its ``efile_export`` job, in the step's transaction.

    The job is due ``EXPORT_DELAY_SECONDS`` later, not at once: work the final step set off (a letter sent by a
    service call, a reply) lands its documents and history first, and a burst that completes a case does not
    also export it."""
    if ctx.scan.completed:
        schedule(db, "efile_export", ctx.now + timedelta(seconds=EXPORT_DELAY_SECONDS), ctx.now,
                 case_id=ctx.case_id, tenant=ctx.tenant, key=f"efile_export:{ctx.case_id}")


def _export_job(rt, job):
    export_case(rt, job.case_id)


def _sha256(content):
    return hashlib.sha256(content).hexdigest()


def submission_fingerprint(row):
    """SHA-256 over the submission as received: ids, decrypted metadata and data, raw encrypted parts."""
    if row is None:
        return None
    fields = [row["submission_id"], row["metadata_json"], row["data_json"], row["raw"]]
    return _sha256(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _gather(rt, case_id):
    """Everything the package is made of, read in one read-only transaction."""
    with rt.reader.connect() as conn:
        case = conn.execute(select(Case.__table__).where(Case.id == case_id)).mappings().first()
        if case is None:
            raise NotFound(f"no case {case_id}")
        export = conn.execute(select(EfileExport.__table__).where(EfileExport.case_id == case_id)).mappings().first()
        events = conn.execute(select(AuditEvent.__table__).where(AuditEvent.case_id == case_id)
                              .order_by(AuditEvent.seq)).mappings().all()
        documents = conn.execute(select(Document.__table__).where(Document.case_id == case_id)
                                 .order_by(Document.id)).mappings().all()
        # the submission that started the case (follow-ups in the same FIT-Connect case come later: engine.followup)
        submission = conn.execute(select(Submission.__table__).where(Submission.case_id == case_id)
                                  .order_by(Submission.id)).mappings().first()
        retention = model_retention(conn, case["version_id"], case["process_id"])
    return case, export, events, documents, submission, retention


def export_case(rt, case_id):
    """Write the case's ``Abgabe.Abgabe.0401`` package to its tenant's e-file target and record it (once).

    Returns the export as a dict. Idempotent: an exported case is left as it is; a retry after a crash
    between writing and recording builds the same bytes and finds them in place."""
    case, export, events, documents, submission, (years, art) = _gather(rt, int(case_id))
    if export is not None:
        return _export_dict(export)
    if case["state"] not in CLOSED_STATES:
        raise EfileProblem(f"case {case_id} is {case['state']}, not closed: it is not exported yet")
    settings = efile_settings(rt, case["tenant"])
    years = years if years is not None else int(settings["retention_years"])
    art = art or settings["aussonderungsart"]
    closed_at = _closed_at(events) or case["updated_at"]
    package = build_package(rt, case, events, documents, submission, years, art, closed_at)
    target = target_for(rt, case["tenant"])
    try:
        location = target.deliver(package["filename"], package["content"])
    except PackageExists as exc:  # a retry after a crash between writing and recording: the same bytes
        location = exc.location
        if _sha256(target.read(location)) != package["package_sha256"]:
            raise EfileProblem(f"{location} exists with other content; not overwritten") from exc
    except EfileError as exc:
        raise EfileProblem(str(exc)) from exc
    row = {"case_id": case["id"], "tenant": case["tenant"], "prozess_id": package["prozess_id"],
           "vorgang_id": package["vorgang_id"], "target": target.name, "location": location,
           "package_sha256": package["package_sha256"], "message_sha256": package["message_sha256"],
           "documents": json.dumps(package["documents"]), "submission_sha256": submission_fingerprint(submission),
           "audit_seq": events[-1]["seq"], "audit_hash": events[-1]["hash"], "retention_years": years,
           "retention_until": package["retention_until"], "aussonderungsart": art, "closed_at": closed_at,
           "exported_at": rt.clock(), "confirmed_at": None, "confirmed_by": None}
    with rt.db.begin() as conn:
        if conn.execute(select(EfileExport.id).where(EfileExport.case_id == case["id"])).first() is None:
            conn.execute(EfileExport.__table__.insert(), row)
            record(rt, case["id"], SYSTEM, "efile_exported", new={
                "package": package["filename"], "target": target.name, "location": location,
                "package_sha256": package["package_sha256"], "documents": len(package["documents"]),
                "retention_until": package["retention_until"]}, conn=conn)
    return get_export(rt, case["id"])


def _closed_at(events):
    for e in reversed(events):
        if e["action"] == "state_changed" and e["new"] in ('"completed"', '"terminated"'):
            return _parse_at(e["at"])
    return None


def _parse_at(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _export_dict(row):
    d = dict(row)
    d["documents"] = json.loads(d["documents"])
    for key in ("closed_at", "exported_at", "confirmed_at"):
        d[key] = iso(d[key]) if d[key] is not None else None
    d["confirmed"] = d["confirmed_at"] is not None
    return d


def get_export(rt, case_id):
    """The export record of a case, or None when it was not exported (yet)."""
    with rt.reader.connect() as conn:
        row = conn.execute(select(EfileExport.__table__).where(EfileExport.case_id == int(case_id))
                           ).mappings().first()
    return _export_dict(row) if row is not None else None


# --- building the message and the ZIP ------------------------------------------------------------------------


def _el(parent, name, text=None, **attrs):
    node = etree.SubElement(parent, X + name, **attrs)
    if text is not None:
        node.text = str(text)
    return node


def _code(parent, name, code, list_uri=None, version=None, label=None):
    attrs = {"listURI": list_uri, "listVersionID": version} if list_uri else {}
    node = _el(parent, name, **attrs)
    etree.SubElement(node, "code").text = code
    if label:
        etree.SubElement(node, "name").text = label
    return node


def _xml_time(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_name(name):
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return keep.strip("._") or "dokument"


def build_package(rt, case, events, documents, submission, years, art, closed_at):
    """The message (validated) and the ZIP with it and every primary document, as bytes with their hashes."""
    tenant = rt.tenants.get(case["tenant"])
    # Stable across retries of the export, distinct across databases (a case id alone repeats after a reset).
    origin = f"{case['tenant']}/{case['id']}/{case['aktenzeichen']}/{iso(case['created_at'])}"
    prozess_id = str(uuid.uuid5(UUID_NS, f"{origin}/0401"))
    vorgang_id = str(uuid.uuid5(UUID_NS, f"{origin}/vorgang"))
    until = date(closed_at.year + years, 12, 31).isoformat()
    binding = rt.tenants.binding_for_process(case["tenant"], case["process_id"])
    title = (binding.name if binding and binding.name else None) or case["process_id"]
    aktenplan = (binding.aktenplan if binding and binding.aktenplan else None) or tenant.aktenplan

    root = etree.Element(X + "Abgabe.Abgabe.0401", nsmap={"xdomea": NS})
    kopf = _el(root, "Kopf")
    _el(kopf, "ProzessID", prozess_id)
    _code(kopf, "Nachrichtentyp", "0401", "urn:xoev-de:xdomea:codeliste:nachrichtentyp", "2.0", "Abgabe.Abgabe")
    _el(kopf, "Erstellungszeitpunkt", _xml_time(closed_at))
    _el(_el(_el(kopf, "Absender"), "Institution"), "Name", tenant.name)
    _el(_el(_el(kopf, "Empfaenger"), "Institution"), "Name", f"E-Akte {tenant.name}")
    system = _el(kopf, "SendendesSystem")
    _el(system, "InstanzID", f"ozgflow-{tenant.id}")
    _el(system, "Produktname", "ozgflow")
    _el(system, "Version", _version())
    _el(kopf, "Importbestaetigung", "1")
    _el(kopf, "Empfangsbestaetigung", "0")

    vorgang = _el(_el(root, "Schriftgutobjekt"), "Vorgang")
    _el(_el(vorgang, "Identifikation"), "ID", vorgang_id)
    meta = _el(vorgang, "AllgemeineMetadaten")
    _el(meta, "Betreff", f"{title} ({case['aktenzeichen']})")
    _el(meta, "Kennzeichen", case["aktenzeichen"])
    _code(meta, "Medium", "001", "urn:xoev-de:xdomea:codeliste:medium", "1.0")
    _el(_el(meta, "Aktenplaneinheit"), "Kennzeichen", aktenplan)
    archive = _el(vorgang, "ArchivspezifischeMetadaten")
    _el(_el(archive, "Aufbewahrungsdauer"), "AnzahlJahre", years)
    _code(_el(archive, "Aussonderungsart"), "Aussonderungsart", art, "urn:xoev-de:xdomea:codeliste:aussonderungsart",
          "1.0")
    _el(archive, "Aufbewahrungsende", until)
    service = submission["service"] if submission is not None else None
    _el(vorgang, "Typ", f"OZG-Antrag FIT-Connect leika:{service}" if service else f"Vorgang {case['process_id']}")
    _el(vorgang, "ZdA", "1")
    _el(vorgang, "ZdADatum", closed_at.date().isoformat())
    laufzeit = _el(vorgang, "Laufzeit")
    _el(laufzeit, "Beginn", case["created_at"].date().isoformat())
    _el(laufzeit, "Ende", closed_at.date().isoformat())
    for e in events:
        _history(vorgang, e)

    blobs, files, recorded = blob_store(rt), [], []
    for number, doc in enumerate(documents, start=1):
        content = blobs.get(doc["sha256"])
        if _sha256(content) != doc["sha256"]:
            raise EfileProblem(f"document {doc['id']} ({doc['filename']}) does not match its SHA-256: not exported")
        doc_id = str(uuid.uuid5(UUID_NS, f"{origin}/document/{doc['id']}"))
        name = f"{doc_id}_{_safe_name(doc['filename'])}"
        _document(vorgang, doc, doc_id, number, name)
        files.append((name, content))
        recorded.append({"document_id": doc["id"], "name": name, "sha256": doc["sha256"]})

    validate(root)
    message = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    message_name = f"{prozess_id}_Abgabe.Abgabe.0401.xml"
    content = _zip([(message_name, message), *files], closed_at)
    return {"prozess_id": prozess_id, "vorgang_id": vorgang_id, "filename": f"{prozess_id}_Abgabe.Abgabe.0401.zip",
            "content": content, "package_sha256": _sha256(content), "message_name": message_name,
            "message_sha256": _sha256(message), "documents": recorded, "retention_until": until}


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ozgflow")
    except PackageNotFoundError:
        return "0"


def _history(vorgang, e):
    info = _el(vorgang, "HistorienProtokollInformation")
    old, new = e["old"], e["new"]
    if e["action"] == "variable_set":
        key = next(iter(json.loads(old or new or "{}")), None)
        if key is not None:
            _el(info, "MetadatumName", key)
            old = json.dumps(json.loads(old)[key], ensure_ascii=False) if old else None
            new = json.dumps(json.loads(new)[key], ensure_ascii=False) if new else None
    if old is not None:
        _el(info, "MetadatumAlterWert", old)
    if new is not None:
        _el(info, "MetadatumNeuerWert", new)
    _el(info, "Akteur", e["actor"])
    _el(info, "DatumUhrzeit", e["at"])
    _el(info, "Bemerkung", f"ozgflow Historie Nr. {e['seq']}, SHA-256 {e['hash']}")
    _el(info, "Aktion", e["action"] + (f" ({e['element_id']})" if e["element_id"] else ""))


def _document(vorgang, doc, doc_id, number, name):
    node = _el(vorgang, "Dokument")
    ident = _el(node, "Identifikation")
    _el(ident, "ID", doc_id)
    _el(ident, "NummerImUebergeordnetenContainer", number)
    _el(_el(node, "AllgemeineMetadaten"), "Betreff", doc["filename"])
    if doc["purpose"] in ("form", "attachment"):
        _el(node, "Posteingangsdatum", doc["created_at"].date().isoformat())
    _el(node, "Typ", PURPOSES.get(doc["purpose"], doc["purpose"]))
    version = _el(node, "Version")
    _el(version, "Nummer", "1")
    fmt = _el(version, "Format")
    ext = doc["filename"].rsplit(".", 1)[-1].lower() if "." in doc["filename"] else ""
    _code(fmt, "Name", FORMATS.get(ext, "100"), "urn:xoev-de:xdomea:codeliste:dateiformat", "1.0")
    _el(fmt, "Version", "")
    primary = _el(fmt, "Primaerdokument")
    _el(primary, "Dateiname", name)
    _el(primary, "DateinameOriginal", doc["filename"])
    _el(primary, "DatumUhrzeit", _xml_time(doc["created_at"]))


def _zip(entries, when):
    """A ZIP whose bytes depend only on its entries and ``when``: a retried export writes the same file."""
    out = io.BytesIO()
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out.getvalue()


# --- confirmation -----------------------------------------------------------------------------------------------


def confirm(rt, case_id, actor, via="operator"):
    """Record that the E-Akte imported the case's package (``efile_confirmed`` in its history)."""
    now = rt.clock()
    with rt.db.begin() as conn:
        db = Lean(conn)
        row = db.one("SELECT confirmed_at, prozess_id FROM efile_export WHERE case_id = ?", (int(case_id),))
        if row is None:
            raise EfileProblem(f"case {case_id} has not been exported to the e-file yet")
        if row[0] is not None:
            raise EfileProblem(f"the export of case {case_id} was confirmed already ({iso(db.read_ts(row[0]))})")
        db.run("UPDATE efile_export SET confirmed_at = ?, confirmed_by = ? WHERE case_id = ? "
               "AND confirmed_at IS NULL", (db.ts(now), actor, int(case_id)))
        record(rt, int(case_id), actor, "efile_confirmed", new={"prozess_id": row[1], "via": via}, conn=conn)
    return get_export(rt, case_id)


def read_answer(content, name="answer.xml"):
    """Parse and validate an ``Abgabe.ImportBestaetigen.0402`` (no DTD, no entities, no network).

    Returns (ProzessID, {IDSGO: (ok, error text)}); raises EfileProblem for anything else."""
    try:
        tree = parse_xml(content, name, MAX_ANSWER_BYTES)
    except UnsafeXml as exc:
        raise EfileProblem(str(exc)) from None
    root = tree.getroot()
    if root.tag != X + "Abgabe.ImportBestaetigen.0402":
        raise EfileProblem(f"{name}: not an Abgabe.ImportBestaetigen.0402 message ({root.tag})")
    validate(root)
    objects = {}
    for obj in root.iter(X + "AbgegebenesObjekt"):
        ok = obj.findtext(X + "Erfolgreich", "").strip() in ("1", "true")
        errors = " ".join(" ".join(t.strip() for t in f.itertext() if t.strip())
                          for f in obj.iter(X + "Fehlermeldung"))
        objects[obj.findtext(X + "IDSGO", "").strip()] = (ok, errors)
    return root.findtext(f"{X}Kopf/{X}ProzessID", "").strip(), objects


def process_answers(rt, tenant=None):
    """Handle the E-Akte's waiting answers of one or every tenant; returns what became of each file."""
    results = []
    for tid in ([tenant] if tenant else list(rt.tenants.tenants)):
        target = target_for(rt, tid)
        for key, content in target.answers():
            outcome = _handle_answer(rt, tid, key, content)
            target.settle(key, outcome["ok"])
            results.append({"tenant": tid, "file": key, **outcome})
    return results


def _handle_answer(rt, tenant, key, content):
    try:
        prozess_id, objects = read_answer(content, key)
    except EfileProblem as exc:
        return {"ok": False, "case_id": None, "message": str(exc)}
    with rt.reader.connect() as conn:
        row = conn.execute(select(EfileExport.case_id, EfileExport.vorgang_id, EfileExport.confirmed_at)
                           .where(EfileExport.prozess_id == prozess_id, EfileExport.tenant == tenant)).first()
    if row is None:
        return {"ok": False, "case_id": None, "message": f"no export of {tenant} has ProzessID {prozess_id}"}
    ok, errors = objects.get(row.vorgang_id, (False, "the Vorgang is not named in the answer"))
    if not ok:
        record(rt, row.case_id, "efile", "efile_import_failed", new={"prozess_id": prozess_id, "error": errors})
        return {"ok": False, "case_id": row.case_id, "message": f"the E-Akte refused the import: {errors}"}
    if row.confirmed_at is None:
        confirm(rt, row.case_id, "efile", via="0402")
    return {"ok": True, "case_id": row.case_id, "message": "import confirmed"}


def _inbox_job(rt, _job):
    process_answers(rt)


register("efile_export", _export_job)
register("efile_inbox", _inbox_job, every_seconds=60.0)


# --- verify: the whole chain of a closed case -------------------------------------------------------------------


def verify_case(rt, case_id):
    """Check a case from the received submission to the audit chain; returns a report dict.

    Links, in order: ``submission`` (the hashes the FIT-Connect metadata names for each attachment equal the
    stored documents' SHA-512; the submission as received equals its fingerprint at export), ``documents``
    (each stored file's SHA-256 and SHA-512), ``package`` (the ZIP in the outbox, its message and each document
    in it against the hashes recorded at export and the stored documents), ``audit`` (the hash chain; the
    history exported is a prefix of it). ``ok`` is True when every link holds; open cases check the audit
    chain only. ``confirmed`` says whether the E-Akte confirmed the import (it does not decide ``ok``)."""
    from .audit import verify_chain
    from .schema import CaseTombstone

    case_id = int(case_id)
    with rt.reader.connect() as conn:
        state = conn.execute(select(Case.state).where(Case.id == case_id)).scalar()
        if state is None:
            stone = conn.execute(select(CaseTombstone.__table__).where(CaseTombstone.case_id == case_id)
                                 ).mappings().first()
            if stone is None:
                raise NotFound(f"no case {case_id}")
            return {"case_id": case_id, "ok": True, "state": "deleted", "links": [], "confirmed": True,
                    "message": f"deleted after retention on {iso(stone['deleted_at'])}; the E-Akte holds package "
                               f"{stone['prozess_id']} (SHA-256 {stone['package_sha256']})"}
        ok, count, message = verify_chain(conn, case_id)
        if state not in CLOSED_STATES:
            return {"case_id": case_id, "ok": ok, "state": state, "entries": count, "confirmed": None,
                    "links": [{"link": "audit", "ok": ok, "message": message}], "message": message}
        _c, export, events, documents, submission, _r = _gather(rt, case_id)
    links = [_check_submission(submission, documents, export), _check_documents(rt, documents),
             _check_package(rt, export, documents), _check_audit(ok, message, events, export)]
    broken = [link for link in links if not link["ok"]]
    confirmed = export is not None and export["confirmed_at"] is not None
    if broken:
        summary = "BROKEN: " + "; ".join(f"{b['link']}: {b['message']}" for b in broken)
    elif export is None:
        summary = "chain intact; not exported to the e-file yet"
    else:
        summary = "chain intact; " + ("import confirmed by the E-Akte" if confirmed
                                      else "export not yet confirmed by the E-Akte")
    return {"case_id": case_id, "ok": not broken, "state": state, "entries": count, "exported": export is not None,
            "confirmed": confirmed, "links": links, "message": summary}


def _link(name, problems, good):
    return {"link": name, "ok": not problems, "message": "; ".join(problems) if problems else good}


def _check_submission(submission, documents, export):
    if submission is None:
        return _link("submission", [], "no submission (case started by hand)")
    problems = []
    metadata = json.loads(submission["metadata_json"] or "{}")
    named = {a.get("attachmentId"): (a.get("hash") or {}).get("content")
             for a in (metadata.get("contentStructure") or {}).get("attachments", [])}
    stored = {d["attachment_id"]: d for d in documents if d["submission_pk"] == submission["id"]}
    for aid, digest in named.items():
        doc = stored.get(aid)
        if doc is None:
            problems.append(f"attachment {aid} of the submission has no stored document")
        elif doc["sha512"] != digest:
            problems.append(f"document {doc['id']} ({doc['filename']}): its SHA-512 differs from the hash the "
                            f"submission's metadata names for attachment {aid}")
    for aid in set(stored) - set(named):
        problems.append(f"document {stored[aid]['id']} is not an attachment the submission's metadata names")
    if export is not None and export["submission_sha256"] != submission_fingerprint(submission):
        problems.append(f"submission {submission['submission_id']} was changed after the export "
                        "(metadata, data or raw encrypted parts differ from their fingerprint)")
    return _link("submission", problems, f"submission {submission['submission_id']}: {len(named)} attachment "
                                         "hashes match the stored documents")


def _check_documents(rt, documents):
    blobs, problems = blob_store(rt), []
    for doc in documents:
        try:
            content = blobs.get(doc["sha256"])
        except FileNotFoundError:
            problems.append(f"document {doc['id']} ({doc['filename']}): its stored file is missing")
            continue
        if _sha256(content) != doc["sha256"] or hashlib.sha512(content).hexdigest() != doc["sha512"]:
            problems.append(f"document {doc['id']} ({doc['filename']}): the stored file does not match its hashes")
    return _link("documents", problems, f"{len(documents)} stored documents match their hashes")


def _check_package(rt, export, documents):
    if export is None:
        return _link("package", [], "not exported yet (the efile_export job has not run)")
    try:
        content = target_for(rt, export["tenant"]).read(export["location"])
    except EfileError as exc:
        return _link("package", [f"the package cannot be read: {exc}"], "")
    problems = []
    if _sha256(content) != export["package_sha256"]:
        problems.append(f"{export['location']}: the package differs from the one exported (SHA-256)")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            inside = {info.filename: zf.read(info) for info in zf.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return _link("package", [*problems, f"the package is not a readable ZIP ({exc})"], "")
    message_name = f"{export['prozess_id']}_Abgabe.Abgabe.0401.xml"
    if message_name not in inside:
        problems.append(f"the message {message_name} is missing from the package")
    elif _sha256(inside.pop(message_name)) != export["message_sha256"]:
        problems.append(f"the message {message_name} in the package was changed")
    by_id = {d["id"]: d for d in documents}
    for rec in json.loads(export["documents"]):
        data = inside.pop(rec["name"], None)
        if data is None:
            problems.append(f"document {rec['name']} is missing from the package")
        elif _sha256(data) != rec["sha256"]:
            problems.append(f"document {rec['name']} in the package was changed")
        elif rec["document_id"] in by_id and by_id[rec["document_id"]]["sha256"] != rec["sha256"]:
            problems.append(f"document {rec['document_id']}: the stored record's hash differs from the exported one")
    problems += [f"{name} in the package was not exported" for name in inside]
    return _link("package", problems, f"{export['location']} matches the export (message and "
                                      f"{len(json.loads(export['documents']))} documents)")


def _check_audit(ok, message, events, export):
    problems = [] if ok else [message]
    if ok and export is not None:
        at = next((e for e in events if e["seq"] == export["audit_seq"]), None)
        if at is None or at["hash"] != export["audit_hash"]:
            problems.append(f"the history exported (up to entry {export['audit_seq']}) is not part of the chain")
    return _link("audit", problems, message)
