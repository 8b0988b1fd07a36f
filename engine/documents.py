"""The documents of a case as a caseworker sees them (list, content), and the log of reads of personal data.

Documents come from citizens and are untrusted: ``safe_type`` decides what the web may show inline
(PDF and raster images whose content really starts like one); everything else is offered only as a
download of type application/octet-stream. The content is checked against its SHA-256 before it is
handed out, so a changed file on disk is refused rather than served.

Every view of a case or one of its documents is written to ``data_read`` (who, when, what, via page or
API) — DESIGN §7: reads of personal data are logged. Admins read that log.
"""

import hashlib

from sqlalchemy import func, insert, select

from .blobs import blob_store
from .errors import NotFound, OzgflowError
from .schema import Case, DataRead, Document

DOCUMENTS, READS, CASES = Document.__table__, DataRead.__table__, Case.__table__
# What a browser may show inline, and how such a file must begin.
INLINE = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
PURPOSES = {"form": "Antrag", "attachment": "Anlage", "report": "Bericht", "letter": "Schreiben"}
WHAT = ("case", "task", "document")


class DocumentDamaged(OzgflowError):
    """The stored content of a document is missing or no longer matches its SHA-256."""


def _case_of(conn, person, case_id):
    tenant = conn.execute(select(CASES.c.tenant).where(CASES.c.id == int(case_id))).scalar()
    if tenant is None or not (person.is_admin or tenant == person.tenant):
        raise NotFound(f"no case {case_id}")
    return tenant


def case_documents(rt, person, case_id):
    """The documents of a case the person's tenant owns (NotFound otherwise), oldest first: dicts with id,
    filename, mime_type, purpose, purpose_label, size, sha256, created_at and ``inline`` (pdf, image or
    None: what the case page may preview)."""
    with rt.reader.connect() as conn:
        _case_of(conn, person, case_id)
        rows = conn.execute(select(DOCUMENTS.c.id, DOCUMENTS.c.filename, DOCUMENTS.c.mime_type, DOCUMENTS.c.purpose,
                                   DOCUMENTS.c.size, DOCUMENTS.c.sha256, DOCUMENTS.c.created_at)
                            .where(DOCUMENTS.c.case_id == int(case_id)).order_by(DOCUMENTS.c.id)).mappings().all()
    out = []
    for r in rows:
        kind = _kind(r["mime_type"])
        out.append({**r, "purpose_label": PURPOSES.get(r["purpose"], r["purpose"]), "inline": kind})
    return out


def _kind(mime_type):
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime not in INLINE:
        return None
    return "pdf" if mime == "application/pdf" else "image"


def document_content(rt, person, case_id, document_id):
    """(document dict, content bytes, safe type) of one document of a case the person may see; NotFound
    for a document of another case or tenant. ``safe type`` is the stored type when it may be shown
    inline and the content really begins like that type, else application/octet-stream."""
    with rt.reader.connect() as conn:
        _case_of(conn, person, case_id)
        doc = conn.execute(select(DOCUMENTS).where(DOCUMENTS.c.id == int(document_id),
                                                   DOCUMENTS.c.case_id == int(case_id))).mappings().first()
    if doc is None:
        raise NotFound(f"no document {document_id} in case {case_id}")
    try:
        content = blob_store(rt).get(doc["sha256"])
    except (FileNotFoundError, ValueError):
        raise DocumentDamaged(f"the content of document {document_id} is missing") from None
    if hashlib.sha256(content).hexdigest() != doc["sha256"]:
        raise DocumentDamaged(f"the content of document {document_id} does not match its SHA-256")
    return dict(doc), content, safe_type(doc["mime_type"], content)


def safe_type(mime_type, content):
    """The type to serve ``content`` as: an inline type only when the bytes agree with it."""
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime in INLINE and content.startswith(INLINE[mime]):
        if mime != "image/webp" or content[8:12] == b"WEBP":
            return mime
    return "application/octet-stream"


# --- the read log ---------------------------------------------------------------------------------------


def log_read(rt, person, case_id, what, via="web", document_id=None):
    """Record that ``person`` viewed a case (``what``: case, task or document) through ``via`` (web, api)."""
    if what not in WHAT:
        raise ValueError(f"unknown kind of read {what!r}")
    with rt.db.begin() as conn:
        tenant = conn.execute(select(CASES.c.tenant).where(CASES.c.id == int(case_id))).scalar()
        if tenant is None:
            raise NotFound(f"no case {case_id}")
        conn.execute(insert(READS).values(at=rt.clock(), actor=person.name, tenant=tenant, case_id=int(case_id),
                                          document_id=document_id, what=what, via=via))


def list_reads(rt, person, case_id=None, tenant=None, limit=200):
    """The newest reads (admins only: Forbidden-like NotFound for others), optionally of one case or tenant:
    dicts with at, actor, tenant, case_id, aktenzeichen, document_id, filename, what, via; and the total."""
    if not person.is_admin:
        raise NotFound("the read log is for admins")
    q = (select(READS.c.at, READS.c.actor, READS.c.tenant, READS.c.case_id, CASES.c.aktenzeichen,
                READS.c.document_id, DOCUMENTS.c.filename, READS.c.what, READS.c.via)
         .join(CASES, CASES.c.id == READS.c.case_id).outerjoin(DOCUMENTS, DOCUMENTS.c.id == READS.c.document_id))
    conds = []
    if case_id is not None:
        conds.append(READS.c.case_id == int(case_id))
    if tenant:
        conds.append(READS.c.tenant == tenant)
    with rt.reader.connect() as conn:
        rows = conn.execute(q.where(*conds).order_by(READS.c.id.desc()).limit(int(limit))).mappings().all()
        total = conn.execute(select(func.count()).select_from(READS).where(*conds)).scalar_one()
    return [dict(r) for r in rows], total
