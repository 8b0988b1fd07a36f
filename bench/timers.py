"""Scenario ``timers``: how late timers fire on two workers (PostgreSQL), with many timers pending.

100,000 timer jobs wait far in the future (rows of the job table, as many waiting cases would leave there;
the claim must pass them by through its index), and 10,000 cases wait at timers falling due evenly within
100 s. Two ``ozgflow worker`` processes run; each firing records its lateness (fire time − due time) in the
case's history (``timer_fired``). Reported: p50, p99 and max lateness. Goal of issue 5: p99 ≤ 1 s.
"""

import json
import time
from datetime import UTC, datetime, timedelta

from engine.lean import Lean

from .jobs import make_cases, pending, pg_runtime, start_workers, stop
from .results import row

SCENARIO = "timers"
FULL = {"far": 100_000, "due": 10_000, "window": 100.0}
QUICK = {"far": 1_000, "due": 50, "window": 5.0}
WARM = 50  # cases made to measure the creation rate; they wait far in the future too


def run(quick=False):
    size = QUICK if quick else FULL
    with pg_runtime() as rt:
        add_far_future_jobs(rt, size["far"])
        rate = creation_rate(rt)
        # The due window starts once every case exists (with a margin), so no timer is due before it waits.
        base = datetime.now(UTC) + timedelta(seconds=size["due"] / rate * 1.3 + 5)
        step = size["window"] / size["due"]
        make_cases(rt, size["due"], lambda i: (base + timedelta(seconds=i * step)).isoformat())
        workers = start_workers(rt, 2)
        try:
            deadline = time.monotonic() + (base - datetime.now(UTC)).total_seconds() + size["window"] + 120
            while pending(rt) > size["far"] + WARM and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop(workers)
        late = sorted(lateness(rt))
    if len(late) != size["due"]:
        raise RuntimeError(f"only {len(late)} of {size['due']} timers fired")
    return [
        row(SCENARIO, "lateness_p50_s", _pct(late, 0.50), "s"),
        row(SCENARIO, "lateness_p99_s", _pct(late, 0.99), "s", "goal_max_1s", _pct(late, 0.99) / 1.0),
        row(SCENARIO, "lateness_max_s", late[-1], "s"),
        row(SCENARIO, "timers_pending_far_future", size["far"], "jobs"),
    ]


def add_far_future_jobs(rt, n):
    far = datetime(2099, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    with Lean.transaction(rt.db) as db:
        db.many("INSERT INTO job (kind, payload, state, due_at, attempts, max_attempts, backoff_seconds, "
                "dedupe_key, created_at, updated_at) VALUES ('timer', '{}', 'pending', ?, 0, 5, 10, ?, ?, ?)",
                [(db.ts(far + timedelta(seconds=i)), f"bench-far:{i}", db.ts(now), db.ts(now)) for i in range(n)])


def creation_rate(rt, n=None):
    """Cases per second that ``make_cases`` manages here (these cases wait far in the future)."""
    n = n or WARM
    started = time.perf_counter()
    make_cases(rt, n, "2099-06-01T00:00:00+00:00")
    return n / (time.perf_counter() - started)


def lateness(rt):
    with rt.db.connect() as conn:
        rows = conn.exec_driver_sql("SELECT new FROM audit_event WHERE action = 'timer_fired'").all()
    return [json.loads(r[0])["late_seconds"] for r in rows]


def _pct(values, q):
    return values[min(len(values) - 1, int(q * len(values)))]
