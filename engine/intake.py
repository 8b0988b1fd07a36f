"""Picking up applications from the OZG mailbox and turning each into a case, exactly once.

For each submission a mailbox (``connectors.fitconnect.receive.MailboxSource``) lists:

1. Known already and answered → nothing to do. Known but not yet answered (a worker died after storing
   it) → answer it now.
2. New → fetch and check it (outside any transaction: HTTP and RSA are slow), then in ONE transaction
   store the submission, its documents and — when it is valid — start the case of the process bound to
   (tenant, LeiKa key), or the generic intake process when the tenant takes the service but no specific
   process handles it. An invalid submission is stored as ``rejected`` with its problem and its raw
   encrypted parts (the quarantine). The submission id is unique: of two workers storing the same one,
   exactly one succeeds.
3. Answer: read the case's event log first; post accept-submission (with the authentication tags) or
   reject-submission (with the problems) only if our answer is not there yet; then mark it answered.

A crash anywhere in between leaves either nothing (fetched again next time) or a stored, unanswered
submission (answered next time), never a second case and never a second answer.
"""

import hashlib
import json
import logging
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from jsonschema import FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from . import followup
from .blobs import blob_store
from .cases import start_in
from .lean import Lean

log = logging.getLogger(__name__)

GENERIC_INTAKE = "digitaler-briefkasten"

INSERT_SUBMISSION = ('INSERT INTO submission (submission_id, fitconnect_case_id, tenant, destination_id, service, '
                     'state, reason, problem_type, received_at, metadata_json, data_json, raw, case_id) '
                     'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
INSERT_DOCUMENT = ('INSERT INTO document (submission_pk, case_id, attachment_id, filename, mime_type, purpose, size, '
                   'sha256, sha512, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')


@dataclass
class PickupReport:
    """What one pickup round did, per submission id."""

    accepted: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    answered_late: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # (submission id or destination, message): retried next round

    def as_dict(self):
        return {k: list(v) for k, v in self.__dict__.items()}


def pickup(rt, tenant_id, source, report=None, parallel=None):
    """One pickup round for one destination of ``tenant_id``; returns a PickupReport.

    Up to ``parallel`` submissions (default ``OZGFLOW_MAILBOX_PARALLEL``, 4) are worked at once: a
    submission spends most of its time waiting for the mailbox's answers and in RSA (which releases the
    GIL), so a few at a time hide the waiting. Each one is still stored in its own transaction. Transport
    failures (mailbox unreachable, HTTP errors) are logged and reported, never raised: the next round
    tries again."""
    from connectors.fitconnect.errors import MailboxError

    report = report or PickupReport()
    try:
        pending = source.pending()
    except MailboxError as exc:
        log.warning("mailbox %s unreachable: %s", source.destination_id, exc)
        report.errors.append((source.destination_id, str(exc)))
        return report

    def one(sid):
        try:
            _pick_one(rt, tenant_id, source, sid, report)
        except MailboxError as exc:
            log.warning("submission %s: %s (will retry)", sid, exc)
            report.errors.append((sid, str(exc)))

    ids = [item["submissionId"] for item in pending]
    workers = max(1, parallel or int(os.environ.get("OZGFLOW_MAILBOX_PARALLEL") or 4))
    if workers == 1 or len(ids) <= 1:
        for sid in ids:
            one(sid)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pickup") as pool:
            list(pool.map(one, ids))  # list(): re-raise anything unexpected here
    for sid, case_id, _state in _unanswered(rt, source.destination_id):
        if sid in report.accepted or sid in report.rejected:
            continue
        try:
            _answer(rt, source, sid, case_id)
            report.answered_late.append(sid)
        except MailboxError as exc:
            report.errors.append((sid, str(exc)))
    return report


def _pick_one(rt, tenant_id, source, sid, report):
    row = _submission(rt, sid)
    if row is None:
        received = source.receive(sid)
        if received.ok and not followup.known_case(rt, tenant_id, received.case_id):
            _check_data_schema(rt, tenant_id, received)  # a follow-up (engine.followup) is no new application
        if not _store_retrying(rt, tenant_id, received):
            report.skipped.append(sid)  # another worker stored it first; it answers it
            return
        row = _submission(rt, sid)
    if row["answered_at"] is not None:
        report.skipped.append(sid)
        return
    _answer(rt, source, sid, row["fitconnect_case_id"])
    (report.accepted if row["state"] == "accepted" else report.rejected).append(sid)


def _submission(rt, sid):
    with Lean.transaction(rt.db, readonly=True) as db:
        row = db.one("SELECT id, state, fitconnect_case_id, answered_at, reason, problem_type, raw "
                     "FROM submission WHERE submission_id = ?", (sid,))
    if row is None:
        return None
    return dict(zip(("id", "state", "fitconnect_case_id", "answered_at", "reason", "problem_type", "raw"), row,
                    strict=True))


def _unanswered(rt, destination_id):
    with Lean.transaction(rt.db, readonly=True) as db:
        return db.all("SELECT submission_id, fitconnect_case_id, state FROM submission "
                      "WHERE destination_id = ? AND answered_at IS NULL", (destination_id,))


DATA_SCHEMA = "data.schema.json"


def _check_data_schema(rt, tenant_id, received):
    """Where the bound process ships a ``data.schema.json``, the application data must match it."""
    from connectors.fitconnect.receive import problem

    with Lean.transaction(rt.db, readonly=True) as db:
        process = _process_for(rt, db, tenant_id, received.service)
        row = db.one("SELECT f.content FROM model_file f JOIN process_version v ON v.id = f.version_id "
                     "WHERE v.process_id = ? AND v.executable = ? AND (f.path = ? OR f.path LIKE ?) "
                     "ORDER BY v.version DESC LIMIT 1", (process, True, DATA_SCHEMA, "%/" + DATA_SCHEMA))
    if row is None:
        return
    try:
        schema = json.loads(bytes(row[0]))
        validator = validator_for(schema)(schema, format_checker=FormatChecker())
        errors = sorted(validator.iter_errors(received.data or {}), key=lambda e: list(e.absolute_path))
    except (ValueError, SchemaError) as exc:
        log.error("the data schema of %s is unusable: %s", process, exc)
        return  # the model's fault, not the citizen's: accept, and the operator sees the log
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        received.problems.append(problem("schema-violation", "Schema-Fehler",
                                         f"the data does not match the schema of {process} at {where}: "
                                         f"{errors[0].message}", "data"))


def _process_for(rt, db, tenant_id, service):
    """The process bound to (tenant, service) if it is deployed; else the generic intake process."""
    binding = rt.tenants.process_for(tenant_id, service) if service else None
    if binding and db.one("SELECT 1 FROM process_version WHERE process_id = ? AND executable = ?",
                          (binding.process, True)):
        return binding.process
    if binding:
        log.warning("service %s of %s is bound to %s, which is not deployed: generic intake", service, tenant_id,
                    binding.process)
    return GENERIC_INTAKE


def _store_retrying(rt, tenant_id, received):
    for _attempt in range(5):
        try:
            return _store(rt, tenant_id, received)
        except followup.CaseBusy:  # the case moved on while its follow-up was stored: store it again
            continue
    return _store(rt, tenant_id, received)


def _store(rt, tenant_id, received):
    """Store the submission (and its case when valid) in one transaction. False if it was stored already.

    A valid submission in the FIT-Connect case of an earlier one is a follow-up: no new case; its documents
    go to the earlier case and a message tells it (``engine.followup``)."""
    now = rt.clock()
    blobs = blob_store(rt)
    documents = []
    for aid, (content, described) in received.attachments.items():
        documents.append((aid, described.get("filename") or f"{aid}.bin",
                          described.get("mimeType") or "application/octet-stream",
                          described.get("purpose") or "attachment", len(content), blobs.put(content),
                          hashlib.sha512(content).hexdigest()))
    first = received.problems[0] if received.problems else None
    state = "accepted" if received.ok else "rejected"
    try:
        with Lean.transaction(rt.db) as db:
            case_id, follow = None, None
            if received.ok:
                follow = followup.case_for(db, tenant_id, received.case_id)
            if follow is not None:
                case_id = follow["case_id"] if followup.is_open(follow) else None
                documents = [(*d[:3], followup.PURPOSE, *d[4:]) for d in documents]
            elif received.ok:
                data = dict(received.data or {})
                data["antrag"] = _application_info(received, documents)
                case = start_in(rt, db, _process_for(rt, db, tenant_id, received.service), tenant_id, data,
                                actor="mailbox", submission_id=received.submission_id)
                case_id = case["id"]
            db.run(INSERT_SUBMISSION, (
                received.submission_id, received.case_id, tenant_id, received.destination_id, received.service,
                state, first["detail"] if first else None, first["type"] if first else None, db.ts(now),
                json.dumps(received.metadata) if received.metadata is not None else None,
                json.dumps(received.data) if received.data is not None else None,
                json.dumps({**received.raw, "problems": received.problems}), case_id))
            pk = db.one("SELECT id FROM submission WHERE submission_id = ?", (received.submission_id,))[0]
            db.many(INSERT_DOCUMENT, [(pk, case_id, aid, name, mime, purpose, size, sha256, sha512, db.ts(now))
                                      for aid, name, mime, purpose, size, sha256, sha512 in documents])
            if follow is not None:
                followup.correlate(rt, db, follow, received, pk, now)
    except rt.db.dialect.dbapi.IntegrityError:  # the driver's own: the hot path runs on its cursor
        return False  # the submission id is taken: another worker stored this submission first
    return True


def _application_info(received, documents):
    """What the case keeps about its application besides the data: ids, reply channel, payment, files."""
    metadata = received.metadata or {}
    return {
        "submission_id": received.submission_id,
        "fitconnect_case_id": received.case_id,
        "leika": received.service,
        "reply_channel": metadata.get("replyChannel"),
        "payment": metadata.get("paymentInformation"),
        "documents": [{"attachment_id": aid, "filename": name, "mime_type": mime, "purpose": purpose,
                       "sha256": sha256} for aid, name, mime, purpose, _size, sha256, _sha512 in documents],
    }


def _answer(rt, source, sid, fitconnect_case_id):
    """Post our answer unless the event log already has it; then mark the submission answered."""
    from connectors.fitconnect.errors import Conflict

    row = _submission(rt, sid)
    if source.answer_in_log(fitconnect_case_id, sid) is None:
        accept = row["state"] == "accepted"
        raw = json.loads(row["raw"])
        try:
            if accept:
                from connectors.fitconnect import crypto

                tags = crypto.authentication_tags(raw["encryptedMetadata"], raw["encryptedData"], raw["attachments"])
                source.answer((sid, fitconnect_case_id), True, tags=tags)
            else:
                source.answer((sid, fitconnect_case_id), False, problems=raw["problems"])
        except Conflict:
            if source.answer_in_log(fitconnect_case_id, sid) is None:
                raise  # someone else answered, but not with our key: leave it unanswered and visible
    with Lean.transaction(rt.db) as db:
        db.run("UPDATE submission SET answered_at = ? WHERE submission_id = ? AND answered_at IS NULL",
               (db.ts(rt.clock()), sid))


def quarantine(rt, tenant=None):
    """Rejected submissions with their reason: ``[{"submission_id", "tenant", "reason", "problem_type",
    "received_at"}]``, newest first."""
    sql = "SELECT submission_id, tenant, reason, problem_type, received_at FROM submission WHERE state = 'rejected'"
    params = ()
    if tenant:
        sql += " AND tenant = ?"
        params = (tenant,)
    with Lean.transaction(rt.db, readonly=True) as db:
        rows = db.all(sql + " ORDER BY received_at DESC, id DESC", params)
        from .cases import iso

        return [{"submission_id": r[0], "tenant": r[1], "reason": r[2], "problem_type": r[3],
                 "received_at": iso(db.read_ts(r[4]))} for r in rows]


_SOURCES = weakref.WeakKeyDictionary()  # runtime -> {(url, destination id): source}, kept between rounds


def sources(rt, tenant=None, base_url=None):
    """(tenant id, MailboxSource) for every configured destination (of one tenant, if given).

    Sources live as long as the runtime: each keeps its HTTP connections, token and loaded keys (loading
    a 4096-bit private key costs about a third of a second) from one round to the next."""
    from connectors.fitconnect.client import Receiver, base_url_from_env
    from connectors.fitconnect.receive import FitConnectSource

    url = base_url or base_url_from_env()
    cache = _SOURCES.setdefault(rt, {})
    found = []
    for t in rt.tenants.tenants.values():
        if tenant is not None and t.id != tenant:
            continue
        for d in t.destinations:
            if (url, d.id) not in cache:
                cache[(url, d.id)] = FitConnectSource(Receiver(url, d.client_id, d.secret()), d,
                                                      rt.settings.var_dir)
            found.append((t.id, cache[(url, d.id)]))
    return found


def poll_all(rt, tenant=None, base_url=None, parallel=None):
    """One pickup round over every destination; one PickupReport for all of them."""
    report = PickupReport()
    for tenant_id, source in sources(rt, tenant, base_url):
        pickup(rt, tenant_id, source, report, parallel=parallel)
    return report


# --- as background work ------------------------------------------------------------------------------------

POLL_KIND = "mailbox_poll"
POLL_KEY = f"periodic:{POLL_KIND}"


def _poll_job(rt, _job):
    """The periodic pickup round (``ozgflow worker``). An unreachable mailbox is logged and counted in the
    report, never a failure of the job: the next round simply tries again."""
    report = poll_all(rt)
    if report.accepted or report.rejected or report.answered_late or report.errors:
        log.info("mailbox pickup: %s accepted, %s rejected, %s answered late, %s errors",
                 len(report.accepted), len(report.rejected), len(report.answered_late), len(report.errors))
    _COUNTERS["rounds"] += 1
    _COUNTERS["errors"] += len(report.errors)
    return report


_COUNTERS = {"rounds": 0, "errors": 0}  # this process's pickup rounds and transport errors (for /metrics)


def wake_pickup(rt, now=None):
    """Make the periodic pickup due now (a new-submission callback arrived). True if a worker will run it."""
    now = now or rt.clock()
    with Lean.transaction(rt.db) as db:
        return db.run("UPDATE job SET due_at = ? WHERE dedupe_key = ? AND state = 'pending'",
                      (db.ts(now), POLL_KEY)) > 0


def _register():
    from . import jobs

    seconds = float(os.environ.get("OZGFLOW_MAILBOX_POLL_SECONDS") or 10)
    jobs.register(POLL_KIND, _poll_job, every_seconds=seconds)


_register()
