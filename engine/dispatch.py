"""Sending letters to the citizen: the send tasks of a model (contract A).

A ``bpmn:sendTask`` with a ``letter`` property waits when a case reaches it (``engine.specs``); the step hook
``schedule_letters`` adds a ``letter_dispatch`` job. The job, outside any transaction:

1. renders the letter from the case data (``engine.letters``) to PDF/A and stores the file (content-addressed);
2. chooses the channel from the submission's ``metadata.replyChannel``: ``eMail`` when the send task allows
   e-mail (``email_allowed``) — the mail goes by SMTP, PGP/MIME-encrypted to the ``pgpPublicKey`` if there is
   one, or into ``<var>/mail/<tenant>/`` as ``.eml`` when no SMTP host is configured (``connectors.mail``);
   anything else (``elster``, ``fink``, ``deMail``, no reply channel, e-mail not allowed) means post;
3. then, in one step of the case: the document row (purpose "letter"), the ``dispatch`` row and the history
   (``letter_created``; ``letter_dispatched`` for e-mail). An e-mailed letter completes the send task; a letter
   for the post makes it a user task "Postversand" (element ``<send task>_Postversand``, group of the lane or
   ``poststelle``) with the printable PDF. Completing that task dispatches the letter (``letter_dispatched``,
   by the person who completed it).

Afterwards ``data["letters"][<name>]`` is ``{"document_id", "channel": "email"|"post", "dispatched_at": UTC
ISO-8601, "deemed_delivered_on": "YYYY-MM-DD" or null}``. The deemed-delivery date follows the send task's
``deemed_delivery`` rule (``vwvfg41``: §41(2) VwVfG, ``ao122``: §122(2) AO): the fourth day after dispatch,
moved to the next working day when it is a Saturday, Sunday or holiday (``engine.deadlines.delivery_fiction``,
BFH practice for §122(2) AO, applied to §41(2) VwVfG by the prevailing view).

The mail is sent at least once: a worker that dies after sending but before its step commits leaves the job to
another worker, which sends again. The case records the letter exactly once.
"""

import hashlib
import json
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from connectors.mail import build_message, deliver, encrypt, mail_settings
from connectors.seal import seal_for

from . import jobs, letters
from .blobs import blob_store
from .cases import RETRIES, SYSTEM, _step_in, iso
from .deadlines import delivery_fiction
from .errors import CaseSuspended, ConcurrentUpdate, NotFound
from .lean import Lean
from .schema import Case, Dispatch, Submission
from .specs import clock_of

KIND = "letter_dispatch"
STARTED, COMPLETED = TaskState.STARTED, TaskState.COMPLETED
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 60.0
INSERT_DOCUMENT = ("INSERT INTO document (submission_pk, case_id, attachment_id, filename, mime_type, purpose, size, "
                   "sha256, sha512, created_at) VALUES (NULL, ?, NULL, ?, 'application/pdf', 'letter', ?, ?, ?, ?) "
                   "RETURNING id")
INSERT_DISPATCH = ("INSERT INTO dispatch (case_id, tenant, process_id, element_id, letter, document_id, channel, "
                   "reason, created_at, dispatched_at, deemed_delivered_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "RETURNING id")
POSTED = ("UPDATE dispatch SET dispatched_at = ?, deemed_delivered_on = ? WHERE id = ? AND case_id = ? "
          "AND dispatched_at IS NULL")


# --- the send task's side (called from engine.specs through the script engine) ---------------------------


def letter_of(task):
    """The letter config of a send task ({letter, title, email_allowed, deemed_delivery, group}) or None."""
    return (getattr(task.workflow.spec, "ozgflow_letters", None) or {}).get(task.task_spec.bpmn_id)


def deemed_delivery(rule, dispatched_at):
    """The deemed-delivery day (date) of a letter dispatched at ``dispatched_at`` under ``rule``, or None."""
    if not rule:
        return None
    return delivery_fiction(dispatched_at)


def letter_entry(document_id, channel, dispatched_at, rule):
    deemed = deemed_delivery(rule, dispatched_at)
    return {"document_id": document_id, "channel": channel, "dispatched_at": iso(dispatched_at),
            "deemed_delivered_on": deemed.isoformat() if deemed else None}


def _set_entry(task, name, entry):
    known = dict(task.data.get("letters") or {})
    known[name] = entry
    task.data["letters"] = known


def letter_posted(task, config):
    """The Postversand task of ``task`` was completed: the letter counts as dispatched now."""
    info = task._get_internal_data("letter_info") or {}
    entry = letter_entry(info.get("document_id"), "post", clock_of(task), config.get("deemed_delivery"))
    _set_entry(task, config["letter"], entry)
    task.internal_data.pop("user_task", None)
    task._set_internal_data(letter_state="posted", audit=[
        ["letter_dispatched", {"letter": config["letter"], "channel": "post", "document_id": info.get("document_id"),
                               "deemed_delivered_on": entry["deemed_delivered_on"]}]])


def install(rt):
    rt.script_engine.letter_of = letter_of
    rt.script_engine.letter_posted = letter_posted


# --- step hook: schedule the job, record posted letters ----------------------------------------------------


def _has_letters(version):
    return bool(version.meta.get("letters")) or any(getattr(s, "ozgflow_letters", None)
                                                    for s in version.subprocess_specs.values())


def _letter_tasks(wf):
    for workflow in (wf, *wf.subprocesses.values()):
        for t in workflow.tasks.values():
            if t.internal_data.get("letter_state") is not None:
                yield t


def schedule_letters(db, ctx):
    """Step hook: a ``letter_dispatch`` job per send task that waits for its letter; the ``dispatch`` row of a
    letter whose Postversand task was completed in this step gets its dispatch time."""
    if not _has_letters(ctx.version):
        return
    for t in _letter_tasks(ctx.workflow):
        state = t.internal_data.get("letter_state")
        if state == "pending" and t.state == STARTED:
            jobs.schedule(db, KIND, ctx.now, ctx.now, case_id=ctx.case_id, tenant=ctx.tenant,
                          payload={"task": str(t.id), "element_id": t.task_spec.bpmn_id},
                          key=f"letter:{ctx.case_id}:{t.id}", max_attempts=MAX_ATTEMPTS,
                          backoff_seconds=BACKOFF_SECONDS)
        elif state == "posted" and t.state == COMPLETED:
            config = letter_of(t) or {}
            entry = (t.data.get("letters") or {}).get(config.get("letter"), {})
            info = t.internal_data.get("letter_info") or {}
            if info.get("dispatch_id") and entry.get("dispatched_at"):
                deemed = entry.get("deemed_delivered_on")
                db.run(POSTED, (db.ts(_parse(entry["dispatched_at"])), _date(deemed), info["dispatch_id"],
                                ctx.case_id))


def _parse(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _date(text):
    from datetime import date

    return date.fromisoformat(text) if text else None


# --- the job ---------------------------------------------------------------------------------------------


def _find(wf, task_id):
    for workflow in (wf, *wf.subprocesses.values()):
        task = workflow.tasks.get(task_id)
        if task is not None:
            return task
    return None


class _Stale(Exception):
    """The send task is no longer waiting for this job (done by another worker, or the case moved on)."""


def reply_channel(metadata, data):
    """The reply channel ({"eMail": {...}} …) of a case: the submission's metadata, else the case data."""
    channel = (metadata or {}).get("replyChannel")
    if not channel:
        channel = ((data.get("antrag") or {}).get("reply_channel")
                   or (data.get("metadata") or {}).get("replyChannel")) if isinstance(data, dict) else None
    return channel if isinstance(channel, dict) and channel else None


def choose_channel(config, channel):
    """("email", None, address, pgp key) or ("post", reason, None, None) for a letter and a reply channel."""
    if not config.get("email_allowed"):
        return "post", "letter needs written form (email_allowed is false)", None, None
    if not channel:
        return "post", "the case has no replyChannel", None, None
    mail = channel.get("eMail")
    if isinstance(mail, dict) and mail.get("address"):
        return "email", None, mail["address"], mail.get("pgpPublicKey") or None
    kind = next(iter(channel))
    return "post", f"replyChannel {kind} is not served", None, None


def _load(rt, case_id, task_id):
    with rt.reader.connect() as conn:
        case = conn.execute(select(Case.__table__).where(Case.id == case_id)).mappings().first()
        if case is None:
            raise _Stale()
        if case["state"] == "suspended":  # engine.suspension: nothing is sent until the case is resumed
            raise CaseSuspended(f"case {case_id} is suspended: its letter waits until an admin resumes it")
        version = rt.version(conn, case["version_id"])
        wf = version.serializer.load(case["workflow"], version.spec, version.subprocess_specs)
        task = _find(wf, task_id)
        if task is None or task.state != STARTED or task.internal_data.get("letter_state") != "pending":
            raise _Stale()
        config = letter_of(task)
        if config is None:
            raise _Stale()
        files = letters.version_files(conn, config.get("version_id") or case["version_id"])
        metadata = None
        if case["submission_id"]:
            raw = conn.execute(select(Submission.metadata_json)
                               .where(Submission.submission_id == case["submission_id"])).scalar()
            metadata = json.loads(raw) if raw else None
    return dict(case), task, config, files, metadata


def render_for(rt, case, data, config, files):
    """(html, pdf) of the letter of ``config`` for ``case`` (a case row mapping) with ``data``."""
    tenant = rt.tenants.get(case["tenant"])
    ctx = letters.context(tenant, case, data, config["letter"], config.get("title"),
                          today=letters.today_in_berlin(rt.clock()))
    html = letters.render_html(files, config["letter"], ctx)
    return html, letters.render_pdf(html)


def _mail(rt, case, config, address, key, pdf):
    settings = mail_settings(rt, case["tenant"])
    tenant = rt.tenants.get(case["tenant"])
    head = tenant.settings.get("letterhead") or {}
    title = config.get("title") or config["letter"]
    body = (f"Guten Tag,\n\nim Anhang erhalten Sie unser Schreiben „{title}“ zu Ihrem Anliegen "
            f"(Aktenzeichen {case['aktenzeichen']}).\n\nMit freundlichen Grüßen\n"
            f"{head.get('authority') or tenant.name}\n")
    msg = build_message(settings["from_address"], address, f"{title} – Aktenzeichen {case['aktenzeichen']}", body,
                        [(f"{config['letter']}.pdf", "application/pdf", pdf)])
    if key:
        msg = encrypt(msg, key)
    return deliver(settings, msg)


def run_dispatch(rt, job):
    """Job handler: render and store the letter, send it or hand it to the Postversand, record it."""
    task_id = UUID(job.payload["task"])
    try:
        case, task, config, files, metadata = _load(rt, job.case_id, task_id)
    except _Stale:
        return
    html, pdf = render_for(rt, case, dict(task.data), config, files)
    pdf = seal_for(rt).seal(pdf, tenant=case["tenant"], case_id=case["id"], letter=config["letter"])
    sha256 = blob_store(rt).put(pdf)
    sha512 = hashlib.sha512(pdf).hexdigest()
    channel, reason, address, key = choose_channel(config, reply_channel(metadata, dict(task.data)))
    delivery = _mail(rt, case, config, address, key, pdf) if channel == "email" else None
    name, element = config["letter"], task.task_spec.bpmn_id

    def act(db, wf, trail, now):
        t = _find(wf, task_id)
        if t is None or t.state != STARTED or t.internal_data.get("letter_state") != "pending":
            raise _Stale()
        doc_id = db.one(INSERT_DOCUMENT, (case["id"], f"{name}.pdf", len(pdf), sha256, sha512, db.ts(now)))[0]
        entry = letter_entry(doc_id, channel, now, config.get("deemed_delivery")) if channel == "email" else None
        deemed = _date(entry["deemed_delivered_on"]) if entry else None
        dispatch_id = db.one(INSERT_DISPATCH, (case["id"], case["tenant"], case["process_id"], element, name, doc_id,
                                               channel, reason, db.ts(now), db.ts(now) if entry else None,
                                               deemed))[0]
        trail.add(SYSTEM, "letter_created", element, new={"letter": name, "document_id": doc_id, "sha256": sha256})
        info = {"document_id": doc_id, "dispatch_id": dispatch_id}
        if entry is not None:
            trail.add(SYSTEM, "letter_dispatched", element, new={
                "letter": name, "channel": "email", "document_id": doc_id, "encrypted": bool(key),
                "via": delivery["via"], "deemed_delivered_on": entry["deemed_delivered_on"]})
            _set_entry(t, name, entry)
            t._set_internal_data(letter_state="sent", letter_info=info)
            t.complete()
            return "email"
        t._set_internal_data(letter_state="post", letter_info=info, user_task=f"{element}_Postversand")
        trail.add(SYSTEM, "postversand_requested", element, new={"letter": name, "reason": reason,
                                                                 "document_id": doc_id})
        return "post"

    try:
        _step(rt, job.case_id, act)
    except _Stale:
        pass


def _step(rt, case_id, act):
    """``engine.cases.step_case`` with the step's transaction handed to ``act(db, wf, trail, now)``: the
    document and dispatch rows are written atomically with the case."""
    for _attempt in range(RETRIES):
        try:
            with Lean.transaction(rt.db) as db:
                return _step_in(rt, db, int(case_id), lambda wf, trail, now: act(db, wf, trail, now))
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"case {case_id} is changing too often at the moment; try again")


jobs.register(KIND, run_dispatch, max_attempts=MAX_ATTEMPTS, backoff_seconds=BACKOFF_SECONDS)


# --- reading: previews and the dispatch list --------------------------------------------------------------


def preview(rt, case_id, name, data=None, pdf=False):
    """The letter ``name`` of a case's model rendered from its current data (or ``data``): HTML text, or PDF
    bytes with ``pdf=True``. The caller checks that the person may see the case. Raises NotFound, LetterError."""
    from .cases import case_data

    with rt.reader.connect() as conn:
        case = conn.execute(select(Case.__table__).where(Case.id == int(case_id))).mappings().first()
        if case is None:
            raise NotFound(f"no case {case_id}")
        version = rt.version(conn, case["version_id"])
        files = letters.version_files(conn, case["version_id"])
        config = next((c for c in (version.meta.get("letters") or {}).values() if c["letter"] == name), None)
        if letters.template_path(name) not in files:
            for sub in version.subprocess_specs.values():  # a letter of a called model
                found = next((c for c in (getattr(sub, "ozgflow_letters", None) or {}).values()
                              if c["letter"] == name and c.get("version_id")), None)
                if found is not None:
                    config, files = found, letters.version_files(conn, found["version_id"])
                    break
    if data is None:
        wf = version.serializer.load(case["workflow"], version.spec, version.subprocess_specs)
        data = case_data(wf)
    config = config or {"letter": name, "title": name}
    html = letters.render_html(files, name, letters.context(rt.tenants.get(case["tenant"]), dict(case), data, name,
                                                            config.get("title"),
                                                            today=letters.today_in_berlin(rt.clock())))
    return letters.render_pdf(html) if pdf else html


def list_dispatches(rt, case_id=None, tenant=None, channel=None):
    """Rows of the dispatch table as dicts (newest first), filtered by case, tenant and channel."""
    q = select(Dispatch.__table__).order_by(Dispatch.id.desc())
    if case_id is not None:
        q = q.where(Dispatch.case_id == int(case_id))
    if tenant is not None:
        q = q.where(Dispatch.tenant == tenant)
    if channel is not None:
        q = q.where(Dispatch.channel == channel)
    with rt.reader.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def task_letter(rt, task):
    """What the page of ``task`` (a task row with ``version_id``, ``case_id``, ``element_id``) shows of a
    letter: {"name", "kind": "preview"} for a user task with ``preview_letter``, {"name", "kind": "post",
    "document_id"} for a Postversand task (the stored PDF to print), else None."""
    with rt.reader.connect() as conn:
        version = rt.version(conn, task["version_id"])
        meta = (version.meta.get("tasks") or {}).get(task["element_id"]) or {}
        name = meta.get("preview_letter")
        if not name:
            return None
        if not meta.get("postversand_of"):
            return {"name": name, "kind": "preview", "title": meta.get("title") or name}
        doc = conn.execute(select(Dispatch.document_id).where(Dispatch.case_id == int(task["case_id"]),
                                                              Dispatch.element_id == meta["postversand_of"],
                                                              Dispatch.channel == "post")
                           .order_by(Dispatch.id.desc()).limit(1)).scalar()
    return {"name": name, "kind": "post", "document_id": doc, "title": meta.get("title") or name}
