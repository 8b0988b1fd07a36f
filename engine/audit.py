"""The audit log: append-only, each entry chained to the previous one of its case by SHA-256.

An entry's hash covers every field (case, seq, time, actor, action, element, old, new) and the previous
entry's hash, so changing, inserting, deleting or reordering any entry breaks the chain. The case row keeps
the head of its chain (last seq and hash), so cutting entries off the end is detected too.

Actions (English, stable, documented in docs/operator.md): case_started, task_completed, variable_set,
state_changed, script_run, service_called, timer_fired, message_delivered, error; later features add
theirs.
"""

import hashlib
import json

from sqlalchemy import select

from .errors import NotFound
from .schema import AuditEvent, Case

GENESIS = "0" * 64
ACTIONS = (
    "case_started", "task_completed", "variable_set", "state_changed", "script_run", "service_called",
    "timer_fired", "message_delivered", "error",
)


def to_json(value):
    """The stored (and hashed) text of an old/new value; None stays None."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_hash(case_id, seq, at, actor, action, element_id, old, new, prev_hash):
    fields = [case_id, seq, at, actor, action, element_id, old, new, prev_hash]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditTrail:
    """Collects the entries one transaction appends to one case's chain; ``seal`` chains them."""

    def __init__(self, at):
        self.at = at
        self.entries = []
        self.rows = []

    def add(self, actor, action, element_id=None, old=None, new=None):
        self.entries.append((actor, action, element_id, to_json(old), to_json(new)))

    def seal(self, case_id, seq, head):
        """Chain the entries after entry ``seq`` (hash ``head``) of ``case_id``; returns the new (seq, head)."""
        self.rows = []
        for actor, action, element_id, old, new in self.entries:
            seq += 1
            h = entry_hash(case_id, seq, self.at, actor, action, element_id, old, new, head)
            self.rows.append({"case_id": case_id, "seq": seq, "at": self.at, "actor": actor, "action": action,
                              "element_id": element_id, "old": old, "new": new, "prev_hash": head, "hash": h})
            head = h
        return seq, head

    def write(self, conn):
        if self.rows:
            conn.execute(AuditEvent.__table__.insert(), self.rows)


def history(conn, case_id):
    """The entries of one case, oldest first, as dicts for people and JSON."""
    rows = conn.execute(select(AuditEvent.__table__).where(AuditEvent.case_id == case_id)
                        .order_by(AuditEvent.seq)).mappings()
    return [{"seq": r["seq"], "at": r["at"], "actor": r["actor"], "action": r["action"],
             "element_id": r["element_id"], "old": _load(r["old"]), "new": _load(r["new"])} for r in rows]


def _load(text):
    return None if text is None else json.loads(text)


def verify_chain(conn, case_id):
    """Recompute the chain of one case. Returns (ok, count, message); the message names the first break."""
    case = conn.execute(select(Case.audit_seq, Case.audit_hash).where(Case.id == case_id)).first()
    if case is None:
        raise NotFound(f"no case {case_id}")
    rows = conn.execute(select(AuditEvent.__table__).where(AuditEvent.case_id == case_id)
                        .order_by(AuditEvent.seq)).mappings().all()
    prev, expected_seq = GENESIS, 1
    for r in rows:
        if r["seq"] != expected_seq:
            return False, len(rows), f"entry {expected_seq} is missing (found seq {r['seq']} next)"
        if r["prev_hash"] != prev:
            return False, len(rows), f"entry {r['seq']} ({r['action']}) does not link to entry {r['seq'] - 1}"
        h = entry_hash(case_id, r["seq"], r["at"], r["actor"], r["action"], r["element_id"], r["old"], r["new"],
                       r["prev_hash"])
        if h != r["hash"]:
            return False, len(rows), f"entry {r['seq']} ({r['action']}) was changed: its hash does not match"
        prev, expected_seq = r["hash"], expected_seq + 1
    if case.audit_seq != len(rows) or case.audit_hash != prev:
        return False, len(rows), (f"the chain ends at entry {len(rows)} but the case records entry "
                                  f"{case.audit_seq} as its last: entries were removed or added")
    return True, len(rows), f"{len(rows)} entries, chain intact"
