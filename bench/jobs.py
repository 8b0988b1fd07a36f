"""Scenario ``jobs``: jobs per second on PostgreSQL with one and with two worker processes.

Each job is real work: a case waits at a timer that is due at once (``PT0S``); the job fires it through
``step_case`` (load the case, step, store it, its history and the job's end in one transaction). The cases
are made first, then 1 or 2 ``ozgflow worker`` processes drain the queue; the figure is jobs / wall time
from the workers' start to the last job's end. Goal of issue 5: two workers ≥ 1.5 × one (this machine runs
PostgreSQL on the same two cores). Needs the PostgreSQL of ``OZGFLOW_TEST_PG`` (default
postgresql://postgres@127.0.0.1:5432/test); a database of its own is made and dropped.
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from engine import migrate
from engine.cases import start_case
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import deploy
from engine.models import Bundle
from engine.runtime import Runtime

from .results import row

SCENARIO = "jobs"
PG_ADMIN_URL = os.environ.get("OZGFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
TIMER_NOW = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="D" targetNamespace="b">
  <bpmn:process id="bench-timer" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="Wait"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="T"><bpmn:timeDate>due</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Wait" />
    <bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>
"""
FULL, QUICK = 3000, 60


def run(quick=False):
    n = QUICK if quick else FULL
    rates = {}
    for workers in (1, 2):
        with pg_runtime() as rt:
            make_cases(rt, n, "2000-01-01T00:00:00+00:00")
            rates[workers] = drain(rt, workers, n)
    return [
        row(SCENARIO, "jobs_per_s_1_worker", rates[1], "jobs/s"),
        row(SCENARIO, "jobs_per_s_2_workers", rates[2], "jobs/s", "jobs_per_s_1_worker", rates[2] / rates[1]),
    ]


@contextmanager
def pg_runtime():
    """A Runtime on a fresh PostgreSQL database with the bench model; dropped afterwards."""
    import psycopg

    name = f"ozgflow_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(Settings(var_dir=Path(tmp), database_url=url, tenants_file=DEFAULT_TENANTS,
                              processes_dir=Path(tmp) / "processes"))
        try:
            migrate.upgrade(rt.db)
            deploy(rt, [Bundle({"t.bpmn": TIMER_NOW})], actor="bench")
            yield rt
        finally:
            rt.close()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_cases(rt, n, due):
    """``n`` cases waiting at a timer due at ``due`` (ISO text, or a callable i -> ISO text)."""
    for i in range(n):
        start_case(rt, "bench-timer", "marburg", {"due": due(i) if callable(due) else due}, actor="bench")


def pending(rt, kind="timer"):
    with rt.db.connect() as conn:
        return conn.exec_driver_sql("SELECT COUNT(*) FROM job WHERE kind = %s", (kind,)).scalar_one()


def start_workers(rt, count, interval=0.05):
    env = {**os.environ, "OZGFLOW_DATABASE_URL": rt.db.url.render_as_string(hide_password=False),
           "OZGFLOW_VAR": str(rt.settings.var_dir), "PYTHONPATH": str(ROOT)}
    return [subprocess.Popen([sys.executable, "-m", "ozgflow", "worker", "--interval", str(interval)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]


def stop(workers):
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(30)


def drain(rt, workers, n, timeout=600):
    """Jobs per second of ``workers`` worker processes running ``n`` due timer jobs, timed from the first job
    done (a worker process takes a second to start) to the last."""
    procs = start_workers(rt, workers)
    begun = time.perf_counter()
    try:
        while (left := pending(rt)) == n:
            time.sleep(0.005)
        started, first_left = time.perf_counter(), left
        while left > 0:
            if time.perf_counter() - begun > timeout:
                raise RuntimeError(f"{left} of {n} jobs still pending after {timeout} s")
            time.sleep(0.02)
            left = pending(rt)
        return first_left / (time.perf_counter() - started)
    finally:
        stop(procs)
