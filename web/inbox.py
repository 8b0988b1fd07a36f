"""The inbox (the landing page after login), the claim / release / assign actions on tasks, saved filters,
and absences with a deputy (Vertretung)."""

from datetime import datetime, time, timedelta

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from engine.deputies import AbsenceError, add_absence, list_absences, remove_absence
from engine.errors import NotFound, OzgflowError
from engine.inbox import (
    SCOPES,
    Forbidden,
    InboxFilter,
    assign,
    claim,
    delete_filter,
    filter_options,
    list_inbox,
    save_filter,
    saved_filters,
    task_uuid_ok,
    unclaim,
)
from engine.users import users_of_tenant

from .auth import BERLIN, login_required

bp = Blueprint("inbox", __name__)

SCOPE_LABELS = {"all": "Alle sichtbaren", "mine": "Mir zugewiesen", "groups": "Meine Gruppen",
                "unassigned": "Nicht zugewiesen"}


def rt():
    return current_app.extensions["ozgflow"]


def inbox_filter(args, per_page):
    """The inbox filter from query parameters (the same for the page and the JSON API)."""
    try:
        page = max(1, int(args.get("page", 1)))
    except ValueError:
        page = 1
    scope = args.get("scope", "all")
    return InboxFilter(scope=scope if scope in SCOPES else "all", process=args.get("process") or None,
                       element=args.get("task") or None, overdue=args.get("overdue") in ("1", "true", "on"),
                       query=(args.get("q") or "").strip()[:200] or None, tenant=args.get("tenant") or None,
                       page=page, per_page=per_page)


@bp.get("/posteingang")
@login_required
def index():
    f = inbox_filter(request.args, int(current_app.config["INBOX_PAGE_SIZE"]))
    result = list_inbox(rt(), g.user, f)
    assignees = users_of_tenant(rt(), g.user.tenant) if g.user.is_teamlead else []
    return render_template("inbox.html", result=result, f=f, options=filter_options(rt()),
                           scopes=SCOPE_LABELS, assignees=assignees, args=request.args,
                           saved=saved_filters(rt(), g.user))


@bp.post("/posteingang/filter")
@login_required
def save_current_filter():
    """Save the filter the inbox shows (its query parameters, posted along) under a name."""
    try:
        save_filter(rt(), g.user, request.form.get("name"), request.form)
    except OzgflowError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Filter „{request.form.get('name', '').strip()}“ gespeichert.", "ok")
    return _back()


@bp.post("/posteingang/filter/<int:filter_id>/loeschen")
@login_required
def delete_saved_filter(filter_id):
    try:
        delete_filter(rt(), g.user, filter_id)
    except NotFound:
        abort(404)
    flash("Filter gelöscht.", "ok")
    return redirect(url_for("inbox.index"))


def _back():
    target = request.form.get("back") or ""
    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("inbox.index"))


def _act(action, task_id, done_message):
    if not task_uuid_ok(task_id):
        abort(404)
    try:
        action(rt(), g.user, task_id)
    except NotFound:
        abort(404)
    except (Forbidden, OzgflowError) as exc:
        flash(str(exc), "error")
    else:
        flash(done_message, "ok")
    return _back()


@bp.post("/aufgaben/<task_id>/uebernehmen")
@login_required
def claim_task(task_id):
    return _act(claim, task_id, "Aufgabe übernommen.")


@bp.post("/aufgaben/<task_id>/freigeben")
@login_required
def unclaim_task(task_id):
    return _act(unclaim, task_id, "Aufgabe freigegeben.")


@bp.post("/aufgaben/zuweisen")
@login_required
def assign_tasks():
    if not g.user.is_teamlead:
        abort(403)
    task_ids = [t for t in request.form.getlist("task_ids") if task_uuid_ok(t)]
    assignee = request.form.get("assignee") or None
    if not task_ids:
        flash("Bitte wählen Sie mindestens eine Aufgabe aus.", "error")
        return _back()
    try:
        changed = assign(rt(), g.user, task_ids, assignee)
    except NotFound:
        abort(404)
    except OzgflowError as exc:
        flash(str(exc), "error")
    else:
        who = f"an {assignee}" if assignee else "an die Gruppen zurück"
        flash(f"{changed} Aufgabe(n) {who} zugewiesen." if assignee else f"{changed} Aufgabe(n) {who} gegeben.",
              "ok")
    return _back()


# --- Vertretung ---------------------------------------------------------------------------------------


def _day(text, end=False):
    """A date field (YYYY-MM-DD) as the start of that day in Berlin (``end``: the start of the next day)."""
    try:
        day = datetime.strptime((text or "").strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(0, 0), tzinfo=BERLIN)


@bp.get("/abwesenheit")
@login_required
def absences():
    people = [n for n in users_of_tenant(rt(), g.user.tenant) if n != g.user.name or g.user.is_teamlead]
    return render_template("absences.html", absences=list_absences(rt(), g.user), people=people,
                           form=request.args)


@bp.post("/abwesenheit")
@login_required
def add_absence_of():
    form = request.form
    starts, ends = _day(form.get("von")), _day(form.get("bis"), end=True)
    try:
        if starts is None or ends is None:
            raise AbsenceError("Bitte geben Sie Beginn und Ende als Datum an.")
        add_absence(rt(), g.user, form.get("vertretung", ""), starts, ends, absent=form.get("abwesend") or None)
    except AbsenceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inbox.absences", **{k: form.get(k, "") for k in ("von", "bis", "vertretung")}))
    flash("Abwesenheit eingetragen.", "ok")
    return redirect(url_for("inbox.absences"))


@bp.post("/abwesenheit/<int:absence_id>/loeschen")
@login_required
def remove_absence_of(absence_id):
    try:
        remove_absence(rt(), g.user, absence_id)
    except NotFound:
        abort(404)
    flash("Abwesenheit beendet.", "ok")
    return redirect(url_for("inbox.absences"))
