"""The task page: the task's form rendered from its JSON Schema, "Entwurf speichern" and "Abschließen"."""

from io import BytesIO

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for

from engine.dispatch import preview, task_letter
from engine.documents import log_read
from engine.errors import AlreadyCompleted, CaseError, ConcurrentUpdate, FormInvalid, NotFound
from engine.inbox import (
    SUSPENDED_MESSAGE,
    Forbidden,
    Taken,
    complete,
    four_eyes_conflict,
    get_task,
    load_draft,
    may_work,
    save_draft,
    task_form,
    task_uuid_ok,
    view_case,
)
from engine.letters import LetterError

from .auth import login_required
from .forms import errors_of, fields_of, labels_of, typed_data, values_from

bp = Blueprint("tasks", __name__)


def rt():
    return current_app.extensions["ozgflow"]


def _load(task_id):
    if not task_uuid_ok(task_id):
        abort(404)
    try:
        task = get_task(rt(), g.user, task_id)
    except NotFound:
        abort(404)
    return task, task_form(rt(), task) or {"type": "object", "properties": {}}


def _render(task, schema, values, errors=None, message=None, status=200, draft_at=None, conflict=False):
    case = view_case(rt(), g.user, task["case_id"])
    log_read(rt(), g.user, task["case_id"], "task")  # the page shows the application data
    fields = fields_of(schema)
    blocked = four_eyes_conflict(rt(), g.user, task) if task["state"] == "open" else None
    return render_template("task.html", task=task, case=case, fields=fields, labels=labels_of(fields), values=values,
                           errors=errors or {}, message=message, may_work=may_work(g.user, task) and not blocked,
                           four_eyes=blocked, draft_at=draft_at, conflict=conflict, letter=_letter(task)), status


def _letter(task):
    """The letter the task page shows: the preview of a ``preview_letter`` task, the stored PDF of a Postversand."""
    found = task_letter(rt(), task)
    if found is None:
        return None
    if found["kind"] == "post":
        found["url"] = url_for("cases.document", case_id=task["case_id"], document_id=found["document_id"]) \
            if found["document_id"] else None
    else:
        found["url"] = url_for("tasks.letter_preview", task_id=task["id"])
    return found


@bp.get("/aufgaben/<task_id>/brief")
@login_required
def letter_preview(task_id):
    """The task's letter rendered from the case's current data as PDF, served like a document (sandboxed)."""
    from .cases import DOCUMENT_CSP

    task, _schema = _load(task_id)
    found = task_letter(rt(), task)
    if found is None or found["kind"] != "preview":
        abort(404)
    try:
        pdf = preview(rt(), task["case_id"], found["name"], pdf=True)
    except LetterError as exc:
        abort(422, f"Der Brief kann nicht erzeugt werden: {exc}")
    log_read(rt(), g.user, task["case_id"], "task")
    response = send_file(BytesIO(pdf), mimetype="application/pdf", download_name=f"{found['name']}-vorschau.pdf",
                         as_attachment=request.args.get("download") == "1", etag=False, max_age=0, conditional=False)
    response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/aufgaben/<task_id>")
@login_required
def show(task_id):
    task, schema = _load(task_id)
    values, saved_at = load_draft(rt(), g.user, task_id)
    if values is None:
        values = {f.name: _default(f, schema) for f in fields_of(schema)}
    return _render(task, schema, values, draft_at=saved_at)


def _default(field, schema):
    default = schema.get("properties", {}).get(field.name, {}).get("default")
    if default is None:
        return ""
    return {True: "true", False: "false"}.get(default, str(default)) if isinstance(default, bool) else str(default)


@bp.post("/aufgaben/<task_id>")
@login_required
def submit(task_id):
    task, schema = _load(task_id)
    values = values_from(schema, request.form)
    if request.form.get("action") == "draft":
        try:
            save_draft(rt(), g.user, task_id, values)
        except Taken as exc:
            return _render(task, schema, values, message=str(exc), status=409)
        flash("Entwurf gespeichert. Die Aufgabe ist noch nicht abgeschlossen.", "ok")
        return redirect(url_for("tasks.show", task_id=task_id))
    if task["case_state"] == "suspended" and task["state"] == "open":  # engine.suspension: before the form
        return _render(task, schema, values, message=SUSPENDED_MESSAGE + " Ihre Eingaben sind unten noch zu sehen.",
                       status=409)
    data = typed_data(schema, values)
    errors = errors_of(schema, data)
    if errors:
        return _render(task, schema, values, errors, "Bitte korrigieren Sie die markierten Angaben.", 422)
    try:
        result = complete(rt(), g.user, task_id, data)
    except FormInvalid as exc:
        return _render(task, schema, values, exc.errors, "Bitte korrigieren Sie die markierten Angaben.", 422)
    except (AlreadyCompleted, Taken) as exc:
        fresh = get_task(rt(), g.user, task_id)
        message = str(exc) if isinstance(exc, Taken) else _closed(fresh)
        return _render(fresh, schema, values, message=message + " Ihre Eingaben sind unten noch zu sehen.",
                       status=409, conflict=True)
    except Forbidden as exc:
        return _render(task, schema, values, message=str(exc), status=403)
    except ConcurrentUpdate:
        return _render(task, schema, values, message="Der Vorgang wird gerade an anderer Stelle geändert. Bitte "
                       "versuchen Sie es gleich noch einmal; Ihre Eingaben sind unten noch zu sehen.", status=409)
    except CaseError as exc:
        return _render(task, schema, values, message=f"Der Vorgang konnte nicht fortgesetzt werden: {exc}",
                       status=409)
    flash(f"Aufgabe „{task['title']}“ abgeschlossen ({task['aktenzeichen']}).", "ok")
    if result["state"] == "error":
        flash("Der Vorgang ist danach auf einen Fehler gelaufen.", "error")
    return redirect(url_for("inbox.index"))


def _closed(task):
    if task["state"] == "completed":
        by = f" von {task['completed_by']}" if task["completed_by"] else ""
        return f"Die Aufgabe wurde inzwischen{by} abgeschlossen."
    return "Die Aufgabe ist nicht mehr offen: der Vorgang ist ohne sie weitergegangen."
