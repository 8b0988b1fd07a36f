"""Retention: cases past their Aufbewahrungsende whose export the E-Akte confirmed are deleted (by command and
by the worker), leaving a tombstone; an unconfirmed export blocks deletion and is listed. Time is injected."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from test_efile import finish_mailbox_case
from test_intake import keys_var, world  # noqa: F401  (fixtures)

from engine.blobs import blob_store
from engine.efile import confirm, get_export, verify_case
from engine.jobs import Worker, ensure_periodic
from engine.retention import due, run, tombstones
from engine.schema import Base


@pytest.fixture
def closed(world):  # noqa: F811
    case_id = finish_mailbox_case(world)
    return world, case_id, get_export(world.rt, case_id)


def after(export, days=1):
    """Noon ``days`` days after the Aufbewahrungsende (0: on that day itself)."""
    end = datetime.fromisoformat(export["retention_until"]).replace(hour=12, tzinfo=UTC)
    return end + timedelta(days=days)


def rows_of_case(rt, case_id):
    """How many rows of any table still point at the case (directly or through a document or submission)."""
    found = {}
    with rt.reader.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "case_id" in table.c and table.name != "case_tombstone":
                n = conn.execute(text(f'SELECT COUNT(*) FROM "{table.name}" WHERE case_id = :c'), {"c": case_id}
                                 ).scalar()
                if n:
                    found[table.name] = n
        if conn.execute(text('SELECT COUNT(*) FROM "case" WHERE id = :c'), {"c": case_id}).scalar():
            found["case"] = 1
    return found


def test_nothing_is_due_before_the_end_of_retention(closed):
    box, case_id, export = closed
    assert export["retention_until"] == f"{datetime.fromisoformat(export['closed_at'][:10]).year + 10}-12-31"
    confirm(box.rt, case_id, "petra")
    assert run(box.rt, now=after(export, days=0)) == {"deleted": [], "blocked": []}
    assert rows_of_case(box.rt, case_id)["case"] == 1


def test_unconfirmed_export_blocks_deletion(closed):
    box, case_id, export = closed
    result = run(box.rt, now=after(export))
    assert result["deleted"] == [] and [b["case_id"] for b in result["blocked"]] == [case_id]
    assert "not confirmed" in result["blocked"][0]["reason"]
    assert Path(export["location"]).is_file() and verify_case(box.rt, case_id)["ok"]


def test_confirmed_case_is_deleted_with_a_tombstone(closed):
    box, case_id, export = closed
    rt = box.rt
    confirm(rt, case_id, "petra")
    with rt.reader.connect() as conn:
        hashes = list(conn.execute(text("SELECT sha256 FROM document WHERE case_id = :c"), {"c": case_id}).scalars())
        head = conn.execute(text('SELECT audit_seq, audit_hash, aktenzeichen FROM "case" WHERE id = :c'),
                            {"c": case_id}).one()
    assert hashes and due(rt, after(export))["deletable"][0]["case_id"] == case_id
    rt.clock = lambda: after(export)
    ensure_periodic(rt)
    Worker(rt).run_due()  # the periodic retention_run job
    assert rows_of_case(rt, case_id) == {}
    with rt.reader.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM submission")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM document")).scalar() == 0
    assert not any(blob_store(rt).path(h).exists() for h in hashes)
    assert not Path(export["location"]).exists()
    [stone] = tombstones(rt)
    assert stone["case_id"] == case_id and stone["package_sha256"] == export["package_sha256"]
    assert (stone["audit_seq"], stone["audit_hash"], stone["aktenzeichen"]) == tuple(head)
    assert stone["deleted_by"] == "system" and stone["confirmed_at"] is not None
    assert "Lena" not in json.dumps(stone) and "Bruno" not in json.dumps(stone)
    report = verify_case(rt, case_id)
    assert report["ok"] and report["state"] == "deleted" and export["package_sha256"] in report["message"]
    assert run(rt) == {"deleted": [], "blocked": []}


def test_retention_command(closed):
    box, case_id, _export = closed
    cli = box.cli()
    assert cli.json("retention", "list") == {"deletable": [], "blocked": []}
    with box.rt.db.begin() as conn:  # the command runs on the real clock: move the end into the past
        conn.execute(text("UPDATE efile_export SET retention_until = '2001-12-31' WHERE case_id = :c"),
                     {"c": case_id})
    blocked = cli("retention", "run", "--json", check=False)
    assert blocked.returncode == 3 and json.loads(blocked.stdout)["blocked"][0]["case_id"] == case_id
    cli("efile", "confirm", case_id)
    done = cli.json("retention", "run")
    assert [d["case_id"] for d in done["deleted"]] == [case_id] and done["blocked"] == []
    assert done["deleted"][0]["deleted_by"] == "operator"
    assert "deleted after retention" in cli("verify", case_id).stdout
