"""The web app: thin views that parse a request, call the engine and render.

``create_app`` wires everything; nothing is created at import time.

| setting (env OZGFLOW_…)  | default                                                     |
|--------------------------|-------------------------------------------------------------|
| SECRET_KEY               | generated once into ``<var>/secret_key`` (mode 0600)        |
| SESSION_IDLE_MINUTES     | 60: a browser session without a request for this long ends  |
| SESSION_MAX_HOURS        | 10: a browser session ends this long after login regardless |
| INBOX_PAGE_SIZE          | 25 tasks per inbox page                                     |
"""

import os
import secrets

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from engine.runtime import Runtime

DEFAULTS = {
    "JSON_SORT_KEYS": False,
    "SESSION_IDLE_MINUTES": 60,
    "SESSION_MAX_HOURS": 10,
    "INBOX_PAGE_SIZE": 25,
    "SESSION_COOKIE_NAME": "ozgflow_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the (server-checked) session
}

csrf = CSRFProtect()


def create_app(test_config=None, runtime=None):
    """Application factory. ``OZGFLOW_*`` environment variables configure the engine (engine.config)."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("OZGFLOW")
    if test_config:
        app.config.update(test_config)
    app.extensions["ozgflow"] = runtime or Runtime()
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.extensions["ozgflow"].settings.var_dir)
    csrf.init_app(app)

    from . import api, auth, background, cases, designer, ikz, inbox, incidents, mailbox, pages, tasks, versions

    for module in (auth, pages, inbox, tasks, cases, api, incidents, ikz):
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)  # bearer tokens, no cookies: nothing for a forged request to ride on
    auth.init_app(app)
    designer.init_app(app)
    versions.init_app(app)  # versions, diff, moving cases; suspend/resume/terminate (web.versions)
    background.init_app(app)
    mailbox.init_app(app)
    return app


def _secret_key(var_dir):
    """The signing key of session cookies: made once, kept in the var folder, readable by us only."""
    path = var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: of several workers starting at once, the first one's key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()
