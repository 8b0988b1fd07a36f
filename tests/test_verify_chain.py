"""``ozgflow verify`` over the whole chain of a closed case: the received submission's hashes, the stored
documents, the package in the E-Akte outbox and the audit chain. Each link is tampered with once; verify
must fail and name the link and what broke."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text
from test_efile import finish_mailbox_case
from test_intake import keys_var, world  # noqa: F401  (fixtures)

from engine.blobs import blob_store
from engine.efile import get_export, verify_case


@pytest.fixture
def closed(world):  # noqa: F811
    case_id = finish_mailbox_case(world)
    # the blob store lives in the module's var folder: put back what a test changes there
    blobs = blob_store(world.rt)
    with world.rt.reader.connect() as conn:
        kept = {sha: blobs.get(sha) for sha in conn.execute(text("SELECT sha256 FROM document")).scalars()}
    yield world, case_id
    for sha, content in kept.items():
        blobs.path(sha).write_bytes(content)


def run_sql(rt, sql, **params):
    with rt.db.begin() as conn:
        conn.execute(text(sql), params)


def one_document(rt, case_id):
    with rt.reader.connect() as conn:
        return conn.execute(text("SELECT id, sha256, attachment_id FROM document WHERE case_id = :c ORDER BY id"),
                            {"c": case_id}).mappings().first()


def rewrite_zip(path, change):
    """Rewrite the package with ``change(name, bytes) -> bytes`` applied to each entry."""
    with zipfile.ZipFile(path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, change(name, data))
    Path(path).write_bytes(out.getvalue())


def flip_last_byte(path):
    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 0x01
    Path(path).write_bytes(bytes(data))


def tamper_metadata_hash(rt, case_id, export):
    doc = one_document(rt, case_id)
    with rt.reader.connect() as conn:
        sub = conn.execute(text("SELECT id, metadata_json FROM submission WHERE case_id = :c"), {"c": case_id}).one()
    metadata = json.loads(sub.metadata_json)
    for a in metadata["contentStructure"]["attachments"]:
        if a["attachmentId"] == doc["attachment_id"]:
            a["hash"]["content"] = "ab" * 64
    run_sql(rt, "UPDATE submission SET metadata_json = :m WHERE id = :i", m=json.dumps(metadata), i=sub.id)


def tamper_raw_part(rt, case_id, export):
    with rt.reader.connect() as conn:
        raw = json.loads(conn.execute(text("SELECT raw FROM submission WHERE case_id = :c"), {"c": case_id}).scalar())
    raw["encryptedData"] = raw["encryptedData"][:-2] + ("AA" if not raw["encryptedData"].endswith("AA") else "BB")
    run_sql(rt, "UPDATE submission SET raw = :r WHERE case_id = :c", r=json.dumps(raw), c=case_id)


def tamper_document_row(rt, case_id, export):
    run_sql(rt, "UPDATE document SET sha512 = :h WHERE id = :i", h="0" * 128, i=one_document(rt, case_id)["id"])


def tamper_blob(rt, case_id, export):
    flip_last_byte(blob_store(rt).path(one_document(rt, case_id)["sha256"]))


def tamper_package_bytes(rt, case_id, export):
    flip_last_byte(export["location"])


def tamper_message_in_package(rt, case_id, export):
    rewrite_zip(export["location"], lambda n, d: d + b" " if n.endswith(".xml") else d)


def tamper_document_in_package(rt, case_id, export):
    rewrite_zip(export["location"], lambda n, d: d if n.endswith(".xml") else d + b"\0")


def remove_package(rt, case_id, export):
    Path(export["location"]).unlink()


def tamper_history(rt, case_id, export):
    run_sql(rt, "UPDATE audit_event SET actor = 'mallory' WHERE case_id = :c AND seq = 2", c=case_id)


def tamper_history_after_export_rewritten(rt, case_id, export):
    run_sql(rt, "UPDATE efile_export SET audit_hash = :h WHERE case_id = :c", h="1" * 64, c=case_id)


@pytest.mark.parametrize("tamper, link, words", [
    (tamper_metadata_hash, "submission", "differs from the hash the submission's metadata names"),
    (tamper_raw_part, "submission", "was changed after the export"),
    (tamper_document_row, "documents", "does not match its hashes"),
    (tamper_blob, "documents", "does not match its hashes"),
    (tamper_package_bytes, "package", "differs from the one exported"),
    (tamper_message_in_package, "package", "Abgabe.Abgabe.0401.xml in the package was changed"),
    (tamper_document_in_package, "package", "in the package was changed"),
    (remove_package, "package", "cannot be read"),
    (tamper_history, "audit", "entry 2"),
    (tamper_history_after_export_rewritten, "audit", "is not part of the chain"),
])
def test_each_link_is_named_when_broken(closed, tamper, link, words):
    box, case_id = closed
    assert verify_case(box.rt, case_id)["ok"]
    tamper(box.rt, case_id, get_export(box.rt, case_id))
    report = verify_case(box.rt, case_id)
    assert not report["ok"]
    broken = {entry["link"]: entry["message"] for entry in report["links"] if not entry["ok"]}
    assert link in broken and words in broken[link], report
    assert report["message"].startswith("BROKEN:") and words in report["message"]


def test_cli_verify_names_the_broken_link(closed):
    box, case_id = closed
    cli = box.cli()
    ok = cli("verify", case_id)
    assert ok.returncode == 0 and "chain intact" in ok.stdout and "not yet confirmed" in ok.stdout
    tamper_blob(box.rt, case_id, None)
    proc = cli("verify", case_id, "--json", check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and not report["ok"]
    assert [entry["link"] for entry in report["links"] if not entry["ok"]] == ["documents"]
