"""Suspending, resuming and terminating a case (admins; contract E).

* **suspend** — the case's state becomes ``suspended`` (history: ``case_suspended`` with the reason and the
  state it had, and ``state_changed``). A suspended case does not advance: completing one of its tasks is
  refused (``CaseSuspended``, 409 in the API), ``step_case`` refuses, so messages for it are *kept* (and do
  not expire while it is suspended) and background jobs for it (timers, service calls, kept messages) are not
  claimed by any worker until it is resumed: a timer that falls due meanwhile fires after the resume. Its open
  tasks stay in the task table; the inbox marks them as belonging to a suspended case.
* **resume** — the case gets back the state its workflow is in (``waiting``, ``running``, ``error``),
  history ``case_resumed`` and ``state_changed``; jobs that fell due run at the next burst of a worker; kept
  messages it waits for are handed over.
* **terminate** — open tasks are cancelled, its jobs (timers, service calls, deliveries) cancelled, messages
  kept for it dead-lettered, the workflow cancelled; state ``terminated``, history ``case_terminated`` with
  the reason. A terminated case is closed like a completed one: it is exported to the E-Akte with its whole
  history (``efile_export`` job), and its retention runs from the termination.

Every action needs a reason (text) and is refused for a case that is closed already.
"""

from datetime import timedelta

from .audit import AuditTrail
from .cases import RETRIES, SYSTEM, Scan, _finish_step, _Step, case_data, iso
from .errors import CaseClosed, CaseError, CaseSuspended, ConcurrentUpdate, NotFound
from .jobs import schedule
from .lean import Lean
from .messages import default_ttl

CLOSED = ("completed", "terminated")
ROW = ('SELECT version_id, workflow, lock_version, audit_seq, audit_hash, state, tenant FROM "case" WHERE id = ?')
SEAL = ('UPDATE "case" SET state = ?, workflow = ?, lock_version = ?, updated_at = ?, audit_seq = ?, audit_hash = ? '
        "WHERE id = ? AND lock_version = ?")
INSERT_AUDIT = ('INSERT INTO audit_event (case_id, seq, "at", actor, action, element_id, "old", "new", prev_hash, '
                '"hash") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
EXPORT_DELAY_SECONDS = 60.0  # as engine.efile: late writes land first


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("a reason is required (it is kept in the case's history)")
    return reason[:2000]


def _retrying(rt, case_id, fn):
    for _attempt in range(RETRIES):
        try:
            with Lean.transaction(rt.db) as db:
                return fn(db)
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"case {case_id} is changing too often at the moment; try again")


def _load(db, case_id):
    row = db.one(ROW, (int(case_id),))
    if row is None:
        raise NotFound(f"no case {case_id}")
    return row


def _write(db, case_id, state, blob, lock, audit_seq, audit_hash, trail, now):
    seq, head = trail.seal(int(case_id), audit_seq, audit_hash)
    if db.run(SEAL, (state, blob, lock + 1, db.ts(now), seq, head, int(case_id), lock)) != 1:
        raise ConcurrentUpdate(f"case {case_id} was changed by another process")
    db.many(INSERT_AUDIT, [(r["case_id"], r["seq"], r["at"], r["actor"], r["action"], r["element_id"], r["old"],
                            r["new"], r["prev_hash"], r["hash"]) for r in trail.rows])


def suspend(rt, case_id, actor, reason):
    """Suspend an open case. Returns {"case_id", "state": "suspended"}."""
    reason = _reason(reason)

    def run(db):
        _vid, blob, lock, audit_seq, audit_hash, state, _tenant = _load(db, case_id)
        if state in CLOSED:
            raise CaseClosed(f"case {case_id} is {state}: it cannot be suspended")
        if state == "suspended":
            raise CaseSuspended(f"case {case_id} is suspended already")
        now = rt.clock()
        trail = AuditTrail(iso(now))
        trail.add(actor, "case_suspended", None, new={"reason": reason, "state_before": state})
        trail.add(SYSTEM, "state_changed", None, old=state, new="suspended")
        _write(db, case_id, "suspended", bytes(blob), lock, audit_seq, audit_hash, trail, now)
        return {"case_id": int(case_id), "state": "suspended"}

    return _retrying(rt, case_id, run)


def resume(rt, case_id, actor, reason):
    """Resume a suspended case: it gets the state its workflow is in and runs its due work again."""
    reason = _reason(reason)

    def run(db):
        version_id, blob, lock, audit_seq, audit_hash, state, tenant = _load(db, case_id)
        if state != "suspended":
            raise CaseError(f"case {case_id} is {state}, not suspended: there is nothing to resume")
        version = rt.version(db, version_id)
        now = rt.clock()
        wf = version.serializer.load(bytes(blob), version.spec, version.subprocess_specs)
        wf.script_engine = rt.script_engine
        trail = AuditTrail(iso(now))
        trail.add(actor, "case_resumed", None, new={"reason": reason})
        open_before = {t.id for t in Scan(wf).ready}
        # messages kept for it whose time to live ran out while it was suspended get a fresh one
        db.run("UPDATE message SET expires_at = ? WHERE case_id = ? AND state = 'kept' AND expires_at <= ?",
               (db.ts(now + timedelta(seconds=default_ttl())), int(case_id), db.ts(now)))
        step = _Step(int(case_id), tenant, version, wf, trail, now, state, lock, audit_seq, audit_hash, open_before)
        # an engine step with nothing to do (timers fire only in their jobs): the state is the workflow's again,
        # the step hooks schedule what waits (timers, kept messages)
        return _finish_step(rt, db, step, case_data(wf))

    return _retrying(rt, case_id, run)


def terminate(rt, case_id, actor, reason):
    """Terminate an open (or suspended) case: cancel its tasks, jobs and workflow; close it as terminated."""
    reason = _reason(reason)

    def run(db):
        version_id, blob, lock, audit_seq, audit_hash, state, tenant = _load(db, case_id)
        if state in CLOSED:
            raise CaseClosed(f"case {case_id} is {state} already")
        version = rt.version(db, version_id)
        now = rt.clock()
        wf = version.serializer.load(bytes(blob), version.spec, version.subprocess_specs)
        wf.script_engine = rt.script_engine
        open_tasks = db.all("SELECT id, element_id FROM task WHERE case_id = ? AND state = 'open' ORDER BY id",
                            (int(case_id),))
        wf.cancel()
        trail = AuditTrail(iso(now))
        trail.add(actor, "case_terminated", None, new={"reason": reason, "state_before": state,
                                                       "cancelled_tasks": [t[0] for t in open_tasks]})
        trail.add(SYSTEM, "state_changed", None, old=state, new="terminated")
        _write(db, case_id, "terminated", version.serializer.dump(wf), lock, audit_seq, audit_hash, trail, now)
        for task_id, _element in open_tasks:
            db.run("UPDATE task SET state = 'cancelled', completed_at = ? WHERE id = ? AND state = 'open'",
                   (db.ts(now), task_id))
            db.run("DELETE FROM task_group WHERE task_id = ?", (task_id,))
        db.run("UPDATE job SET state = 'cancelled', lease_until = NULL, locked_by = NULL, updated_at = ?, "
               "last_error = ? WHERE case_id = ? AND state IN ('pending', 'running', 'incident')",
               (db.ts(now), f"the case was terminated: {reason}"[:2000], int(case_id)))
        db.run("UPDATE message SET state = 'dead', settled_at = ?, reason = ? WHERE case_id = ? AND state = 'kept'",
               (db.ts(now), "the case was terminated before it waited for this message", int(case_id)))
        _schedule_export(db, int(case_id), tenant, now)
        return {"case_id": int(case_id), "state": "terminated", "cancelled_tasks": [t[0] for t in open_tasks]}

    return _retrying(rt, case_id, run)


def _schedule_export(db, case_id, tenant, now):
    schedule(db, "efile_export", now + timedelta(seconds=EXPORT_DELAY_SECONDS), now, case_id=case_id, tenant=tenant,
             key=f"efile_export:{case_id}")

