"""The inbox (the landing page after login) and the claim / release / assign actions on tasks."""

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from engine.errors import NotFound, OzgflowError
from engine.inbox import (
    SCOPES,
    Forbidden,
    InboxFilter,
    assign,
    claim,
    filter_options,
    list_inbox,
    task_uuid_ok,
    unclaim,
)
from engine.users import users_of_tenant

from .auth import login_required

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
                       aktenzeichen=(args.get("q") or "").strip() or None, tenant=args.get("tenant") or None,
                       page=page, per_page=per_page)


@bp.get("/posteingang")
@login_required
def index():
    f = inbox_filter(request.args, int(current_app.config["INBOX_PAGE_SIZE"]))
    result = list_inbox(rt(), g.user, f)
    assignees = users_of_tenant(rt(), g.user.tenant) if g.user.is_teamlead else []
    return render_template("inbox.html", result=result, f=f, options=filter_options(rt()),
                           scopes=SCOPE_LABELS, assignees=assignees, args=request.args)


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
