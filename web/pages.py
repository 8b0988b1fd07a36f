"""Start page and health check."""

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import text

from engine.cases import list_cases
from engine.deploy import list_versions

bp = Blueprint("pages", __name__)


def rt():
    return current_app.extensions["ozgflow"]


@bp.get("/")
def index():
    runtime = rt()
    return render_template("index.html", tenants=runtime.tenants.tenants.values(),
                           versions=list_versions(runtime), cases=list_cases(runtime, limit=20))


@bp.get("/health")
def health():
    try:
        with rt().reader.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # the health check reports, it does not crash
        return jsonify(status="error", database="unreachable", detail=exc.__class__.__name__), 503
    return jsonify(status="ok", database="ok", schema=revision)
