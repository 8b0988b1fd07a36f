"""Login, logout and who is asking: the browser session (a server-side session row whose random id
rides in the signed Flask session cookie), security headers and the template helpers every page uses."""

from datetime import UTC, timedelta
from functools import wraps
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for

from engine.users import LoginRefused, authenticate, close_session, open_session, session_person

bp = Blueprint("auth", __name__)
BERLIN = ZoneInfo("Europe/Berlin")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def rt():
    return current_app.extensions["ozgflow"]


def init_app(app):
    app.before_request(_load_user)
    app.after_request(_security_headers)
    app.jinja_env.filters["datum"] = format_date
    app.jinja_env.filters["zeit"] = format_datetime
    app.jinja_env.filters["antragsdaten"] = case_facts

    @app.context_processor
    def _globals():
        user = g.get("user")
        tenant = rt().tenants.tenants.get(user.tenant) if user else None
        return {"user": user, "tenant": tenant}


# Case variables that are configuration, not facts of the case: the city's settings a case gets at start
# (engine.tenant_settings: fees, zones, departments, letterhead). The case and task pages leave them out.
CONFIGURATION_KEYS = frozenset({"stadt"})


def case_facts(data):
    """The case data without the configuration copied into it (what a caseworker reads as 'Antragsdaten')."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if k not in CONFIGURATION_KEYS}


def _load_user():
    g.user = None
    if request.blueprint == "api" or request.endpoint == "static":
        return
    cfg = current_app.config
    g.user = session_person(rt(), session.get("sid"), timedelta(minutes=int(cfg["SESSION_IDLE_MINUTES"])),
                            timedelta(hours=int(cfg["SESSION_MAX_HOURS"])))
    if g.user is None and "sid" in session:
        session.pop("sid")


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("X-Frame-Options", "DENY")  # documents set SAMEORIGIN: the case page frames them
    if g.get("user") is not None:
        response.headers["Cache-Control"] = "no-store"  # personal data stays out of shared caches
    return response


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def role_required(*roles):
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return login_required(wrapped)

    return decorate


def _safe_next(target):
    """Only paths of this site: no scheme, no host, no protocol-relative ``//evil``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("inbox.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        try:
            person = authenticate(rt(), request.form.get("username", ""), request.form.get("password", ""))
        except LoginRefused as exc:
            error = str(exc)
            if exc.locked_until is not None and "gesperrt" in error:
                error += f" (bis {format_datetime(exc.locked_until)} Uhr)"
        else:
            session.clear()  # a fresh session (and CSRF token) after login: no session fixation
            session["sid"] = open_session(rt(), person)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, username=request.form.get("username", "")), \
        (401 if error else 200)


@bp.post("/logout")
def logout():
    close_session(rt(), session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login", abgemeldet=1))


def format_datetime(value):
    if value is None:
        return "—"
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BERLIN).strftime("%d.%m.%Y, %H:%M")


def format_date(value):
    return "—" if value is None else format_datetime(value).split(",")[0]
