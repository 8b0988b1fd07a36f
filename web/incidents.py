"""Incidents for people: background jobs that failed their last try, with their error, to retry or cancel.

Team leads see their tenant's incidents, admins all of them (the same rules as the incidents API in
``web.background``). Retry and cancel are forms (CSRF-protected) and are written to the case's history.
"""

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for

from engine.errors import NotFound
from engine.jobs import JobError, cancel_incident, get_job, list_incidents, retry_incident

from .auth import role_required

bp = Blueprint("incidents", __name__, url_prefix="/stoerungen")


def rt():
    return current_app.extensions["ozgflow"]


def _scope():
    return None if g.user.role == "admin" else g.user.tenant


@bp.get("/")
@role_required("teamlead", "admin")
def index():
    return render_template("incidents.html", incidents=list_incidents(rt(), tenant=_scope()))


@bp.post("/<int:job_id>/<any(retry, cancel):action>")
@role_required("teamlead", "admin")
def settle(job_id, action):
    try:
        job = get_job(rt(), job_id)
    except NotFound:
        abort(404)
    if _scope() is not None and job["tenant"] != _scope():
        abort(404)  # another tenant's job does not exist for this user
    try:
        (retry_incident if action == "retry" else cancel_incident)(rt(), job_id, g.user.name)
        flash(f"Störung {job_id} wird erneut versucht." if action == "retry" else f"Störung {job_id} abgebrochen.",
              "success")
    except JobError as exc:
        flash(f"Störung {job_id}: {exc}", "error")
    return redirect(url_for("incidents.index"))
