"""The cryptography of FIT-Connect, on jwcrypto: encrypted parts, signed events, hashes, callbacks.

- Every part of a submission (metadata, data, each attachment) is a compact JWE: ``RSA-OAEP-256`` wraps a
  fresh content key, ``A256GCM`` encrypts. Its fifth segment is the GCM *authentication tag*, which the
  delivery service repeats in its ``submit-submission`` event and the receiver repeats when it accepts.
- Events are Security Event Tokens (SET, RFC 8417): a compact JWS, ``PS512``, header
  ``typ: secevent+jwt``, claims ``jti``, ``iss``, ``iat``, ``sub`` (``submission:<id>``), ``txn``
  (``case:<caseId>``) and ``events`` (one event URI -> its payload).
- The metadata names the SHA-512 of the data and of every attachment (hex).
- A new-submissions callback carries ``callback-authentication``: hex HMAC-SHA512 over
  ``<callback-timestamp>.<body>``.

Everything that comes from outside is untrusted: tokens are size-checked before parsing, algorithms are
pinned (no ``none``, no RSA1_5), and every failure is a :class:`CryptoError` with a reason a person can read.
No hand-rolled cryptography: jwcrypto does JWE/JWS, ``hashlib``/``hmac`` do the rest.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException, json_encode

from .errors import CryptoError

KEY_ALG = "RSA-OAEP-256"
CONTENT_ALG = "A256GCM"
SET_ALG = "PS512"
SET_TYP = "secevent+jwt"
SET_SCHEMA = "https://schema.fitko.de/fit-connect/set-payload/1.2.2/set-payload.schema.json"
EVENTS = "https://schema.fitko.de/fit-connect/events/"
CREATE_SUBMISSION = EVENTS + "create-submission"
SUBMIT_SUBMISSION = EVENTS + "submit-submission"
NOTIFY_SUBMISSION = EVENTS + "notify-submission"
ACCEPT_SUBMISSION = EVENTS + "accept-submission"
REJECT_SUBMISSION = EVENTS + "reject-submission"
PROBLEMS = EVENTS + "problems/"
NEW_SUBMISSIONS_CALLBACK = "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions"

# Untrusted input is refused before parsing when it is larger than this (a part of a submission may be a
# large attachment; callers pass their own limit where they know better).
MAX_TOKEN_CHARS = 200 * 1024 * 1024
MAX_SET_CHARS = 256 * 1024


def load_key(path_or_json):
    """A JWK from a file path or a JSON text; CryptoError when it is not one."""
    text = str(path_or_json)
    try:
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        return jwk.JWK.from_json(text)
    except (OSError, ValueError, JWException) as exc:
        raise CryptoError(f"not a usable JWK: {exc}") from exc


def _segments(token, max_chars, parts, what):
    if not isinstance(token, str):
        raise CryptoError(f"{what}: expected a compact serialization (text)")
    if len(token) > max_chars:
        raise CryptoError(f"{what}: {len(token)} characters, more than the limit of {max_chars}")
    segments = token.strip().split(".")
    if len(segments) != parts:
        raise CryptoError(f"{what}: a compact serialization has {parts} segments, this one has {len(segments)}")
    return segments


def _b64json(segment, what):
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"{what}: header is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise CryptoError(f"{what}: header is not a JSON object")
    return value


def jwe_header(token, max_chars=MAX_TOKEN_CHARS):
    """The protected header of a compact JWE, without decrypting (checks only its shape)."""
    return _b64json(_segments(token, max_chars, 5, "JWE")[0], "JWE")


def authentication_tag(token):
    """The authentication tag of a compact JWE: its fifth segment, as FIT-Connect's events carry it."""
    return _segments(token, MAX_TOKEN_CHARS, 5, "JWE")[4]


def authentication_tags(encrypted_metadata, encrypted_data, attachments):
    """The ``authenticationTags`` object of a submit/accept event: metadata, data, attachment id -> tag."""
    return {"metadata": authentication_tag(encrypted_metadata), "data": authentication_tag(encrypted_data),
            "attachments": {aid: authentication_tag(token) for aid, token in attachments.items()}}


def encrypt(plaintext, public_key, cty=None):
    """Encrypt ``plaintext`` (bytes) to ``public_key`` (a JWK with ``kid``) as a compact JWE.

    ``cty`` is the content type of the plaintext; FIT-Connect wants ``application/json`` for metadata and
    data and leaves it out for attachments."""
    if not public_key.get("kid"):
        raise CryptoError("the encryption key has no kid; FIT-Connect receivers select their key by kid")
    header = {"alg": KEY_ALG, "enc": CONTENT_ALG, "kid": public_key.get("kid")}
    if cty:
        header["cty"] = cty
    try:
        token = jwe.JWE(plaintext, protected=json_encode(header))
        token.add_recipient(public_key)
        return token.serialize(compact=True)
    except (JWException, ValueError, TypeError) as exc:
        raise CryptoError(f"cannot encrypt to key {public_key.get('kid')!r}: {exc}") from exc


def decrypt(token, private_keys, max_chars=MAX_TOKEN_CHARS):
    """Decrypt a compact JWE with the key whose ``kid`` its header names; the plaintext as bytes.

    ``private_keys`` is one JWK or several (a list or a JWKSet); only ``RSA-OAEP-256`` + ``A256GCM`` are
    accepted. Raises CryptoError naming why (unknown kid, wrong algorithm, tampered part)."""
    header = jwe_header(token, max_chars)
    if header.get("alg") != KEY_ALG or header.get("enc") != CONTENT_ALG:
        raise CryptoError(f"JWE uses alg={header.get('alg')!r} enc={header.get('enc')!r}; "
                          f"expected {KEY_ALG} + {CONTENT_ALG}")
    key = _key_for(header.get("kid"), private_keys, "decryption")
    try:
        obj = jwe.JWE()
        obj.allowed_algs = [KEY_ALG, CONTENT_ALG]
        obj.deserialize(token.strip(), key=key)
        return obj.payload
    except (JWException, ValueError, TypeError) as exc:
        raise CryptoError(f"cannot decrypt the part (kid {header.get('kid')!r}): {exc}") from exc


def _key_for(kid, keys, purpose):
    """The key with ``kid`` among ``keys`` (one JWK, a list, or a JWKSet)."""
    if isinstance(keys, jwk.JWKSet):
        candidates = list(keys["keys"])
    elif isinstance(keys, jwk.JWK):
        candidates = [keys]
    else:
        candidates = list(keys)
    for key in candidates:
        if kid is not None and key.get("kid") == kid:
            return key
    known = ", ".join(repr(k.get("kid")) for k in candidates) or "none"
    raise CryptoError(f"no {purpose} key with kid {kid!r} (have {known})")


def make_set(signing_key, *, issuer, submission_id, case_id, event, payload=None, now=None, jti=None):
    """A signed Security Event Token (compact JWS, PS512) for one event of one submission.

    ``event`` is the event URI (e.g. :data:`ACCEPT_SUBMISSION`), ``payload`` its content, e.g.
    ``{"authenticationTags": …}`` or ``{"problems": […]}``. ``now`` (seconds) is injectable for tests."""
    claims = {
        "$schema": SET_SCHEMA,
        "jti": jti or str(uuid.uuid4()),
        "iss": issuer,
        "iat": int(time.time() if now is None else now),
        "sub": f"submission:{submission_id}",
        "txn": f"case:{case_id}",
        "events": {event: payload or {}},
    }
    header = {"alg": SET_ALG, "kid": signing_key.get("kid"), "typ": SET_TYP}
    try:
        token = jws.JWS(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        token.add_signature(signing_key, alg=SET_ALG, protected=json_encode(header))
        return token.serialize(compact=True)
    except (JWException, ValueError, TypeError) as exc:
        raise CryptoError(f"cannot sign the event with key {signing_key.get('kid')!r}: {exc}") from exc


def set_header(token):
    """The protected header of a SET, without verifying it."""
    return _b64json(_segments(token, MAX_SET_CHARS, 3, "SET")[0], "SET")


def read_set(token):
    """Header and claims of a SET *without* verifying the signature: for routing only, never for trust."""
    segments = _segments(token, MAX_SET_CHARS, 3, "SET")
    return _b64json(segments[0], "SET"), _b64json(segments[1], "SET payload")


def verify_set(token, public_keys):
    """Verify a SET's PS512 signature with the key its ``kid`` names; its claims as a dict.

    Also checks the header (``typ: secevent+jwt``) and that the claims carry exactly one event and the
    ``sub``/``txn`` forms FIT-Connect uses. Raises CryptoError on anything wrong."""
    header = set_header(token)
    if header.get("alg") != SET_ALG:
        raise CryptoError(f"SET signed with alg={header.get('alg')!r}; expected {SET_ALG}")
    if header.get("typ") != SET_TYP:
        raise CryptoError(f"SET header typ={header.get('typ')!r}; expected {SET_TYP!r}")
    key = _key_for(header.get("kid"), public_keys, "verification")
    try:
        obj = jws.JWS()
        obj.allowed_algs = [SET_ALG]
        obj.deserialize(token.strip())
        obj.verify(key, alg=SET_ALG)
        claims = json.loads(obj.payload)
    except (JWException, ValueError, TypeError) as exc:
        raise CryptoError(f"SET signature does not verify with key {header.get('kid')!r}: {exc}") from exc
    _check_claims(claims)
    return claims


def _check_claims(claims):
    if not isinstance(claims, dict):
        raise CryptoError("SET payload is not a JSON object")
    for name in ("jti", "iss", "sub", "txn"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise CryptoError(f"SET claim {name!r} is missing or not a text")
    if not isinstance(claims.get("iat"), int):
        raise CryptoError("SET claim 'iat' is missing or not a number")
    if not claims["sub"].startswith("submission:") or not claims["txn"].startswith("case:"):
        raise CryptoError("SET 'sub' must be submission:<id> and 'txn' case:<caseId>")
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1 or not isinstance(next(iter(events.values())), dict):
        raise CryptoError("SET 'events' must hold exactly one event URI with an object as its payload")


def event_of(claims):
    """(event URI, payload) of a verified SET's claims."""
    return next(iter(claims["events"].items()))


def sha512_hex(content):
    """SHA-512 of ``content`` (bytes) as lower-case hex, the form the metadata's ``hash.content`` uses."""
    return hashlib.sha512(content).hexdigest()


def hash_matches(content, expected_hex):
    """Whether ``content`` has the SHA-512 ``expected_hex`` (compared in constant time, case-insensitive)."""
    if not isinstance(expected_hex, str):
        return False
    return hmac.compare_digest(sha512_hex(content), expected_hex.lower())


def callback_signature(secret, timestamp, body):
    """The ``callback-authentication`` value: hex HMAC-SHA512 over ``<timestamp>.<body>``."""
    body = body.decode("utf-8") if isinstance(body, bytes) else body
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def verify_callback(secret, timestamp, body, signature, *, now=None, max_age=300):
    """Check a callback's HMAC and that its timestamp is recent (replay protection); raise CryptoError if not.

    ``timestamp`` and ``signature`` are the ``callback-timestamp`` and ``callback-authentication`` headers,
    ``body`` the raw request body. ``max_age`` seconds (default 5 min) bounds the clock difference."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        raise CryptoError("callback-timestamp is missing or not a number") from None
    current = time.time() if now is None else now
    if abs(current - sent) > max_age:
        raise CryptoError(f"callback-timestamp is {int(current - sent)} s away from now (limit {max_age} s)")
    expected = callback_signature(secret, timestamp, body)
    if not isinstance(signature, str) or not hmac.compare_digest(expected, signature.lower()):
        raise CryptoError("callback-authentication does not match the body")
