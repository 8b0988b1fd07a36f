"""The JSON API under /api/v1, authenticated by ``Authorization: Bearer <token>`` (``ozgflow users token``).

Shapes mirror the CLI's ``--json`` output: ``task list`` items, ``task complete``, ``case show``. Answers
are JSON: 400/422 with field errors, 401 without a valid token, 403, 404 for anything of another tenant,
409 for a task that is already completed or taken.
"""

from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from engine.documents import DocumentDamaged, log_read
from engine.errors import AlreadyCompleted, CaseError, ConcurrentUpdate, FormInvalid, NotFound, OzgflowError
from engine.inbox import (
    SUSPENDED_MESSAGE,
    Forbidden,
    Taken,
    claim,
    closed_message,
    complete,
    get_task,
    list_inbox,
    task_form,
    task_uuid_ok,
    unclaim,
    view_case,
)
from engine.users import token_person

from .cases import document_response
from .forms import errors_of
from .inbox import inbox_filter
from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
TASK_KEYS = ("id", "case_id", "element_id", "title", "groups", "assignee", "due", "follow_up")
MAX_PAGE = 500


def rt():
    return current_app.extensions["ozgflow"]


def error(status, message, **extra):
    response = jsonify({"error": message, **extra})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ozgflow"'
    return response


def token_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        g.user = token_person(rt(), token.strip()) if scheme.lower() == "bearer" else None
        if g.user is None:
            return error(401, "a valid bearer token is required (see 'ozgflow users token')")
        return view(*args, **kwargs)

    return wrapped


@bp.errorhandler(HTTPException)
def _http_error(exc):
    return error(exc.code or 500, exc.description or exc.name)


CONCURRENT = "Der Vorgang wird gerade an anderer Stelle geändert. Bitte versuchen Sie es gleich noch einmal."
FORM_INVALID = "Die Angaben passen nicht zum Formular der Aufgabe."


def _engine_error(exc, task_id=None):
    """The JSON answer to an engine error, in German where the engine speaks English (engine.cases)."""
    if isinstance(exc, NotFound):
        return error(404, str(exc))
    if isinstance(exc, Forbidden):
        return error(403, str(exc))
    if isinstance(exc, AlreadyCompleted) and task_id is not None:
        # engine.cases reports a lost race in English; say it the way the inbox does
        return error(409, closed_message(get_task(rt(), g.user, task_id)))
    if isinstance(exc, ConcurrentUpdate):
        return error(409, CONCURRENT)
    if isinstance(exc, AlreadyCompleted | Taken):
        return error(409, str(exc))
    if isinstance(exc, FormInvalid):
        return error(422, FORM_INVALID, fields=exc.errors)
    if isinstance(exc, CaseError):
        return error(409, str(exc))
    return error(400, str(exc))


def _shape(task):
    return {k: task[k] for k in TASK_KEYS}


@bp.get("/tasks")
@token_required
def tasks():
    try:
        per_page = min(MAX_PAGE, max(1, int(request.args.get("per_page", 100))))
    except ValueError:
        return error(400, "per_page must be a number")
    result = list_inbox(rt(), g.user, inbox_filter(request.args, per_page))
    return jsonify(items=[_shape(t) for t in result["items"]], total=result["total"])


def _task_action(action, task_id):
    if not task_uuid_ok(task_id):
        return error(404, f"no task {task_id}")
    try:
        action(rt(), g.user, task_id)
        return jsonify(_shape(get_task(rt(), g.user, task_id)))
    except OzgflowError as exc:
        return _engine_error(exc)


@bp.post("/tasks/<task_id>/claim")
@token_required
def claim_task(task_id):
    return _task_action(claim, task_id)


@bp.post("/tasks/<task_id>/unclaim")
@token_required
def unclaim_task(task_id):
    return _task_action(unclaim, task_id)


@bp.post("/tasks/<task_id>/complete")
@token_required
def complete_task(task_id):
    if not task_uuid_ok(task_id):
        return error(404, f"no task {task_id}")
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object with the form data")
    try:
        task = get_task(rt(), g.user, task_id)
        if task["case_state"] == "suspended" and task["state"] == "open":  # engine.suspension: before the form
            return error(409, SUSPENDED_MESSAGE)
        fields = errors_of(task_form(rt(), task) or {}, data)  # German messages per field, before the engine
        if fields:
            return error(422, FORM_INVALID, fields=fields)
        result = complete(rt(), g.user, task_id, data)
    except OzgflowError as exc:
        return _engine_error(exc, task_id)
    return jsonify({"task_id": task_id, **result})


@bp.get("/cases/<int:case_id>")
@token_required
def case(case_id):
    try:
        c = view_case(rt(), g.user, case_id)
    except OzgflowError as exc:
        return _engine_error(exc)
    c.pop("version_id", None)
    c.pop("applicant", None)  # the shape of `ozgflow case show --json`
    log_read(rt(), g.user, case_id, "case", "api")
    return jsonify(c)


@bp.get("/cases/<int:case_id>/documents/<int:document_id>")
@token_required
def document(case_id, document_id):
    try:
        return document_response(g.user, case_id, document_id, "api", download=request.args.get("download") == "1")
    except DocumentDamaged:
        return error(410, "Der Inhalt dieses Dokuments fehlt oder ist beschädigt.")
    except OzgflowError as exc:
        return _engine_error(exc)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API (readable without a token)."""
    return jsonify(openapi_document(current_app))
