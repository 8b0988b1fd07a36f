"""The local server's new-submission callbacks: tell the receiver that something waits for pickup.

FIT-Connect POSTs ``{"type": …/callbacks/new-submissions, "submissionIds": […], "submissions": […]}`` to
the callback URL configured for the destination, with two headers: ``callback-timestamp`` (Unix seconds)
and ``callback-authentication`` (hex HMAC-SHA512 over ``<timestamp>.<body>`` with the shared callback
secret; the receiver checks it with ``crypto.verify_callback``). A delivered callback is recorded as a
``notify-submission`` event in the case's event log.

Callbacks are sent from a background thread with one attempt: polling remains the receiver's safety net,
so a lost callback delays a pickup but loses nothing.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import crypto, store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackTarget:
    """Where and how to announce, and what the background thread needs to record the notify event."""

    url: str
    secret: str
    timeout: float
    database: str
    clock: Callable[[], float]
    signing_key: Any  # the delivery service's JWK
    issuer: str


def body_for(sub):
    """The callback body for one submission (compact JSON, as the delivery service sends it)."""
    ids = {"destinationId": sub["destination_id"], "submissionId": sub["submission_id"], "caseId": sub["case_id"]}
    return json.dumps({"type": crypto.NEW_SUBMISSIONS_CALLBACK, "submissionIds": [sub["submission_id"]],
                       "submissions": [ids]}, separators=(",", ":"))


def announce(target, sub):
    """Send the callback for ``sub`` from a background thread (the sender's request does not wait)."""
    threading.Thread(target=deliver, args=(target, sub), name="fitconnect-callback", daemon=True).start()


def deliver(target, sub):
    """POST the signed callback; on success record ``notify-submission``. Failures are logged, not raised."""
    body = body_for(sub)
    timestamp = str(int(target.clock()))
    headers = {"callback-authentication": crypto.callback_signature(target.secret, timestamp, body),
               "callback-timestamp": timestamp, "content-type": "application/json"}
    try:
        response = httpx.post(target.url, content=body.encode(), headers=headers, timeout=target.timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("callback for submission %s to %s failed: %s", sub["submission_id"], target.url, exc)
        return False
    token = crypto.make_set(target.signing_key, issuer=target.issuer, submission_id=sub["submission_id"],
                            case_id=sub["case_id"], event=crypto.NOTIFY_SUBMISSION, now=int(timestamp))
    conn = store.connect(target.database)
    try:
        with store.transaction(conn):
            store.add_event(conn, sub["case_id"], sub["submission_id"], crypto.NOTIFY_SUBMISSION, token,
                            int(timestamp))
    finally:
        conn.close()
    return True
