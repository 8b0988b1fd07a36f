"""A local FIT-Connect delivery service (Zustelldienst): Submission API v2, both sides, on one port.

It is a stand-in for the federal system, for development, demos and tests: a separate small Flask app
with its own SQLite file (see ``store.py``), sharing nothing with the engine. ``ozgflow mailbox-server``
starts it on 127.0.0.1:5001.

Sender side (an online service)::

    POST /token                                     client credentials (form) -> access_token, expires_in
    GET  /v2/destinations/{id}                      destinationId, status, encryptionKid, services
    GET  /v2/destinations/{id}/keys/{kid}           a public JWK (encryption or signing key)
    POST /v2/submissions                            announce -> 201 {destinationId, submissionId, caseId}
    PUT  /v2/submissions/{id}/attachments/{aid}     one encrypted attachment (application/jose) -> 204
    PUT  /v2/submissions/{id}                       encryptedMetadata + encryptedData -> submitted

Receiver side (the authority's back office)::

    GET  /v2/submissions?destinationId=&offset=&limit=   {count, offset, totalCount, submissions}
    GET  /v2/submissions/{id}                       ids, serviceType, attachments, encrypted parts
    GET  /v2/submissions/{id}/attachments/{aid}     compact JWE (application/jose)
    POST /v2/cases/{caseId}/events                  a signed SET (accept/reject-submission) -> 204
    GET  /v2/cases/{caseId}/events                  {"eventLog": [compact SETs]}
    GET  /.well-known/jwks.json                     the delivery service's own signing key

Clients: senders from ``SENDERS`` (default ``demo-sender`` / ``demo-sender-secret``); one receiving client
per destination, as the tenant file configures it. A sender's token may read destinations, their keys and
the event log of its own cases; a receiver's token everything of its own destinations.

The service signs its own events (``create-submission``, ``submit-submission`` with the authentication
tags of every part, ``notify-submission`` after a delivered callback) with its key (``SIGNING_KEY_FILE``,
generated on first start). It verifies every event a receiver posts with that destination's public
signing key, and allows one final event (accept or reject) per submission. When ``CALLBACK_URL`` is set,
each submitted submission is announced there, signed with HMAC-SHA512 (``CALLBACK_SECRET``).

Every default is in ``DEFAULTS``; ``OZGFLOW_FITCONNECT_SERVER_<KEY>`` environment variables override them.
"""

import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, abort, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from . import callbacks, crypto, store
from .errors import CryptoError
from .keys import ensure_signing_key, key_folder

log = logging.getLogger(__name__)

DEFAULTS = {
    "DATABASE": "var/fitconnect-server.sqlite",
    "VAR_DIR": "var",  # destination public keys are read from <VAR_DIR>/keys/<destination-id>/
    "DESTINATIONS": (),  # engine.tenants.Destination or any object with id, services, client_id, secret()
    "SENDERS": {"demo-sender": "demo-sender-secret"},
    "SERVICE_NAMES": {},  # LeiKa key -> name, shown in destination descriptions
    "TOKEN_TTL": 1800,
    "SIGNING_KEY_FILE": None,  # default: next to DATABASE, <name>.signing.private.jwk.json
    "ISSUER": None,  # "iss" of the service's own events; default: its base URL
    "CALLBACK_URL": None,
    "CALLBACK_SECRET": None,
    "CALLBACK_TIMEOUT": 10.0,
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,  # per request, i.e. per encrypted part
    "CLOCK": time.time,
}
LEIKA_URN = "urn:de:fim:leika:leistung:"
METADATA_VERSIONS = ["1.0.0"]


@dataclass(frozen=True)
class Client:
    id: str
    role: str  # "sender" or "receiver"
    destinations: frozenset  # what a receiver may read; empty for senders


def create_app(config=None):
    """The app. ``config`` overrides ``DEFAULTS`` (and the environment), e.g. DATABASE, DESTINATIONS."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("OZGFLOW_FITCONNECT_SERVER")
    app.config.update(config or {})
    app.json.sort_keys = False  # answer in the field order of the FIT-Connect documents
    database = Path(app.config["DATABASE"])
    key_file = app.config["SIGNING_KEY_FILE"] or database.with_name(database.stem + ".signing.private.jwk.json")
    app.extensions["fitconnect"] = {
        "signing_key": ensure_signing_key(key_file),
        "destinations": {d.id: d for d in app.config["DESTINATIONS"]},
        "receivers": {d.client_id: d for d in app.config["DESTINATIONS"]},
    }
    store.create(database)  # once, before the first request
    app.teardown_appcontext(_close_db)
    app.register_error_handler(HTTPException, _problem)
    _routes(app)
    return app


@contextmanager
def running(app, host="127.0.0.1", port=0):
    """Serve ``app`` from a background thread (port 0: a free one) and yield its base URL; stop on exit.

    For tests, benchmarks and demos that need a real HTTP server inside their own process."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fitconnect-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _state():
    return current_app.extensions["fitconnect"]


def _db():
    if "fitconnect_db" not in g:
        g.fitconnect_db = store.connect(current_app.config["DATABASE"])
    return g.fitconnect_db


def _close_db(_exc):
    conn = g.pop("fitconnect_db", None)
    if conn is not None:
        conn.close()


def _now():
    return int(current_app.config["CLOCK"]())


def _problem(exc):
    """Errors as RFC 7807 problem documents, as the real service answers."""
    body = {"type": "about:blank", "title": exc.name, "status": exc.code, "detail": exc.description}
    response = Response(json.dumps(body, ensure_ascii=False), status=exc.code,
                        content_type="application/problem+json")
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fit-connect"'
    return response


# -- authentication -------------------------------------------------------------------------------------

def _check_secret(client_id, secret):
    """The Client for valid credentials, else None (comparison in constant time)."""
    senders = current_app.config["SENDERS"]
    if client_id in senders:
        return Client(client_id, "sender", frozenset()) if hmac.compare_digest(
            str(senders[client_id]).encode(), secret.encode()) else None
    destination = _state()["receivers"].get(client_id)
    if destination is None:
        return None
    try:
        expected = destination.secret()
    except Exception as exc:  # a missing secret variable must not turn into a 500
        log.warning("receiving client %s has no usable secret: %s", client_id, exc)
        return None
    if not hmac.compare_digest(expected.encode(), secret.encode()):
        return None
    return Client(client_id, "receiver", frozenset({destination.id}))


def _client_by_id(client_id):
    if client_id in current_app.config["SENDERS"]:
        return Client(client_id, "sender", frozenset())
    destination = _state()["receivers"].get(client_id)
    return Client(client_id, "receiver", frozenset({destination.id})) if destination else None


def _authenticated(*roles):
    """The client behind the request's bearer token; 401 without a valid one, 403 for the wrong role."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        abort(401, "a bearer token is required (POST /token)")
    client_id = store.client_of_token(_db(), token.strip(), _now())
    client = _client_by_id(client_id) if client_id else None
    if client is None:
        abort(401, "the access token is unknown or expired")
    if client.role not in roles:
        abort(403, f"a {client.role} client may not do this")
    return client


# -- helpers --------------------------------------------------------------------------------------------

def _destination(destination_id, client=None):
    destination = _state()["destinations"].get(destination_id)
    if destination is None or (client and client.role == "receiver" and destination_id not in client.destinations):
        abort(404, f"no destination {destination_id}")
    return destination


def _public_keys(destination):
    """(encryption, signing) public JWKs of a destination; 404 when ``ozgflow init`` has not made them."""
    folder = key_folder(current_app.config["VAR_DIR"], destination)
    try:
        return folder.encryption_public_key(), folder.signing_public_key()
    except CryptoError:
        abort(404, f"destination {destination.id} has no public keys in {folder.path} (run `ozgflow init`)")


def _json_body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object (Content-Type: application/json)")
    return body


def _jose_body():
    if request.mimetype != "application/jose":
        abort(415, "the body must be a compact JWE/JWS with Content-Type: application/jose")
    return request.get_data(as_text=True).strip()


def _check_jwe(token, what):
    """The delivery service cannot decrypt, but it refuses what is not an encrypted part at all."""
    try:
        header = crypto.jwe_header(token, current_app.config["MAX_CONTENT_LENGTH"])
    except CryptoError as exc:
        abort(422, f"{what}: {exc}")
    if not header.get("alg") or not header.get("enc"):
        abort(422, f"{what}: the JWE header names no alg/enc")


def _leika(service):
    identifier = service.get("identifier") if isinstance(service, dict) else None
    if not isinstance(identifier, str):
        abort(422, "the announcement needs publicService (or serviceType) with an identifier")
    key = identifier.removeprefix(LEIKA_URN)
    if not (key.isdigit() and len(key) == 14):
        abort(422, f"service identifier {identifier!r} is not a LeiKa key ({LEIKA_URN}<14 digits>)")
    return key


def _uuid(value, what):
    try:
        if isinstance(value, str) and str(uuid.UUID(value)) == value.lower():
            return value.lower()
    except ValueError:
        pass
    abort(422, f"{what} must be a UUID, got {str(value)[:80]!r}")


def _own_submission(submission_id, client, *statuses):
    """The submission if this client may see it (sender: its own; receiver: of its destination)."""
    sub = store.get_submission(_db(), submission_id)
    visible = sub is not None and (
        (client.role == "sender" and sub["sender"] == client.id)
        or (client.role == "receiver" and sub["destination_id"] in client.destinations))
    if not visible or (statuses and sub["status"] not in statuses):
        abort(404, f"no submission {submission_id}")
    return sub


def _issue_event(conn, sub, event, payload=None):
    """Sign and record one of the delivery service's own events (inside the caller's transaction)."""
    token = crypto.make_set(_state()["signing_key"], issuer=_issuer(), submission_id=sub["submission_id"],
                            case_id=sub["case_id"], event=event, payload=payload, now=_now())
    store.add_event(conn, sub["case_id"], sub["submission_id"], event, token, _now())


def _issuer():
    return current_app.config["ISSUER"] or request.url_root.rstrip("/")


def _routes(app):
    app.add_url_rule("/token", view_func=token, methods=["POST"])
    app.add_url_rule("/.well-known/jwks.json", view_func=jwks)
    app.add_url_rule("/v2/destinations/<destination_id>", view_func=get_destination)
    app.add_url_rule("/v2/destinations/<destination_id>/keys/<kid>", view_func=get_key)
    app.add_url_rule("/v2/submissions", view_func=announce, methods=["POST"])
    app.add_url_rule("/v2/submissions", view_func=list_submissions, methods=["GET"])
    app.add_url_rule("/v2/submissions/<submission_id>", view_func=submit, methods=["PUT"])
    app.add_url_rule("/v2/submissions/<submission_id>", view_func=get_submission, methods=["GET"])
    app.add_url_rule("/v2/submissions/<submission_id>/attachments/<attachment_id>", view_func=put_attachment,
                     methods=["PUT"])
    app.add_url_rule("/v2/submissions/<submission_id>/attachments/<attachment_id>", view_func=get_attachment,
                     methods=["GET"])
    app.add_url_rule("/v2/cases/<case_id>/events", view_func=post_event, methods=["POST"])
    app.add_url_rule("/v2/cases/<case_id>/events", view_func=get_events, methods=["GET"])


# -- views: tokens and keys -----------------------------------------------------------------------------

def token():
    """OAuth2 client credentials: form fields (client_secret_post) or HTTP Basic."""
    if request.form.get("grant_type") != "client_credentials":
        return jsonify(error="unsupported_grant_type"), 400
    auth = request.authorization
    client_id = request.form.get("client_id") or (auth.username if auth else "") or ""
    secret = request.form.get("client_secret") or (auth.password if auth else "") or ""
    client = _check_secret(client_id, secret) if client_id and secret else None
    if client is None:
        return jsonify(error="invalid_client"), 401
    access_token = secrets.token_urlsafe(32)
    ttl = int(current_app.config["TOKEN_TTL"])
    with store.transaction(_db()) as conn:
        store.save_token(conn, access_token, client.id, _now() + ttl, _now())
    scope = ("send:region:DE" if client.role == "sender"
             else " ".join(f"subscribe:destination:{d}" for d in sorted(client.destinations)))
    return jsonify(access_token=access_token, token_type="Bearer", expires_in=ttl, scope=scope)


def jwks():
    public = _state()["signing_key"].export_public(as_dict=True) | {"key_ops": ["verify"]}
    return jsonify(keys=[public])


def get_destination(destination_id):
    destination = _destination(destination_id, _authenticated("sender", "receiver"))
    encryption, _ = _public_keys(destination)
    names = current_app.config["SERVICE_NAMES"]
    services = [{"identifier": LEIKA_URN + key, **({"name": names[key]} if key in names else {})}
                for key in destination.services]
    return jsonify(destinationId=destination.id, status="active", encryptionKid=encryption.get("kid"),
                   services=services, metadataVersions=METADATA_VERSIONS)


def get_key(destination_id, kid):
    destination = _destination(destination_id, _authenticated("sender", "receiver"))
    for key in _public_keys(destination):
        if key.get("kid") == kid:
            return jsonify(key.export_public(as_dict=True))
    abort(404, f"destination {destination_id} has no key {kid!r}")


# -- views: sending -------------------------------------------------------------------------------------

def announce():
    client = _authenticated("sender")
    body = _json_body()
    destination = _destination(_uuid(body.get("destinationId"), "destinationId"))
    _public_keys(destination)
    service = body.get("publicService") or body.get("serviceType")
    leika = _leika(service)
    if leika not in destination.services:
        abort(422, f"destination {destination.id} does not accept the service {leika}")
    announced = body.get("announcedAttachments", [])
    if not isinstance(announced, list) or len(announced) > 1000:
        abort(422, "announcedAttachments must be a list of attachment UUIDs")
    announced = [_uuid(a, "an announced attachment id") for a in announced]
    if len(set(announced)) != len(announced):
        abort(422, "announcedAttachments lists an attachment twice")
    sub = {"submission_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4())}
    with store.transaction(_db()) as conn:
        if body.get("caseId") is not None:  # a further submission in an existing case
            sub["case_id"] = _uuid(body["caseId"], "caseId")
            if not any(s["destination_id"] == destination.id for s in store.submissions_of_case(conn, sub["case_id"])):
                abort(404, f"no case {sub['case_id']} at destination {destination.id}")
        store.create_submission(conn, destination_id=destination.id, sender=client.id, announced=announced,
                                service={"name": str(service.get("name") or ""), "identifier": service["identifier"]},
                                now=_now(), **sub)
        _issue_event(conn, sub, crypto.CREATE_SUBMISSION)
    return jsonify(destinationId=destination.id, submissionId=sub["submission_id"], caseId=sub["case_id"]), 201


def put_attachment(submission_id, attachment_id):
    client = _authenticated("sender")
    content = _jose_body()
    _check_jwe(content, f"attachment {attachment_id}")
    with store.transaction(_db()) as conn:
        sub = _own_submission(submission_id, client)
        if attachment_id not in sub["announced"]:
            abort(404, f"attachment {attachment_id} was not announced for submission {submission_id}")
        if sub["status"] != "announced":
            abort(409, f"submission {submission_id} is already {sub['status']}")
        store.put_attachment(conn, submission_id, attachment_id, content)
    return "", 204


def submit(submission_id):
    client = _authenticated("sender")
    body = _json_body()
    for field in ("encryptedMetadata", "encryptedData"):
        if not isinstance(body.get(field), str):
            abort(422, f"{field} is required (a compact JWE)")
        _check_jwe(body[field], field)
    with store.transaction(_db()) as conn:
        sub = _own_submission(submission_id, client)
        if sub["status"] != "announced":
            abort(409, f"submission {submission_id} is already {sub['status']}")
        uploaded = store.attachments(conn, submission_id)
        missing = [a for a in sub["announced"] if a not in uploaded]
        if missing:
            abort(422, f"announced attachments not uploaded: {', '.join(missing)}")
        store.mark_submitted(conn, submission_id, body["encryptedMetadata"], body["encryptedData"], _now())
        tags = crypto.authentication_tags(body["encryptedMetadata"], body["encryptedData"],
                                          {a: uploaded[a] for a in sub["announced"]})
        _issue_event(conn, sub, crypto.SUBMIT_SUBMISSION, {"authenticationTags": tags})
    _announce_by_callback(sub)
    return jsonify(destinationId=sub["destination_id"], submissionId=submission_id, caseId=sub["case_id"])


# -- views: receiving -----------------------------------------------------------------------------------

def list_submissions():
    client = _authenticated("receiver")
    wanted = request.args.get("destinationId")
    if wanted is not None and wanted not in client.destinations:
        abort(403, f"this client does not receive for destination {wanted}")
    offset = request.args.get("offset", 0, type=int)
    limit = request.args.get("limit", 100, type=int)
    if offset < 0 or not 1 <= limit <= 500:
        abort(400, "offset must be >= 0 and limit between 1 and 500")
    rows, total = store.pending(_db(), sorted([wanted] if wanted else client.destinations), offset, limit)
    submissions = [{"destinationId": r["destination_id"], "submissionId": r["submission_id"],
                    "caseId": r["case_id"]} for r in rows]
    return jsonify(count=len(submissions), offset=offset, totalCount=total, submissions=submissions)


def get_submission(submission_id):
    client = _authenticated("receiver")
    sub = _own_submission(submission_id, client, "submitted", "accepted", "rejected")
    return jsonify(destinationId=sub["destination_id"], submissionId=submission_id, caseId=sub["case_id"],
                   serviceType=sub["service"], attachments=sub["announced"],
                   encryptedMetadata=sub["encrypted_metadata"], encryptedData=sub["encrypted_data"])


def get_attachment(submission_id, attachment_id):
    client = _authenticated("receiver")
    _own_submission(submission_id, client, "submitted", "accepted", "rejected")
    content = store.get_attachment(_db(), submission_id, attachment_id)
    if content is None:
        abort(404, f"submission {submission_id} has no attachment {attachment_id}")
    return Response(content, content_type="application/jose")


def post_event(case_id):
    client = _authenticated("receiver")
    token_text = _jose_body()
    try:
        _, claims = crypto.read_set(token_text)
    except CryptoError as exc:
        abort(422, f"not a Security Event Token: {exc}")
    submission_id = str(claims.get("sub", "")).removeprefix("submission:")
    sub = store.get_submission(_db(), submission_id)
    if sub is None or sub["case_id"] != case_id or sub["destination_id"] not in client.destinations:
        abort(404, f"case {case_id} has no submission {submission_id!r} for this client")
    destination = _destination(sub["destination_id"])
    claims = _verified_event(token_text, destination, sub)
    event, payload = crypto.event_of(claims)
    with store.transaction(_db()) as conn:
        sub = store.get_submission(conn, submission_id)  # again, under the write lock
        if sub["status"] != "submitted":
            abort(409, f"submission {submission_id} is already {sub['status']}; it takes one accept or reject")
        if event == crypto.ACCEPT_SUBMISSION:
            _check_tags(conn, sub, payload)
        store.add_event(conn, case_id, submission_id, event, token_text, _now())
        store.set_status(conn, submission_id, "accepted" if event == crypto.ACCEPT_SUBMISSION else "rejected")
    return "", 204


def _verified_event(token_text, destination, sub):
    """The claims of a receiver's SET whose signature, issuer, case and event type are right; else 422."""
    _, signing = _public_keys(destination)
    try:
        claims = crypto.verify_set(token_text, [signing])
    except CryptoError as exc:
        abort(422, f"event refused: {exc}")
    if claims["iss"] != destination.id:
        abort(422, f"event refused: iss must be the destination id {destination.id}")
    if claims["txn"] != f"case:{sub['case_id']}":
        abort(422, "event refused: txn does not name the submission's case")
    event, payload = crypto.event_of(claims)
    if event not in (crypto.ACCEPT_SUBMISSION, crypto.REJECT_SUBMISSION):
        abort(422, f"event refused: a receiver may post accept-submission or reject-submission, not {event}")
    if event == crypto.REJECT_SUBMISSION and not (isinstance(payload.get("problems"), list) and payload["problems"]):
        abort(422, "event refused: reject-submission needs at least one problem")
    return claims


def _check_tags(conn, sub, payload):
    """An accept must name the authentication tags of exactly the parts that were delivered."""
    expected = crypto.authentication_tags(sub["encrypted_metadata"], sub["encrypted_data"],
                                          store.attachments(conn, sub["submission_id"]))
    if payload.get("authenticationTags") != expected:
        abort(422, "event refused: authenticationTags do not match the parts of the submission")


def get_events(case_id):
    client = _authenticated("sender", "receiver")
    subs = store.submissions_of_case(_db(), case_id)
    if not any((client.role == "sender" and s["sender"] == client.id)
               or (client.role == "receiver" and s["destination_id"] in client.destinations) for s in subs):
        abort(404, f"no case {case_id}")
    return jsonify(eventLog=store.event_log(_db(), case_id))


# -- callbacks ------------------------------------------------------------------------------------------

def _announce_by_callback(sub):
    """Tell the receiver about a new submission (callbacks.py), when a callback URL is configured."""
    url, secret = current_app.config["CALLBACK_URL"], current_app.config["CALLBACK_SECRET"]
    if not url:
        return
    if not secret:
        log.warning("CALLBACK_URL is set but CALLBACK_SECRET is not; no callback sent")
        return
    callbacks.announce(callbacks.CallbackTarget(
        url=url, secret=secret, timeout=current_app.config["CALLBACK_TIMEOUT"],
        database=current_app.config["DATABASE"], clock=current_app.config["CLOCK"],
        signing_key=_state()["signing_key"], issuer=_issuer()), sub)
