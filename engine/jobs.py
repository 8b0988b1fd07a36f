"""Background work: one job table, claimed by any number of workers; incidents for operators.

A job is a row (``engine.schema.Job``): a kind, maybe a case, a JSON payload and a due time. A worker claims
due jobs in a short transaction — ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, under SQLite's write lock
(``BEGIN IMMEDIATE``) otherwise, the same statement apart from that clause — and holds a lease on them
(default 30 s). A worker that dies leaves its jobs ``running`` until the lease ends; then another one takes
them over. Each job runs in its own transaction:

* a handler that changes a case does so through ``engine.cases.step_case``; a step hook finishes the job in
  the step's own transaction, fenced by the lease (``locked_by`` and ``attempts`` must still be ours), so the
  case changes and the job disappears together or not at all — a job taken over after a lease ran out can
  never be applied twice;
* any other handler runs first and the job is finished afterwards (at-least-once: make such handlers
  idempotent, e.g. with ``dedupe_key``).

A failing job is retried after ``backoff_seconds``, doubled after each try; after ``max_attempts`` it becomes an
*incident*: it stays in the table with its error, is counted in the metrics and written to the case's history
(``incident_opened``), and waits for an operator to retry or cancel it (both audited). A job never stops the
worker and never changes the worker's exit code.

Handlers are registered by kind (``register``) — built-in kinds the same way as any other module's — and may be
periodic (``every_seconds``): a periodic job is never deleted, it moves to its next due time. Time comes from
``rt.clock`` or an explicit ``now``; ``Worker.run_due`` is the burst mode that runs what is due and returns.
"""

import json
import logging
import os
import socket
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from .cases import SYSTEM, record
from .errors import CaseSuspended, NotFound, OzgflowError
from .lean import Lean

log = logging.getLogger("ozgflow.worker")

DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 6 * 3600.0
ERROR_CHARS = 2000


class JobError(OzgflowError):
    """A job cannot be scheduled, found or changed as asked."""


class LeaseLost(OzgflowError):
    """The job's lease ran out and another worker took it over: this worker's result is dropped."""


@dataclass(frozen=True)
class Kind:
    """A registered kind of job: its handler ``handler(rt, job)`` and its defaults."""

    name: str
    handler: object
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    every_seconds: float | None = None  # periodic: one job of this kind, always due again after this


KINDS = {}


def register(kind, handler, *, max_attempts=DEFAULT_MAX_ATTEMPTS, backoff_seconds=DEFAULT_BACKOFF_SECONDS,
             every_seconds=None):
    """Register ``handler(rt, job)`` for jobs of ``kind``. With ``every_seconds`` the kind is periodic: workers
    keep one job of it (``ensure_periodic``), due again that many seconds after each run. Registering a kind
    again replaces it (a plug-in may override a built-in kind)."""
    KINDS[kind] = Kind(kind, handler, max_attempts, backoff_seconds, every_seconds)
    return handler


@dataclass
class Job:
    """A claimed job as its handler sees it."""

    id: int
    kind: str
    case_id: int | None
    tenant: str | None
    payload: dict
    due_at: object
    attempts: int
    max_attempts: int
    backoff_seconds: float
    every_seconds: float | None
    locked_by: str
    finished: bool = field(default=False, repr=False)


# The job the current worker runs: the step hook finishes it in the step's transaction.
CURRENT = ContextVar("ozgflow_current_job", default=None)


# --- scheduling ---------------------------------------------------------------------------------------------

INSERT = ("INSERT INTO job (kind, case_id, tenant, dedupe_key, payload, state, due_at, attempts, max_attempts, "
          "backoff_seconds, every_seconds, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING")


def schedule(db, kind, due_at, now, *, case_id=None, tenant=None, payload=None, key=None, max_attempts=None,
             backoff_seconds=None, every_seconds=None):
    """Add a job in the caller's transaction (``db``: an ``engine.lean.Lean``). With ``key`` there is at most
    one job per key: scheduling the same key again changes nothing. Returns True when a job was added."""
    return schedule_many(db, kind, [(due_at, case_id, tenant, payload, key)], now, max_attempts=max_attempts,
                         backoff_seconds=backoff_seconds, every_seconds=every_seconds) > 0


def schedule_many(db, kind, rows, now, *, max_attempts=None, backoff_seconds=None, every_seconds=None):
    """Add jobs of one kind: ``rows`` of (due_at, case_id, tenant, payload, key). Returns how many were new."""
    spec = KINDS.get(kind) or Kind(kind, None)
    attempts = max_attempts if max_attempts is not None else spec.max_attempts
    backoff = backoff_seconds if backoff_seconds is not None else spec.backoff_seconds
    every = every_seconds if every_seconds is not None else spec.every_seconds
    added = 0
    for due_at, case_id, tenant, payload, key in rows:
        added += max(0, db.run(INSERT, (kind, case_id, tenant, key, json.dumps(payload or {}), db.ts(due_at),
                                        max(1, int(attempts)), float(backoff), every, db.ts(now), db.ts(now))))
    return added


def ensure_periodic(rt, now=None):
    """Make sure every periodic kind has its job (keyed ``periodic:<kind>``); due at once when new."""
    now = now or rt.clock()
    with Lean.transaction(rt.db) as db:
        for kind in KINDS.values():
            if kind.every_seconds:
                schedule(db, kind.name, now, now, key=f"periodic:{kind.name}")


# --- claiming, finishing, failing ------------------------------------------------------------------------------

CLAIM = ("UPDATE job SET state = 'running', lease_until = ?, locked_by = ?, attempts = attempts + 1, updated_at = ? "
         "WHERE id IN (SELECT id FROM job WHERE ((state = 'pending' AND due_at <= ?) "
         "OR (state = 'running' AND lease_until <= ?)) "
         # jobs of a suspended case wait until it is resumed (engine.suspension)
         "AND (case_id IS NULL OR NOT EXISTS (SELECT 1 FROM \"case\" c WHERE c.id = job.case_id "
         "AND c.state = 'suspended')) ORDER BY due_at LIMIT ?{lock}) "
         "RETURNING id, kind, case_id, tenant, payload, due_at, attempts, max_attempts, backoff_seconds, "
         "every_seconds")
FENCE = "id = ? AND state = 'running' AND locked_by = ? AND attempts = ?"


def claim(rt, worker_id, now, limit=10, lease_seconds=DEFAULT_LEASE_SECONDS):
    """Claim up to ``limit`` due jobs (and jobs whose lease ran out) for ``worker_id``, oldest due first."""
    with Lean.transaction(rt.db) as db:
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for. SQLite has one
        # writer at a time (BEGIN IMMEDIATE), which is the same guarantee.
        sql = CLAIM.format(lock=" FOR UPDATE SKIP LOCKED" if db.pg else "")
        until = now + timedelta(seconds=lease_seconds)
        rows = db.all(sql, (db.ts(until), worker_id, db.ts(now), db.ts(now), db.ts(now), int(limit)))
        jobs = [Job(r[0], r[1], r[2], r[3], json.loads(r[4]), db.read_ts(r[5]), r[6], r[7], r[8], r[9], worker_id)
                for r in rows]
    jobs.sort(key=lambda j: (j.due_at, j.id))
    return jobs


def finish(db, job, now):
    """Mark ``job`` done in the caller's transaction: a one-off job is deleted, a periodic one is due again
    ``every_seconds`` from ``now``. Returns False (and changes nothing) if the lease is no longer ours."""
    if job.every_seconds:
        done = db.run(f"UPDATE job SET state = 'pending', due_at = ?, attempts = 0, lease_until = NULL, "
                      f"locked_by = NULL, last_error = NULL, updated_at = ? WHERE {FENCE}",
                      (db.ts(now + timedelta(seconds=job.every_seconds)), db.ts(now), job.id, job.locked_by,
                       job.attempts))
    else:
        done = db.run(f"DELETE FROM job WHERE {FENCE}", (job.id, job.locked_by, job.attempts))
    job.finished = done == 1
    return job.finished


def finish_in_step(db, ctx):
    """Step hook: the job that is stepping this case is finished in the step's transaction (see module doc)."""
    job = CURRENT.get()
    if job is None or job.finished or job.case_id != ctx.case_id:
        return
    if not finish(db, job, ctx.now):
        raise LeaseLost(f"job {job.id} ({job.kind}) was taken over by another worker; its step is dropped")


def backoff(job):
    """Seconds to wait after the ``job.attempts``-th failed try: ``backoff_seconds``, doubling, capped."""
    return min(MAX_BACKOFF_SECONDS, job.backoff_seconds * 2 ** max(0, job.attempts - 1))


def fail(rt, job, error, now):
    """Record a failed try: retry later with backoff, or after the last try open an incident (audited on the
    case). Returns "retry", "incident" or "lost" (the lease was no longer ours)."""
    message = str(error)[:ERROR_CHARS] or error.__class__.__name__
    with rt.db.begin() as conn:
        db = Lean(conn)
        if job.attempts < job.max_attempts:
            moved = db.run(f"UPDATE job SET state = 'pending', due_at = ?, lease_until = NULL, locked_by = NULL, "
                           f"last_error = ?, updated_at = ? WHERE {FENCE}",
                           (db.ts(now + timedelta(seconds=backoff(job))), message, db.ts(now), job.id,
                            job.locked_by, job.attempts))
            return "retry" if moved == 1 else "lost"
        moved = db.run(f"UPDATE job SET state = 'incident', lease_until = NULL, locked_by = NULL, last_error = ?, "
                       f"updated_at = ? WHERE {FENCE}", (message, db.ts(now), job.id, job.locked_by, job.attempts))
        if moved != 1:
            return "lost"
        if job.case_id is not None:
            record(rt, job.case_id, SYSTEM, "incident_opened", job.payload.get("element_id"),
                   new={"job_id": job.id, "kind": job.kind, "attempts": job.attempts, "error": message}, conn=conn)
    log.warning("job %s (%s) became an incident after %s tries: %s", job.id, job.kind, job.attempts, message)
    return "incident"


# --- the worker -----------------------------------------------------------------------------------------------


@dataclass
class Counts:
    """What one burst did."""

    done: int = 0
    retried: int = 0
    incidents: int = 0
    lost: int = 0

    @property
    def ran(self):
        return self.done + self.retried + self.incidents + self.lost

    def as_dict(self):
        return {"ran": self.ran, "done": self.done, "retried": self.retried, "incidents": self.incidents,
                "lost": self.lost}


def worker_name():
    """host:pid:random — unique per worker process, readable for operators (``locked_by``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims and runs due jobs. ``run_due`` is one burst; ``run_forever`` polls with ``interval``."""

    def __init__(self, rt, name=None, lease_seconds=DEFAULT_LEASE_SECONDS, batch=10):
        self.rt, self.name, self.lease_seconds, self.batch = rt, name or worker_name(), lease_seconds, batch

    def run_due(self, now=None, limit=None):
        """Run every job that is due at ``now`` (default: the runtime's clock at each claim), including jobs
        that fall due while it runs, and return the Counts. ``limit`` caps the number of jobs."""
        counts = Counts()
        while limit is None or counts.ran < limit:
            size = self.batch if limit is None else min(self.batch, limit - counts.ran)
            claimed = claim(self.rt, self.name, now or self.rt.clock(), size, self.lease_seconds)
            if not claimed:
                break
            for job in claimed:
                self.run(job, counts, now)
        return counts

    def run(self, job, counts, now=None):
        """Run one claimed job in its own transaction(s); its failure is recorded on the job, never raised."""
        kind = KINDS.get(job.kind)
        token = CURRENT.set(job)
        try:
            if kind is None:
                raise JobError(f"no handler is registered for jobs of kind {job.kind!r}")
            kind.handler(self.rt, job)
            if not job.finished:
                with Lean.transaction(self.rt.db) as db:
                    if not finish(db, job, now or self.rt.clock()):
                        raise LeaseLost(f"job {job.id} ({job.kind}) was taken over by another worker")
            counts.done += 1
        except LeaseLost as exc:
            log.warning("%s", exc)
            counts.lost += 1
        except CaseSuspended:  # suspended after the claim (engine.suspension): back to waiting, no try counted
            job.finished = False
            with Lean.transaction(self.rt.db) as db:
                db.run(f"UPDATE job SET state = 'pending', lease_until = NULL, locked_by = NULL, "
                       f"attempts = attempts - 1 WHERE {FENCE}", (job.id, job.locked_by, job.attempts))
            counts.lost += 1
        except Exception as exc:  # a failing job is the job's problem, never the worker's: record, go on
            job.finished = False
            log.info("job %s (%s) failed on try %s: %s", job.id, job.kind, job.attempts, exc)
            outcome = fail(self.rt, job, exc, now or self.rt.clock())
            counts.retried += outcome == "retry"
            counts.incidents += outcome == "incident"
            counts.lost += outcome == "lost"
        finally:
            CURRENT.reset(token)

    def run_forever(self, interval=1.0, stop=None):
        """Poll every ``interval`` seconds (at once again while there was work) until ``stop()`` is true."""
        ensure_periodic(self.rt)
        while stop is None or not stop():
            try:
                counts = self.run_due()
            except Exception:  # e.g. the database is away for a moment: log, wait, try again
                log.exception("claiming jobs failed; trying again in %s s", interval)
                counts = Counts()
            if counts.ran == 0:
                time.sleep(interval)


# --- incidents ------------------------------------------------------------------------------------------------

JOB_COLUMNS = ("id", "kind", "case_id", "tenant", "state", "due_at", "attempts", "max_attempts", "last_error",
               "payload", "updated_at")


def _job_dict(db, row):
    d = dict(zip(JOB_COLUMNS, row, strict=True))
    d["payload"] = json.loads(d["payload"])
    for key in ("due_at", "updated_at"):
        d[key] = db.read_ts(d[key]).isoformat()
    return d


def list_incidents(rt, tenant=None):
    """Open incidents, oldest first: the job, its case and the last error."""
    sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM job WHERE state = 'incident'"
    params = ()
    if tenant is not None:
        sql += ' AND (tenant = ? OR case_id IN (SELECT id FROM "case" WHERE tenant = ?))'
        params = (tenant, tenant)
    with Lean.transaction(rt.db, readonly=True) as db:
        return [_job_dict(db, r) for r in db.all(sql + " ORDER BY updated_at, id", params)]


def get_job(rt, job_id):
    with Lean.transaction(rt.db, readonly=True) as db:
        row = db.one(f"SELECT {', '.join(JOB_COLUMNS)} FROM job WHERE id = ?", (int(job_id),))
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job_dict(db, row)


def retry_incident(rt, job_id, actor, now=None):
    """Give an incident's job a fresh set of tries, due now. Audited on the case (``incident_retried``)."""
    return _settle(rt, job_id, actor, "incident_retried", "UPDATE job SET state = 'pending', attempts = 0, "
                   "due_at = ?, updated_at = ? WHERE id = ? AND state = 'incident'", now)


def cancel_incident(rt, job_id, actor, now=None):
    """Give up an incident's job: it is kept as ``cancelled``; the case stays as it is, for people to handle.
    Audited on the case (``incident_cancelled``)."""
    return _settle(rt, job_id, actor, "incident_cancelled", "UPDATE job SET state = 'cancelled', due_at = ?, "
                   "updated_at = ? WHERE id = ? AND state = 'incident'", now)


def _settle(rt, job_id, actor, action, sql, now):
    now = now or rt.clock()
    with rt.db.begin() as conn:
        db = Lean(conn)
        row = db.one("SELECT kind, case_id, payload, last_error FROM job WHERE id = ?", (int(job_id),))
        if row is None:
            raise NotFound(f"no job {job_id}")
        if db.run(sql, (db.ts(now), db.ts(now), int(job_id))) != 1:
            raise JobError(f"job {job_id} is not an open incident")
        kind, case_id, payload, last_error = row
        if case_id is not None:
            record(rt, case_id, actor, action, json.loads(payload).get("element_id"),
                   new={"job_id": int(job_id), "kind": kind, "error": last_error}, conn=conn)
    return get_job(rt, job_id)


# --- what the metrics and operators read ----------------------------------------------------------------------


def job_stats(rt, now=None):
    """Counts for the metrics: jobs due (pending and due now), running, waiting (pending, not yet due),
    incidents, cancelled; per kind; and the lateness of the oldest due timer in seconds."""
    now = now or rt.clock()
    with Lean.transaction(rt.db, readonly=True) as db:
        stats = {}
        rows = db.all("SELECT kind, CASE WHEN state = 'pending' AND due_at <= ? THEN 'due' "
                      "WHEN state = 'pending' THEN 'waiting' ELSE state END AS s, COUNT(*) FROM job "
                      "GROUP BY kind, s", (db.ts(now),))
        for kind, state, n in rows:
            stats.setdefault(state, {})[kind] = n
        oldest = db.one("SELECT MIN(due_at) FROM job WHERE kind = 'timer' AND state IN ('pending', 'running') "
                        "AND due_at <= ?", (db.ts(now),))[0]
    lateness = (now - db.read_ts(oldest)).total_seconds() if oldest is not None else 0.0
    return {"by_state": stats, "timer_lateness_seconds": lateness}


def install(rt):
    """Give a runtime its background work: the clock for timers, the step hooks that finish jobs, schedule
    timers and service calls and hand over kept messages, the built-in job kinds, and the ``legal_deadline``
    connector (unless the runtime's services already name one)."""
    from . import deadlines, dispatch, efile, intake, messages, retention, service_tasks, timers  # noqa: F401

    rt.script_engine.clock = lambda: rt.clock()
    rt.script_engine.timer_gate = timers.gate
    rt.script_engine.background_services = True
    rt.services.setdefault("legal_deadline", deadlines.as_service)
    rt.step_hooks[:0] = [finish_in_step, messages.settle_in_step, timers.schedule_timers,
                         service_tasks.schedule_calls, dispatch.schedule_letters, messages.hand_over_kept,
                         efile.schedule_export]
    dispatch.install(rt)  # send tasks with letters (engine.dispatch)


def metrics_counts(rt):
    """What ``/metrics`` shows besides the jobs: cases by state, kept and dead messages, submissions by state,
    and jobs that failed a try and wait for their retry (per kind)."""
    with Lean.transaction(rt.db, readonly=True) as db:
        return {
            "cases": dict(db.all('SELECT state, COUNT(*) FROM "case" GROUP BY state')),
            "messages": dict(db.all("SELECT state, COUNT(*) FROM message WHERE state IN ('kept', 'dead') "
                                    "GROUP BY state")),
            "submissions": dict(db.all("SELECT state, COUNT(*) FROM submission GROUP BY state")),
            "jobs_failed": dict(db.all("SELECT kind, COUNT(*) FROM job WHERE state = 'pending' "
                                       "AND last_error IS NOT NULL GROUP BY kind")),
        }
