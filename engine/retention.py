"""Retention (DSGVO storage limitation): cases past their Aufbewahrungsende are deleted here.

Only a case whose export the E-Akte confirmed is deleted (the record lives on there); an unconfirmed export
blocks deletion and is listed for an operator. Deleting removes the case and every row that belongs to it —
found through the foreign keys of the schema, so tables added later are included without a change here —
its documents' files (unless another document holds the same content) and the package in the outbox. A
tombstone (``case_tombstone``) keeps ids, dates, the head of the deleted history and the hash of the
exported package; it is also the record of the deletion (who, when), since the case's own history is gone
with it (the E-Akte holds it in the package). Runs as ``ozgflow retention run`` and as the periodic
``retention_run`` job; time comes from ``now`` or ``rt.clock``.
"""

import logging

from sqlalchemy import delete, select, true

from .blobs import blob_store
from .cases import SYSTEM, iso
from .efile import target_for
from .errors import NotFound
from .jobs import register
from .schema import Base, Case, CaseTombstone, Document, EfileExport

log = logging.getLogger("ozgflow.retention")
RUN_EVERY_SECONDS = 3600.0


def due(rt, now=None, tenant=None):
    """Cases whose Aufbewahrungsende has passed: ``deletable`` (export confirmed) and ``blocked`` (not)."""
    today = (now or rt.clock()).date().isoformat()
    q = (select(EfileExport.case_id, EfileExport.tenant, EfileExport.retention_until, EfileExport.confirmed_at,
                EfileExport.prozess_id, Case.aktenzeichen)
         .join(Case, Case.id == EfileExport.case_id).where(EfileExport.retention_until < today)
         .order_by(EfileExport.retention_until, EfileExport.case_id))
    if tenant is not None:
        q = q.where(EfileExport.tenant == tenant)
    out = {"deletable": [], "blocked": []}
    with rt.reader.connect() as conn:
        for r in conn.execute(q):
            item = {"case_id": r.case_id, "tenant": r.tenant, "aktenzeichen": r.aktenzeichen,
                    "retention_until": r.retention_until, "prozess_id": r.prozess_id}
            if r.confirmed_at is None:
                out["blocked"].append({**item, "reason": "the E-Akte has not confirmed the import of the package"})
            else:
                out["deletable"].append(item)
    return out


def run(rt, actor=SYSTEM, now=None, tenant=None):
    """Delete every deletable case (see ``due``); returns {"deleted": [tombstones], "blocked": [...]}."""
    now = now or rt.clock()
    found = due(rt, now, tenant)
    deleted = [delete_case(rt, item["case_id"], actor, now) for item in found["deletable"]]
    return {"deleted": deleted, "blocked": found["blocked"]}


def _owned(table, case_id, memo):
    """A WHERE clause for the rows of ``table`` that belong to the case (via foreign keys), or None."""
    if table.name in memo:
        return memo[table.name]
    memo[table.name] = None  # no cycles
    if table.name == "case":
        clause = table.c.id == case_id
    else:
        parts = []
        for fk in table.foreign_keys:
            parent = _owned(fk.column.table, case_id, memo)
            if parent is not None:
                parts.append(fk.parent.in_(select(fk.column).where(parent)))
        clause = None
        for part in parts:
            clause = part if clause is None else clause | part
    memo[table.name] = clause
    return clause


def delete_case(rt, case_id, actor=SYSTEM, now=None):
    """Delete one case whose confirmed export is past retention, leaving its tombstone (returned as a dict)."""
    now = now or rt.clock()
    with rt.db.begin() as conn:
        case = conn.execute(select(Case.__table__).where(Case.id == int(case_id))).mappings().first()
        export = conn.execute(select(EfileExport.__table__).where(EfileExport.case_id == int(case_id))
                              ).mappings().first()
        if case is None or export is None:
            raise NotFound(f"case {case_id} is not an exported case")
        if export["confirmed_at"] is None or export["retention_until"] >= now.date().isoformat():
            raise NotFound(f"case {case_id} is not due for deletion (retention until {export['retention_until']}, "
                           f"{'confirmed' if export['confirmed_at'] else 'import not confirmed'})")
        hashes = set(conn.execute(select(Document.sha256).where(_owned(Document.__table__, case["id"], {})))
                     .scalars())
        stone = {"case_id": case["id"], "tenant": case["tenant"], "process_id": case["process_id"],
                 "aktenzeichen": case["aktenzeichen"], "submission_id": case["submission_id"],
                 "prozess_id": export["prozess_id"], "package_sha256": export["package_sha256"],
                 "audit_seq": case["audit_seq"], "audit_hash": case["audit_hash"], "created_at": case["created_at"],
                 "closed_at": export["closed_at"], "exported_at": export["exported_at"],
                 "confirmed_at": export["confirmed_at"], "retention_until": export["retention_until"],
                 "deleted_at": now, "deleted_by": actor}
        conn.execute(CaseTombstone.__table__.insert(), stone)
        memo = {}
        for table in reversed(Base.metadata.sorted_tables):  # children before their parents
            clause = _owned(table, case["id"], memo)
            if clause is not None and table.name != "case":
                conn.execute(delete(table).where(clause))
        conn.execute(delete(Case.__table__).where(Case.id == case["id"]))
    _remove_files(rt, hashes, export)
    log.info("case %s (%s) deleted after retention by %s; tombstone kept", case["id"], case["aktenzeichen"], actor)
    return {k: (iso(v) if hasattr(v, "tzinfo") else v) for k, v in stone.items()}


def _remove_files(rt, hashes, export):
    blobs = blob_store(rt)
    with rt.reader.connect() as conn:
        for sha in hashes:
            if conn.execute(select(true()).where(Document.sha256 == sha).limit(1)).first() is None:
                blobs.path(sha).unlink(missing_ok=True)
    target_for(rt, export["tenant"]).remove(export["location"])


def tombstones(rt, tenant=None):
    """The tombstones, newest deletion first."""
    q = select(CaseTombstone.__table__).order_by(CaseTombstone.deleted_at.desc(), CaseTombstone.case_id)
    if tenant is not None:
        q = q.where(CaseTombstone.tenant == tenant)
    with rt.reader.connect() as conn:
        return [{k: (iso(v) if hasattr(v, "tzinfo") else v) for k, v in r.items()} for r in conn.execute(q).mappings()]


def _run_job(rt, _job):
    run(rt)


register("retention_run", _run_job, every_seconds=RUN_EVERY_SECONDS)
