"""Suspend, resume, terminate (contract E): a suspended case does not advance; a terminated one is closed."""

from datetime import UTC, datetime, timedelta

import pytest
from chain_bpmn import chain, message, timer, user
from sqlalchemy import text

from engine.audit import verify_chain
from engine.cases import complete_task, get_case, list_tasks, start_case
from engine.deploy import deploy
from engine.efile import get_export, verify_case
from engine.errors import CaseClosed, CaseError, CaseSuspended
from engine.jobs import Worker
from engine.messages import deliver, list_messages
from engine.models import Bundle
from engine.suspension import resume, suspend, terminate

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(rt):
    rt.clock = Clock(T0)
    return rt.clock


def put(rt, pid, steps, **kw):
    deploy(rt, [Bundle({f"{pid}.bpmn": chain(pid, steps, **kw)})])


def actions(rt, case_id):
    return [h["action"] for h in get_case(rt, case_id)["history"]]


def test_suspended_timer_does_not_fire_until_resume(rt, clock):
    put(rt, "frist", [timer("Warten", "Frist", "PT24H"), user("A", "Prüfen")])
    case_id = start_case(rt, "frist", "giessen")[0]["id"]
    assert suspend(rt, case_id, "admin1", "Widerspruch anhängig") == {"case_id": case_id, "state": "suspended"}
    clock.advance(hours=30)
    assert Worker(rt).run_due().ran == 0  # the due timer job is not claimed
    assert get_case(rt, case_id)["state"] == "suspended" and list_tasks(rt, case_id=case_id) == []
    resume(rt, case_id, "admin1", "Widerspruch zurückgenommen")
    assert get_case(rt, case_id)["state"] == "waiting"
    assert Worker(rt).run_due().done == 1
    assert [t["element_id"] for t in list_tasks(rt, case_id=case_id)] == ["A"]
    shown = get_case(rt, case_id)
    entries = [(h["action"], h["new"]) for h in shown["history"] if h["action"].startswith("case_")]
    assert entries[1:] == [("case_suspended", {"reason": "Widerspruch anhängig", "state_before": "waiting"}),
                           ("case_resumed", {"reason": "Widerspruch zurückgenommen"})]
    done = actions(rt, case_id)
    assert done.index("timer_fired") > done.index("case_resumed")  # it fired after the resume, not before
    with rt.reader.connect() as conn:
        assert verify_chain(conn, case_id)[0]


def test_completing_a_task_of_a_suspended_case_is_refused(rt, clock):
    put(rt, "antrag", [user("A", "Prüfen"), user("B", "Bescheid")])
    case_id = start_case(rt, "antrag", "marburg")[0]["id"]
    [task] = list_tasks(rt, case_id=case_id)
    suspend(rt, case_id, "admin1", "Klärung")
    with pytest.raises(CaseSuspended, match="suspended"):
        complete_task(rt, task["id"], "anna", {})
    assert [t["id"] for t in list_tasks(rt, case_id=case_id)] == [task["id"]]  # still open, unchanged
    with pytest.raises(CaseSuspended, match="already"):
        suspend(rt, case_id, "admin1", "noch einmal")
    with pytest.raises(CaseError, match="reason"):
        resume(rt, case_id, "admin1", "  ")
    resume(rt, case_id, "admin1", "geklärt")
    complete_task(rt, task["id"], "anna", {})
    assert [t["element_id"] for t in list_tasks(rt, case_id=case_id)] == ["B"]
    with pytest.raises(CaseError, match="not suspended"):
        resume(rt, case_id, "admin1", "nichts")


def test_message_for_a_suspended_case_is_kept_and_delivered_after_resume(rt, clock):
    put(rt, "zahlung", [message("Zahlung", "Zahlung eingegangen", "zahlung"), user("Q", "Quittung")],
        messages=["zahlung"])
    case_id = start_case(rt, "zahlung", "giessen")[0]["id"]
    suspend(rt, case_id, "admin1", "Prüfung")
    assert deliver(rt, "zahlung", {"case_id": case_id}, {"betrag": 5})["status"] == "kept"
    clock.advance(days=10)  # past the kept message's time to live: it does not expire while suspended
    Worker(rt).run_due()
    from engine.messages import expire

    expire(rt, None)
    assert len(list_messages(rt, "kept")) == 1
    resume(rt, case_id, "admin1", "weiter")
    Worker(rt).run_due()
    assert list_messages(rt, "kept") == [] and len(list_messages(rt, "delivered")) == 1
    assert [t["element_id"] for t in list_tasks(rt, case_id=case_id)] == ["Q"]


def test_terminate_cancels_tasks_timers_and_files_the_case(rt, clock):
    put(rt, "frist", [user("A", "Prüfen"), timer("Warten", "Frist", "PT24H"), user("B", "Bescheid")])
    case_id = start_case(rt, "frist", "wetzlar")[0]["id"]
    [task] = list_tasks(rt, case_id=case_id)
    complete_task(rt, task["id"], "anna", {})  # now the timer waits
    with rt.db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM job WHERE case_id = :c AND state = 'pending'"),
                            {"c": case_id}).scalar_one() == 1
    result = terminate(rt, case_id, "admin1", "Antrag zurückgezogen")
    assert result["state"] == "terminated"
    shown = get_case(rt, case_id)
    assert shown["state"] == "terminated" and shown["tasks"] == []
    [entry] = [h for h in shown["history"] if h["action"] == "case_terminated"]
    assert entry["actor"] == "admin1" and entry["new"]["reason"] == "Antrag zurückgezogen"
    with rt.db.connect() as conn:
        states = dict(conn.execute(text("SELECT kind, state FROM job WHERE case_id = :c"), {"c": case_id}).all())
    assert states == {"timer": "cancelled", "efile_export": "pending"}
    clock.advance(days=2)
    Worker(rt).run_due()
    assert get_case(rt, case_id)["state"] == "terminated"  # the timer never fired
    assert "timer_fired" not in actions(rt, case_id)
    export = get_export(rt, case_id)
    assert export is not None, "a terminated case is filed in the E-Akte with its history"
    assert verify_case(rt, case_id)["ok"]
    with pytest.raises(CaseClosed):
        terminate(rt, case_id, "admin1", "again")
    with pytest.raises(CaseClosed):
        suspend(rt, case_id, "admin1", "zu spät")
    # a message for it is not delivered: no open case matches
    assert deliver(rt, "x", {"case_id": case_id})["status"] == "dead"


def test_suspended_case_can_be_terminated_and_its_task_is_cancelled(rt, clock):
    put(rt, "antrag", [user("A", "Prüfen")])
    case_id = start_case(rt, "antrag", "marburg")[0]["id"]
    [task] = list_tasks(rt, case_id=case_id)
    suspend(rt, case_id, "admin1", "Klärung")
    terminate(rt, case_id, "admin1", "erledigt durch Rücknahme")
    with rt.db.connect() as conn:
        assert conn.execute(text("SELECT state FROM task WHERE id = :t"), {"t": task["id"]}).scalar_one() == "cancelled"


def test_cli_suspend_resume_terminate(cli, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "antrag.bpmn").write_bytes(chain("antrag", [user("A", "Prüfen")]))
    cli("deploy", folder)
    case_id = cli.json("case", "start", "antrag", "--tenant", "giessen")["id"]
    missing = cli("case", "suspend", str(case_id), check=False)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    assert cli.json("case", "suspend", str(case_id), "--reason", "Prüfung", "--user", "admin1") == \
        {"case_id": case_id, "state": "suspended"}
    again = cli("case", "suspend", str(case_id), "--reason", "x", check=False)
    assert again.returncode == 1 and "suspended already" in again.stderr
    assert cli.json("case", "resume", str(case_id), "--reason", "ok")["state"] == "waiting"
    done = cli.json("case", "terminate", str(case_id), "--reason", "Rücknahme")
    assert done["state"] == "terminated" and len(done["cancelled_tasks"]) == 1
    shown = cli.json("case", "show", str(case_id))
    assert shown["state"] == "terminated"
    assert [h["actor"] for h in shown["history"] if h["action"] == "case_suspended"] == ["admin1"]


def test_job_claimed_before_the_suspension_goes_back_without_a_try_counted(rt, clock):
    from engine.jobs import Counts, claim

    put(rt, "frist", [timer("Warten", "Frist", "PT1H"), user("A", "Prüfen")])
    case_id = start_case(rt, "frist", "giessen")[0]["id"]
    clock.advance(hours=2)
    worker = Worker(rt, name="w1")
    [job] = claim(rt, worker.name, clock())
    suspend(rt, case_id, "admin1", "gerade jetzt")
    counts = Counts()
    worker.run(job, counts)
    with rt.db.connect() as conn:
        row = conn.execute(text("SELECT state, attempts, last_error FROM job WHERE id = :j"), {"j": job.id}).one()
    assert tuple(row) == ("pending", 0, None)
    assert "timer_fired" not in actions(rt, case_id)
    resume(rt, case_id, "admin1", "weiter")
    assert Worker(rt).run_due().done == 1
    assert [t["element_id"] for t in list_tasks(rt, case_id=case_id)] == ["A"]
