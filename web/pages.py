"""The public start page (cities and models, no case data), the admins' overview and the health check."""

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, url_for
from sqlalchemy import text

from engine.cases import list_cases
from engine.deploy import list_versions

from .auth import role_required

bp = Blueprint("pages", __name__)


def rt():
    return current_app.extensions["ozgflow"]


@bp.get("/")
def index():
    """Logged in: the inbox. Otherwise what anyone may know: the cities, the models, the way to log in."""
    if g.user is not None:
        return redirect(url_for("inbox.index"))
    runtime = rt()
    return render_template("start.html", tenants=runtime.tenants.tenants.values(), versions=list_versions(runtime))


@bp.get("/uebersicht")
@role_required("admin")
def overview():
    runtime = rt()
    return render_template("overview.html", tenants=runtime.tenants.tenants.values(),
                           versions=list_versions(runtime), cases=list_cases(runtime, limit=20))


@bp.get("/health")
def health():
    try:
        with rt().reader.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # the health check reports, it does not crash
        return jsonify(status="error", database="unreachable", detail=exc.__class__.__name__), 503
    return jsonify(status="ok", database="ok", schema=revision)
