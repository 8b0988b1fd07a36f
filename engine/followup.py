"""Follow-up submissions: the citizen answers in the same FIT-Connect case (e.g. to a Nachforderung).

FIT-Connect lets a sender deliver a further submission with the ``caseId`` of an earlier one. When the mailbox
brings a valid submission whose caseId is that of a submission that started a case of the same tenant, the
pickup does not start a new case. In the same transaction that stores the submission (``engine.intake``):

* its attachments become documents of that case (purpose ``attachment``);
* the case's history records ``followup_received`` (submission id, documents);
* a message ``unterlagen_nachgereicht`` (payload: submission id, FIT-Connect caseId, documents, data) is kept
  for the case and a ``deliver_message`` job is scheduled: a case that waits for it (the ``nachforderung``
  process) gets it at once, an early one keeps it until it waits (``engine.messages``) — never dropped.

A follow-up to a case that is closed already is kept as a dead letter for an operator (its documents stay
with the submission), never attached to a closed — perhaps exported — file.
"""

import json
from datetime import timedelta

from . import jobs
from .audit import AuditTrail
from .cases import INSERT_AUDIT, iso
from .errors import OzgflowError

MESSAGE = "unterlagen_nachgereicht"
PURPOSE = "attachment"


class CaseBusy(OzgflowError):
    """The case changed while the follow-up was stored; the pickup stores it again."""


def case_for(db, tenant, fitconnect_case_id):
    """``{"case_id", "state"}`` of the case an earlier submission of this FIT-Connect case started for
    ``tenant``, or None (then the submission is a new application)."""
    if not fitconnect_case_id:
        return None
    row = db.one('SELECT c.id, c.state FROM submission s JOIN "case" c ON c.id = s.case_id '
                 "WHERE s.fitconnect_case_id = ? AND s.tenant = ? ORDER BY s.id LIMIT 1",
                 (str(fitconnect_case_id), tenant))
    return {"case_id": row[0], "state": row[1]} if row else None


def known_case(rt, tenant, fitconnect_case_id):
    from .lean import Lean

    with Lean.transaction(rt.db, readonly=True) as db:
        return case_for(db, tenant, fitconnect_case_id) is not None


def is_open(follow):
    return follow is not None and follow["state"] not in ("completed", "terminated")  # terminated: engine.suspension


def correlate(rt, db, follow, received, submission_pk, now, ttl_seconds=None):
    """Inside the pickup's transaction: history entry, kept message and its delivery job (see module doc)."""
    from .messages import default_ttl

    docs = [{"document_id": r[0], "attachment_id": r[1], "filename": r[2], "mime_type": r[3], "sha256": r[4]}
            for r in db.all("SELECT id, attachment_id, filename, mime_type, sha256 FROM document "
                            "WHERE submission_pk = ? ORDER BY id", (submission_pk,))]
    payload = {"submission_id": received.submission_id, "fitconnect_case_id": received.case_id,
               "documents": docs, "data": received.data}
    correlation = {"fitconnect_case_id": received.case_id, "tenant": _tenant_of(db, follow["case_id"])}
    if not is_open(follow):
        _message(db, correlation, payload, "dead", follow["case_id"], None, now,
                 f"case {follow['case_id']} is closed: the follow-up submission {received.submission_id} "
                 "and its documents are kept with the submission")
        return None
    _audit(db, rt, follow["case_id"], "followup_received", now,
           {"submission_id": received.submission_id, "fitconnect_case_id": received.case_id, "documents": docs})
    ttl = default_ttl() if ttl_seconds is None else float(ttl_seconds)
    message_id = _message(db, correlation, payload, "kept", follow["case_id"], now + timedelta(seconds=ttl), now,
                          None)
    jobs.schedule(db, "deliver_message", now, now, case_id=follow["case_id"], tenant=correlation["tenant"],
                  payload={"message_id": message_id, "name": MESSAGE}, key=f"message:{message_id}")
    return message_id


def _tenant_of(db, case_id):
    return db.one('SELECT tenant FROM "case" WHERE id = ?', (case_id,))[0]


def _message(db, correlation, payload, state, case_id, expires, now, reason):
    values = (MESSAGE, json.dumps(correlation), json.dumps(payload), state, case_id, correlation["tenant"],
              db.ts(now), db.ts(expires) if expires is not None else None,
              db.ts(now) if state == "dead" else None, reason)
    sql = ("INSERT INTO message (name, correlation, payload, state, case_id, tenant, received_at, expires_at, "
           "settled_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    if db.pg:
        return db.one(sql + " RETURNING id", values)[0]
    db.run(sql, values)
    return db.cur.lastrowid


def _audit(db, rt, case_id, action, now, new):
    """One chained history entry, serialized against the case's other writers by its lock version."""
    lock, seq, head = db.one('SELECT lock_version, audit_seq, audit_hash FROM "case" WHERE id = ?', (case_id,))
    trail = AuditTrail(iso(now))
    trail.add("mailbox", action, None, new=new)
    seq, head = trail.seal(case_id, seq, head)
    if db.run('UPDATE "case" SET lock_version = ?, audit_seq = ?, audit_hash = ? WHERE id = ? AND lock_version = ?',
              (lock + 1, seq, head, case_id, lock)) != 1:
        raise CaseBusy(f"case {case_id} changed while a follow-up submission was stored")
    db.many(INSERT_AUDIT, [(r["case_id"], r["seq"], r["at"], r["actor"], r["action"], r["element_id"], r["old"],
                            r["new"], r["prev_hash"], r["hash"]) for r in trail.rows])
