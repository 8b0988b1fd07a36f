"""Messages from outside (a document arrived, a payment was booked …) to the case that waits for them.

``deliver(rt, name, correlation, payload)`` finds the case by its correlation — any of ``case_id``,
``fitconnect_case_id`` (the FIT-Connect caseId of the submission that started it), ``aktenzeichen``, and any
other key as a process variable of a waiting case (``{"kassenzeichen": "…"}``); ``tenant`` narrows the search.
All keys given must match, and they must name exactly one case. Then:

* the case waits for a message of that name → it is delivered in one step of the case (``step_case``),
  history ``message_delivered`` with the element id of the catching event: ``"delivered"``;
* the case exists but does not wait for it (yet) → the message is *kept* (table ``message``) until the case
  does — a step hook hands it over through a ``deliver_message`` job — or until its time to live ends
  (default ``DEFAULT_TTL_SECONDS``, per message ``ttl_seconds``): ``"kept"``;
* no case (or more than one) matches → the message goes to the dead-letter list for an operator: ``"dead"``.
  Kept messages whose time ran out join it (periodic job ``messages_expire``).

The event is built with the waiting task's own event-definition class, so a Spiff model (payload into its
``messageVariable``) and a Camunda model (payload into ``<task>_Response``) both catch it.
"""

import json
import os
from datetime import timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition as CamundaMessage

from . import jobs
from .cases import SYSTEM, case_data, step_case
from .errors import CaseClosed, CaseSuspended, NotFound, OzgflowError
from .lean import Lean

DEFAULT_TTL_SECONDS = 7 * 24 * 3600.0
SUBMITTED = "c.id IN (SELECT case_id FROM submission WHERE fitconnect_case_id = ?)"
DIRECT_KEYS = ("case_id", "fitconnect_case_id", "aktenzeichen", "tenant")


class MessageInvalid(OzgflowError):
    """A message without a name, or with a correlation or payload that is not a JSON object."""


class _NotWaiting(Exception):
    pass


def default_ttl():
    """The time to live of kept messages: ``OZGFLOW_MESSAGE_TTL_SECONDS`` or 7 days."""
    return float(os.environ.get("OZGFLOW_MESSAGE_TTL_SECONDS") or DEFAULT_TTL_SECONDS)


def deliver(rt, name, correlation, payload=None, actor=SYSTEM, ttl_seconds=None):
    """Deliver, keep or dead-letter one message (see the module doc). Returns ``{"status": "delivered" |
    "kept" | "dead", "case_id", "message_id", "reason"}`` (``message_id`` for kept and dead messages)."""
    if not isinstance(name, str) or not name.strip():
        raise MessageInvalid("a message needs a 'name'")
    if not isinstance(correlation, dict) or not correlation:
        raise MessageInvalid("'correlation' must be an object with at least one key (e.g. case_id)")
    if payload is not None and not isinstance(payload, dict):
        raise MessageInvalid("'payload' must be an object")
    payload = json.loads(json.dumps(payload or {}))
    cases = find_cases(rt, correlation)
    if len(cases) != 1:
        reason = "no case matches the correlation" if not cases else f"the correlation matches {len(cases)} cases"
        return _store(rt, name, correlation, payload, "dead", None, None, reason)
    case_id = cases[0]
    try:
        step_case(rt, case_id, _delivery(name, correlation, payload, actor))
    except (_NotWaiting, CaseSuspended):  # a suspended case gets it when it is resumed (engine.suspension)
        ttl = default_ttl() if ttl_seconds is None else float(ttl_seconds)
        return _store(rt, name, correlation, payload, "kept", case_id, ttl, None)
    return {"status": "delivered", "case_id": case_id, "message_id": None, "reason": None}


def message_definitions(task):
    """The message definitions a waiting task catches: its own, or those of an event-based gateway."""
    definition = task.task_spec.event_definition
    found = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    return [d for d in found if isinstance(d, MessageEventDefinition)]


def waiting_for(wf, name):
    """The tasks of a case that wait for a message called ``name``."""
    return [t for t in wf.event_manager.tasks.values() if any(d.name == name for d in message_definitions(t))]


def event_subprocess_starts(wf, name):
    """Message start events of the case's event subprocesses that catch ``name`` (no task waits for them:
    SpiffWorkflow starts the event subprocess when the message arrives)."""
    found = []
    for spec_name in getattr(wf.spec.start, "trigger_specs", None) or []:
        sp_spec = wf.subprocess_specs.get(spec_name)
        for ts in sp_spec.bpmn_start_events if sp_spec is not None else []:
            if isinstance(ts.event_definition, MessageEventDefinition) and ts.event_definition.name == name:
                found.append(ts)
    return found


def _delivery(name, correlation, payload, actor):
    def act(wf, trail, now):
        tasks = waiting_for(wf, name)
        if tasks:
            definition = next(d for d in message_definitions(tasks[0]) if d.name == name)
            element = tasks[0].task_spec.bpmn_id
        else:
            starts = event_subprocess_starts(wf, name)
            if not starts:
                raise _NotWaiting()
            definition, element = starts[0].event_definition, starts[0].bpmn_id
        body = {"payload": payload, "result_var": None} if isinstance(definition, CamundaMessage) else payload
        # Correlated by us already: the case's own correlations let a definition with properties match.
        wf.send_event(BpmnEvent(definition.__class__(name), body, dict(wf.correlations)))
        trail.add(actor, "message_delivered", element, new={"name": name, "correlation": correlation})
        return "delivered"

    return act


def _store(rt, name, correlation, payload, state, case_id, ttl, reason):
    now = rt.clock()
    tenant = correlation.get("tenant")
    with Lean.transaction(rt.db) as db:
        expires = db.ts(now + timedelta(seconds=ttl)) if ttl is not None else None
        settled = db.ts(now) if state == "dead" else None
        if db.pg:
            row = db.one("INSERT INTO message (name, correlation, payload, state, case_id, tenant, received_at, "
                         "expires_at, settled_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                         (name, json.dumps(correlation), json.dumps(payload), state, case_id, tenant, db.ts(now),
                          expires, settled, reason))
            message_id = row[0]
        else:
            db.run("INSERT INTO message (name, correlation, payload, state, case_id, tenant, received_at, expires_at, "
                   "settled_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (name, json.dumps(correlation), json.dumps(payload), state, case_id, tenant, db.ts(now), expires,
                    settled, reason))
            message_id = db.cur.lastrowid
    return {"status": state, "case_id": case_id, "message_id": message_id, "reason": reason}


# --- correlation -------------------------------------------------------------------------------------------


def find_cases(rt, correlation):
    """Ids of the cases that match every key of ``correlation`` (see the module doc)."""
    where, params = ["c.state NOT IN ('completed', 'terminated')"], []
    if "case_id" in correlation:
        try:
            params.append(int(correlation["case_id"]))
        except (TypeError, ValueError):
            return []
        where.append("c.id = ?")
    for key, clause in (("aktenzeichen", "c.aktenzeichen = ?"), ("tenant", "c.tenant = ?"),
                        ("fitconnect_case_id", SUBMITTED)):
        if key in correlation:
            where.append(clause)
            params.append(str(correlation[key]))
    variables = {k: v for k, v in correlation.items() if k not in DIRECT_KEYS}
    with Lean.transaction(rt.db, readonly=True) as db:
        sql = 'SELECT c.id, c.version_id FROM "case" c WHERE ' + " AND ".join(where) + " ORDER BY c.id"
        rows = db.all(sql, params)
        if not variables:
            return [r[0] for r in rows]
        # The slow path: variables live in each candidate's stored state. Narrow it with ``tenant`` or a
        # direct key where the sender knows one.
        matches = []
        for case_id, version_id in rows:
            version = rt.version(db, version_id)
            blob = db.one('SELECT workflow FROM "case" WHERE id = ?', (case_id,))[0]
            data = case_data(version.serializer.load(bytes(blob), version.spec, version.subprocess_specs))
            if all(data.get(k) == v for k, v in variables.items()):
                matches.append(case_id)
        return matches


# --- kept messages: handed over when the case waits, expired after their time ------------------------------


def hand_over_kept(db, ctx):
    """Step hook: when the case now waits for a message that was kept for it, schedule its delivery."""
    if not ctx.scan.waiting:
        return
    names = {d.name for t in ctx.workflow.event_manager.tasks.values() for d in message_definitions(t)}
    if not names:
        return
    current = jobs.CURRENT.get()
    marks = ", ".join("?" * len(names))
    for message_id, name in db.all(f"SELECT id, name FROM message WHERE state = 'kept' AND case_id = ? "
                                   f"AND name IN ({marks}) ORDER BY id", (ctx.case_id, *sorted(names))):
        if current is not None and current.kind == "deliver_message" and current.payload["message_id"] == message_id:
            continue
        jobs.schedule(db, "deliver_message", ctx.now, ctx.now, case_id=ctx.case_id, tenant=ctx.tenant,
                      payload={"message_id": message_id, "name": name}, key=f"message:{message_id}")


def settle_in_step(db, ctx):
    """Step hook: a ``deliver_message`` job's step marks its message delivered in the same transaction."""
    job = jobs.CURRENT.get()
    if job is not None and job.kind == "deliver_message" and job.case_id == ctx.case_id:
        db.run("UPDATE message SET state = 'delivered', settled_at = ? WHERE id = ? AND state = 'kept'",
               (db.ts(ctx.now), job.payload["message_id"]))


def deliver_kept(rt, job):
    """Job handler: deliver a kept message to its case (which now waits for it)."""
    with Lean.transaction(rt.db, readonly=True) as db:
        row = db.one("SELECT name, correlation, payload, state FROM message WHERE id = ?", (job.payload["message_id"],))
    if row is None or row[3] != "kept":
        return
    name, correlation, payload, _ = row
    try:
        step_case(rt, job.case_id, _delivery(name, json.loads(correlation), json.loads(payload), SYSTEM))
    except (_NotWaiting, CaseSuspended):
        pass  # it stopped waiting again meanwhile: the message stays kept for the next time
    except CaseClosed:  # terminated meanwhile (engine.suspension): the message goes to an operator
        with Lean.transaction(rt.db) as db:
            db.run("UPDATE message SET state = 'dead', settled_at = ?, reason = 'the case was terminated' "
                   "WHERE id = ? AND state = 'kept'", (db.ts(rt.clock()), job.payload["message_id"]))


def expire(rt, job):
    """Periodic job: kept messages past their time to live join the dead-letter list."""
    now = rt.clock()
    with Lean.transaction(rt.db) as db:
        db.run("UPDATE message SET state = 'dead', settled_at = ?, reason = 'kept until its time to live ended; "
               "the case never waited for it' WHERE state = 'kept' AND expires_at <= ? "
               # a suspended case keeps its messages until it is resumed (engine.suspension)
               "AND (case_id IS NULL OR case_id NOT IN (SELECT id FROM \"case\" WHERE state = 'suspended'))",
               (db.ts(now), db.ts(now)))


def list_messages(rt, state="dead", tenant=None):
    """Kept or dead-lettered messages, oldest first."""
    sql = ("SELECT id, name, correlation, payload, state, case_id, tenant, received_at, expires_at, reason "
           "FROM message WHERE state = ?")
    params = [state]
    if tenant is not None:
        sql += ' AND (tenant = ? OR case_id IN (SELECT id FROM "case" WHERE tenant = ?))'
        params += [tenant, tenant]
    with Lean.transaction(rt.db, readonly=True) as db:
        rows = db.all(sql + " ORDER BY id", params)
        return [{"id": r[0], "name": r[1], "correlation": json.loads(r[2]), "payload": json.loads(r[3]),
                 "state": r[4], "case_id": r[5], "tenant": r[6], "received_at": db.read_ts(r[7]).isoformat(),
                 "expires_at": db.read_ts(r[8]).isoformat() if r[8] is not None else None, "reason": r[9]}
                for r in rows]


def get_message(rt, message_id):
    for state in ("kept", "dead", "delivered"):
        for m in list_messages(rt, state):
            if m["id"] == int(message_id):
                return m
    raise NotFound(f"no message {message_id}")


jobs.register("deliver_message", deliver_kept)
jobs.register("messages_expire", expire, every_seconds=60.0)
