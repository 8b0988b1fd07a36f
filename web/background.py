"""Background work on the web: messages in, payment notifications, incidents, and ``/metrics``.

| endpoint                                   | who                                | answers                  |
|--------------------------------------------|------------------------------------|--------------------------|
| POST /api/v1/messages                      | bearer token                       | 202 delivered/kept, 404  |
| POST /api/v1/payments/<tenant>/notify      | the ePayment provider (HMAC)       | 202, 404, 401            |
| GET  /api/v1/incidents                     | token of a team lead or an admin   | open incidents           |
| POST /api/v1/incidents/<id>/retry, /cancel | token of a team lead or an admin   | the job after the change |
| GET  /api/v1/messages/dead                 | token of a team lead or an admin   | the dead-letter list     |
| GET  /metrics                              | anyone, or with ``METRICS_TOKEN``  | Prometheus text format   |

404 means: no case matches, the message is in the dead-letter list. Team leads see their tenant's incidents
and dead letters, admins all.

A message of a non-admin token reaches only cases of the token's tenant (``tenant`` is added to the
correlation). Payment notifications: the provider calls the notify URL with a JSON body
``{"kassenzeichen", "status", …}`` and the header ``X-Signature: <hex HMAC-SHA256 of the raw body>`` keyed with
the tenant's ``payment_notify_secret`` (tenant file; or the environment variable named by
``payment_notify_secret_env``). It becomes the message ``payment_message`` (default ``zahlung``) correlated by
the process variable ``kassenzeichen`` within that tenant, with the body as payload.
"""

import hashlib
import hmac
import json
import os
from functools import wraps

from flask import Blueprint, Response, current_app, g, jsonify, request

from engine.errors import NotFound, OzgflowError
from engine.jobs import (
    JobError,
    cancel_incident,
    get_job,
    job_stats,
    list_incidents,
    metrics_counts,
    retry_incident,
)
from engine.messages import MessageInvalid, deliver, list_messages

from .api import error, token_required

bp = Blueprint("background", __name__)
DEFAULT_PAYMENT_MESSAGE = "zahlung"


def rt():
    return current_app.extensions["ozgflow"]


def init_app(app):
    """Register the blueprint; its POSTs carry tokens or signatures, no cookies: no CSRF token."""
    from . import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)


def operators_only(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user.role not in ("teamlead", "admin"):
            return error(403, "only team leads and admins look after incidents and dead letters")
        return view(*args, **kwargs)

    return token_required(wrapped)


def _tenant_scope():
    return None if g.user.role == "admin" else g.user.tenant


# --- messages -------------------------------------------------------------------------------------------


def _answer(result):
    return jsonify(result), (404 if result["status"] == "dead" else 202)


@bp.post("/api/v1/messages")
@token_required
def post_message():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error(400, 'the body must be a JSON object {"name", "correlation", "payload"}')
    correlation = body.get("correlation")
    if isinstance(correlation, dict) and _tenant_scope() is not None:
        if correlation.get("tenant", g.user.tenant) != g.user.tenant:
            return error(403, "messages of this token reach only cases of its own tenant")
        correlation = {**correlation, "tenant": g.user.tenant}
    try:
        result = deliver(rt(), body.get("name"), correlation, body.get("payload"), actor=g.user.name,
                         ttl_seconds=body.get("ttl_seconds"))
    except (MessageInvalid, TypeError, ValueError) as exc:
        return error(400, str(exc))
    except OzgflowError as exc:
        return error(409, str(exc))
    return _answer(result)


@bp.get("/api/v1/messages/dead")
@operators_only
def dead_letters():
    return jsonify(items=list_messages(rt(), "dead", tenant=_tenant_scope()))


# --- payment notifications --------------------------------------------------------------------------------


def _payment_secret(tenant):
    settings = tenant.settings
    env = settings.get("payment_notify_secret_env")
    secret = os.environ.get(env) if env else settings.get("payment_notify_secret")
    return secret.encode("utf-8") if secret else None


@bp.post("/api/v1/payments/<tenant_id>/notify")
def payment_notify(tenant_id):
    try:
        tenant = rt().tenants.get(tenant_id)
    except NotFound:
        return error(404, f"no tenant {tenant_id}")
    secret = _payment_secret(tenant)
    raw = request.get_data(cache=False)
    given = request.headers.get("X-Signature", "").strip().lower()
    expected = hmac.new(secret, raw, hashlib.sha256).hexdigest() if secret else None
    if expected is None or not hmac.compare_digest(given, expected):
        return error(401, "the notification is not signed with this tenant's payment secret")
    try:
        body = json.loads(raw)
    except ValueError:
        return error(400, "the body is not JSON")
    if not isinstance(body, dict) or not body.get("kassenzeichen") or not body.get("status"):
        return error(400, "a payment notification names 'kassenzeichen' and 'status'")
    name = tenant.settings.get("payment_message") or DEFAULT_PAYMENT_MESSAGE
    result = deliver(rt(), name, {"kassenzeichen": body["kassenzeichen"], "tenant": tenant.id}, body,
                     actor="epayment")
    return _answer(result)


# --- incidents ------------------------------------------------------------------------------------------------


@bp.get("/api/v1/incidents")
@operators_only
def incidents():
    return jsonify(items=list_incidents(rt(), tenant=_tenant_scope()))


def _incident_action(action, job_id):
    try:
        job = get_job(rt(), job_id)
        scope = _tenant_scope()
        if scope is not None and job["tenant"] != scope:
            raise NotFound(f"no job {job_id}")
        return jsonify(action(rt(), job_id, g.user.name))
    except NotFound as exc:
        return error(404, str(exc))
    except JobError as exc:
        return error(409, str(exc))


@bp.post("/api/v1/incidents/<int:job_id>/retry")
@operators_only
def incident_retry(job_id):
    return _incident_action(retry_incident, job_id)


@bp.post("/api/v1/incidents/<int:job_id>/cancel")
@operators_only
def incident_cancel(job_id):
    return _incident_action(cancel_incident, job_id)


# --- metrics ----------------------------------------------------------------------------------------------------


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return error(401, "the metrics need the METRICS_TOKEN as bearer token")
    return Response(prometheus_text(job_stats(rt()), metrics_counts(rt())), mimetype="text/plain; version=0.0.4")


def prometheus_text(jobs, other):
    """The metrics in the Prometheus text exposition format."""
    lines = []

    def metric(name, kind, help_text, samples):
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    by_state = jobs["by_state"]
    for state, help_text in (("due", "jobs due now and not yet claimed"), ("running", "jobs claimed by a worker"),
                             ("waiting", "jobs scheduled for later"), ("incident", "jobs that failed their last try")):
        samples = [({"kind": k}, n) for k, n in sorted(by_state.get(state, {}).items())] or [({}, 0)]
        metric(f"ozgflow_jobs_{state}", "gauge", help_text, samples)
    metric("ozgflow_jobs_failed", "gauge", "jobs whose last try failed and that will be retried",
           [({"kind": k}, n) for k, n in sorted(other["jobs_failed"].items())] or [({}, 0)])
    metric("ozgflow_timer_lateness_seconds", "gauge", "how long the oldest due timer has been waiting to fire",
           [({}, round(jobs["timer_lateness_seconds"], 3))])
    metric("ozgflow_incidents_open", "gauge", "open incidents",
           [({}, sum(by_state.get("incident", {}).values()))])
    metric("ozgflow_cases", "gauge", "cases by state", [({"state": s}, n) for s, n in sorted(other["cases"].items())])
    metric("ozgflow_messages", "gauge", "kept and dead-lettered messages",
           [({"state": s}, n) for s, n in sorted(other["messages"].items())])
    metric("ozgflow_submissions", "gauge", "mailbox submissions by state (accepted: picked up, rejected)",
           [({"state": s}, n) for s, n in sorted(other["submissions"].items())])
    return "\n".join(lines) + "\n"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
