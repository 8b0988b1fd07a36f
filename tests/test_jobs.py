"""The job table on SQLite and PostgreSQL: claiming, leases and take-over, retries with backoff, incidents
(listed, retried, cancelled, audited), periodic jobs. Time is injected; nothing sleeps."""

from datetime import UTC, datetime, timedelta

import pytest
from bpmn_snippets import user_task_process

from engine import jobs
from engine.audit import verify_chain
from engine.cases import get_case, start_case
from engine.deploy import deploy
from engine.jobs import Worker, cancel_incident, claim, list_incidents, retry_incident, schedule
from engine.lean import Lean
from engine.models import Bundle

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
RAN = []


def _ok(rt, job):
    RAN.append(job.payload["n"])


def _broken(rt, job):
    raise ConnectionError("E-Akte nicht erreichbar")


jobs.register("test_ok", _ok)
jobs.register("test_broken", _broken, max_attempts=3, backoff_seconds=60)


@pytest.fixture(autouse=True)
def _clean():
    RAN.clear()


def add(rt, kind, due, n=0, **kwargs):
    with Lean.transaction(rt.db) as db:
        return schedule(db, kind, due, T0, payload={"n": n}, **kwargs)


def rows(rt):
    with rt.db.connect() as conn:
        return conn.exec_driver_sql("SELECT id, kind, state, attempts, last_error FROM job ORDER BY id").all()


def test_due_jobs_run_once_in_due_order_and_disappear(rt):
    add(rt, "test_ok", T0 + timedelta(seconds=2), 2)
    add(rt, "test_ok", T0 + timedelta(seconds=1), 1)
    add(rt, "test_ok", T0 + timedelta(hours=1), 3)
    assert Worker(rt).run_due(now=T0).ran == 0
    counts = Worker(rt, batch=1).run_due(now=T0 + timedelta(seconds=5))
    assert (counts.done, RAN) == (2, [1, 2])
    assert [r.kind for r in rows(rt)] == ["test_ok"]  # only the one due in an hour is left


def test_same_key_schedules_one_job(rt):
    assert add(rt, "test_ok", T0, key="timer:1:abc") is True
    assert add(rt, "test_ok", T0, key="timer:1:abc") is False
    assert len(rows(rt)) == 1


def test_failures_back_off_then_become_an_incident(rt):
    add(rt, "test_broken", T0)
    w = Worker(rt)
    assert w.run_due(now=T0).retried == 1
    assert w.run_due(now=T0 + timedelta(seconds=59)).ran == 0  # 1st wait: 60 s
    assert w.run_due(now=T0 + timedelta(seconds=60)).retried == 1
    assert w.run_due(now=T0 + timedelta(seconds=60 + 119)).ran == 0  # 2nd wait: 120 s
    counts = w.run_due(now=T0 + timedelta(seconds=180))
    assert counts.incidents == 1 and counts.ran == 1
    [incident] = list_incidents(rt)
    assert incident["attempts"] == 3 and "E-Akte nicht erreichbar" in incident["last_error"]
    assert w.run_due(now=T0 + timedelta(days=1)).ran == 0  # an incident waits for an operator


def test_unknown_kind_is_an_incident_not_a_crash(rt):
    add(rt, "no_such_kind", T0, max_attempts=1)
    assert Worker(rt).run_due(now=T0).incidents == 1
    assert "no handler is registered" in list_incidents(rt)[0]["last_error"]


def test_expired_lease_is_taken_over_and_the_late_worker_is_fenced_off(rt):
    add(rt, "test_ok", T0, 7)
    [stuck] = claim(rt, "worker-a", T0, lease_seconds=30)  # worker a claims, then hangs
    b = Worker(rt, name="worker-b", lease_seconds=30)
    assert b.run_due(now=T0 + timedelta(seconds=29)).ran == 0
    assert b.run_due(now=T0 + timedelta(seconds=30)).done == 1
    assert RAN == [7] and rows(rt) == []
    a = Worker(rt, name="worker-a")
    counts = jobs.Counts()
    a.run(stuck, counts, now=T0 + timedelta(seconds=31))  # a wakes up: its finish is refused
    assert counts.lost == 1


def test_periodic_job_comes_back(rt):
    calls = []
    jobs.register("test_periodic", lambda rt, job: calls.append(job.attempts), every_seconds=30)
    try:
        jobs.ensure_periodic(rt, now=T0)
        jobs.ensure_periodic(rt, now=T0)  # idempotent
        w = Worker(rt)
        w.run_due(now=T0)
        assert calls == [1]
        w.run_due(now=T0 + timedelta(seconds=29))
        assert calls == [1]
        w.run_due(now=T0 + timedelta(seconds=30))
        assert calls == [1, 1]
        assert [r.state for r in rows(rt) if r.kind == "test_periodic"] == ["pending"]
    finally:
        del jobs.KINDS["test_periodic"]


def test_incident_of_a_case_is_audited_retried_and_cancelled(rt):
    deploy(rt, [Bundle({"u.bpmn": user_task_process(pid="akte")})])
    [case] = start_case(rt, "akte", "marburg")
    with Lean.transaction(rt.db) as db:
        schedule(db, "test_broken", T0, T0, case_id=case["id"], payload={"element_id": "Step"}, max_attempts=1)
    w = Worker(rt)
    assert w.run_due(now=T0).incidents == 1
    [incident] = list_incidents(rt, tenant="marburg")
    assert list_incidents(rt, tenant="giessen") == []
    retry_incident(rt, incident["id"], "operator", now=T0 + timedelta(minutes=5))
    assert list_incidents(rt) == []
    assert w.run_due(now=T0 + timedelta(minutes=5)).incidents == 1
    cancelled = cancel_incident(rt, incident["id"], "operator")
    assert cancelled["state"] == "cancelled"
    with pytest.raises(jobs.JobError):
        retry_incident(rt, incident["id"], "operator")
    actions = [(h["action"], h["actor"], h["element_id"]) for h in get_case(rt, case["id"])["history"]]
    assert actions[-4:] == [("incident_opened", "system", "Step"), ("incident_retried", "operator", "Step"),
                            ("incident_opened", "system", "Step"), ("incident_cancelled", "operator", "Step")]
    with rt.reader.connect() as conn:
        assert verify_chain(conn, case["id"])[0]


def test_stats_count_due_waiting_and_incidents(rt):
    add(rt, "test_ok", T0)
    add(rt, "test_ok", T0 + timedelta(days=1))
    add(rt, "no_such_kind", T0, max_attempts=1)
    Worker(rt).run_due(now=T0, limit=2)
    stats = jobs.job_stats(rt, now=T0)
    assert stats["by_state"]["waiting"] == {"test_ok": 1}
    assert stats["by_state"]["incident"] == {"no_such_kind": 1}
