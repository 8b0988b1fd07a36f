"""The web app: thin views that parse a request, call the engine and render.

``create_app`` wires everything; nothing is created at import time.
"""

from flask import Flask

from engine.runtime import Runtime


def create_app(test_config=None, runtime=None):
    """Application factory. ``OZGFLOW_*`` environment variables configure the engine (engine.config)."""
    app = Flask(__name__)
    app.config.from_mapping(JSON_SORT_KEYS=False)
    app.config.from_prefixed_env("OZGFLOW")
    if test_config:
        app.config.update(test_config)
    app.extensions["ozgflow"] = runtime or Runtime()

    from . import pages

    app.register_blueprint(pages.bp)
    return app
