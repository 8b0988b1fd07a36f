"""The history proves itself: every kind of tampering is found by ``verify`` and named."""

import pytest
from conftest import DATA
from sqlalchemy import text

from engine.audit import verify_chain
from engine.cases import complete_task, list_tasks, record, start_case
from engine.deploy import bundles_from_paths, deploy


@pytest.fixture
def finished_case(rt):
    deploy(rt, bundles_from_paths([DATA / "two_tasks"]))
    case_id = start_case(rt, "two_tasks", "marburg", {"x": 1})[0]["id"]
    complete_task(rt, list_tasks(rt, case_id=case_id)[0]["id"], "anna", {"amount": 3})
    record(rt, case_id, "anna", "comment_added", None, new={"text": "Rückruf erledigt"})
    complete_task(rt, list_tasks(rt, case_id=case_id)[0]["id"], "anna")
    return case_id


def verify(rt, case_id):
    with rt.reader.connect() as conn:
        return verify_chain(conn, case_id)


def tamper(rt, sql, **params):
    with rt.db.begin() as conn:
        conn.execute(text(sql), params)


def test_intact_chain(rt, finished_case):
    ok, count, message = verify(rt, finished_case)
    assert ok and count >= 8 and message == f"{count} entries, chain intact"


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE audit_event SET actor = 'mallory' WHERE case_id = :c AND seq = 3", "entry 3 (state_changed) was changed"),
    ("UPDATE audit_event SET new = :forged WHERE case_id = :c AND action = 'variable_set' AND new = :real",
     "was changed"),
    ("UPDATE audit_event SET at = '2020-01-01T00:00:00.000000Z' WHERE case_id = :c AND seq = 1",
     "entry 1 (case_started) was changed"),
    ("DELETE FROM audit_event WHERE case_id = :c AND seq = 2", "entry 2 is missing"),
    ("DELETE FROM audit_event WHERE case_id = :c AND seq = (SELECT MAX(seq) FROM audit_event WHERE case_id = :c)",
     "entries were removed or added"),
])
def test_tampering_is_named(rt, finished_case, sql, expected):
    tamper(rt, sql, c=finished_case, forged='{"amount":300}', real='{"amount":3}')
    ok, _count, message = verify(rt, finished_case)
    assert not ok and expected in message


def test_rewritten_entry_with_recomputed_hash_breaks_the_link(rt, finished_case):
    from engine.audit import entry_hash

    with rt.db.begin() as conn:
        row = conn.execute(text("SELECT * FROM audit_event WHERE case_id = :c AND seq = 2"),
                           {"c": finished_case}).mappings().one()
        forged = entry_hash(finished_case, 2, row["at"], "mallory", row["action"], row["element_id"], row["old"],
                            row["new"], row["prev_hash"])
        conn.execute(text("UPDATE audit_event SET actor = 'mallory', hash = :h WHERE id = :i"),
                     {"h": forged, "i": row["id"]})
    ok, _count, message = verify(rt, finished_case)
    assert not ok and message.startswith("entry 3") and "does not link to entry 2" in message


def test_cli_verify_exit_codes(cli, rt, finished_case):
    assert cli("verify", finished_case).returncode == 0
    tamper(rt, "UPDATE audit_event SET actor = 'x' WHERE case_id = :c AND seq = 4", c=finished_case)
    proc = cli("verify", finished_case, check=False)
    assert proc.returncode == 1 and "entry 4" in proc.stdout and "BROKEN" in proc.stdout
