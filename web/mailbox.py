"""The new-submission callback of FIT-Connect: the mailbox tells us that something is waiting.

``POST /api/v1/fitconnect/callback`` carries ``callback-authentication`` (hex HMAC-SHA512 over
``<callback-timestamp>.<body>``) and ``callback-timestamp``; with a valid signature (secret
``OZGFLOW_FITCONNECT_CALLBACK_SECRET``, clock difference under five minutes) the periodic pickup is made
due now, so the worker fetches the submission at once instead of at its next round. Polling stays the
safety net: a lost or refused callback delays nothing by more than one poll interval.
"""

import os

from flask import Blueprint, current_app, jsonify, request

from connectors.fitconnect.crypto import verify_callback
from connectors.fitconnect.errors import CryptoError
from engine.intake import wake_pickup

bp = Blueprint("mailbox", __name__, url_prefix="/api/v1/fitconnect")


@bp.post("/callback")
def callback():
    secret = current_app.config.get("FITCONNECT_CALLBACK_SECRET") or os.environ.get(
        "OZGFLOW_FITCONNECT_CALLBACK_SECRET")
    if not secret:
        return jsonify(error="callbacks are not configured (OZGFLOW_FITCONNECT_CALLBACK_SECRET)"), 404
    try:
        verify_callback(secret, request.headers.get("callback-timestamp"), request.get_data(),
                        request.headers.get("callback-authentication"))
    except CryptoError as exc:
        return jsonify(error=f"callback refused: {exc}"), 401
    woken = wake_pickup(current_app.extensions["ozgflow"])
    return jsonify(status="pickup scheduled" if woken else "pickup already running"), 202


def init_app(app):
    from . import csrf

    app.register_blueprint(bp)
    csrf.exempt(bp)  # authenticated by its HMAC, not by a session cookie
