"""HTTP clients of the FIT-Connect Submission API v2: :class:`Receiver` (the back office) and
:class:`Sender` (an online service, for demos and tests).

Both fetch an OAuth2 token with client credentials and renew it when it expires (or on one 401).
Timeouts are on by default; every httpx error becomes one of the package's exceptions (``errors.py``),
chained with ``from``. Response bodies are untrusted: their shapes are checked before they are returned.
``transport`` takes any httpx transport, e.g. ``httpx.MockTransport(handler)`` as a test double.

Typical pickup::

    with Receiver(base_url, client_id, secret) as mailbox:
        for item in mailbox.list_submissions(destination_id):
            sub = mailbox.fetch_submission(item["submissionId"])
            parts = {aid: mailbox.fetch_attachment(sub["submissionId"], aid) for aid in sub["attachments"]}
            ...decrypt, check, store...
            mailbox.post_event(sub["caseId"], crypto.make_set(...))
"""

import os
import time
from urllib.parse import quote

import httpx
from jwcrypto import jwk
from jwcrypto.common import JWException

from . import crypto
from .errors import ApiError, AuthError, Conflict, CryptoError, MailboxError, NotFoundError, Unreachable

DEFAULT_URL = "http://127.0.0.1:5001"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
JOSE = "application/jose"


def _q(value):
    """One path segment: ids come from answers and files, so they must not be able to change the path."""
    return quote(str(value), safe="")


def base_url_from_env(environ=None):
    """The Submission API base URL: ``OZGFLOW_FITCONNECT_URL``, else the local server on 127.0.0.1:5001."""
    env = os.environ if environ is None else environ
    return (env.get("OZGFLOW_FITCONNECT_URL") or DEFAULT_URL).rstrip("/")


class _Api:
    """Token handling, requests and error translation shared by both sides."""

    def __init__(self, base_url, client_id, client_secret, *, token_url=None, timeout=DEFAULT_TIMEOUT,
                 transport=None):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._token_url = token_url or f"{self.base_url}/token"
        self._token = None
        self._token_expires = 0.0
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"User-Agent": "ozgflow-fitconnect"})

    def __repr__(self):  # never show the secret or the token
        return f"{type(self).__name__}({self.base_url!r}, client_id={self.client_id!r})"

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- tokens -------------------------------------------------------------------------------------------

    def token(self):
        """A valid access token (fetched with client credentials; renewed 30 s before it expires)."""
        if self._token is None or time.monotonic() >= self._token_expires:
            form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret}
            # The body of a failed token request may echo the secret: it is never put into an error.
            response = self._send("POST", self._token_url, data=form)
            if response.status_code != 200:
                cls = AuthError if response.status_code in (400, 401, 403) else ApiError
                raise cls(f"token request for client {self.client_id!r} refused (HTTP {response.status_code})",
                          response.status_code)
            body = self._json(response, "token response")
            if not isinstance(body.get("access_token"), str) or not body["access_token"]:
                raise MailboxError("token response without access_token")
            ttl = body.get("expires_in") if isinstance(body.get("expires_in"), int) else 300
            self._token, self._token_expires = body["access_token"], time.monotonic() + max(ttl - 30, 1)
        return self._token

    # -- requests -----------------------------------------------------------------------------------------

    def _send(self, method, url, **kwargs):
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"{method} {url}: no answer within the timeout ({exc})") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {url}: {exc}") from exc

    def _call(self, method, path, expect=(200,), content_type=None, **kwargs):
        """Send with the bearer token; on 401 fetch a fresh token once. Error statuses raise."""
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.token()}"}
            if content_type:
                headers["Content-Type"] = content_type
            response = self._send(method, path, headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            break
        if response.status_code not in expect:
            raise self._error(method, path, response)
        return response

    @staticmethod
    def _error(method, path, response):
        problem = {}
        if response.headers.get("content-type", "").split(";")[0].strip() in ("application/problem+json",
                                                                             "application/json"):
            try:
                problem = response.json()
            except ValueError:
                problem = {}
        problem = problem if isinstance(problem, dict) else {}
        detail = problem.get("detail") or problem.get("title") or problem.get("error") or response.reason_phrase
        message = f"{method} {path}: HTTP {response.status_code}: {str(detail)[:500]}"
        cls = {401: AuthError, 403: AuthError, 404: NotFoundError, 409: Conflict}.get(response.status_code, ApiError)
        return cls(message, response.status_code, problem)

    @staticmethod
    def _json(response, what):
        try:
            body = response.json()
        except ValueError as exc:
            raise MailboxError(f"{what} is not JSON") from exc
        if not isinstance(body, dict):
            raise MailboxError(f"{what} is not a JSON object")
        return body

    def _get_json(self, path, what, **kwargs):
        return self._json(self._call("GET", path, **kwargs), what)

    # -- both sides ---------------------------------------------------------------------------------------

    def destination(self, destination_id):
        """The destination's description: destinationId, status, encryptionKid, services, metadataVersions."""
        body = self._get_json(f"/v2/destinations/{_q(destination_id)}", "destination")
        if not isinstance(body.get("encryptionKid"), str):
            raise MailboxError(f"destination {destination_id} names no encryptionKid")
        return body

    def destination_key(self, destination_id, kid):
        """A public key of the destination (encryption or signing) as a jwcrypto JWK."""
        body = self._get_json(f"/v2/destinations/{_q(destination_id)}/keys/{_q(kid)}", "destination key")
        return _public_jwk(body, f"key {kid} of destination {destination_id}")

    def event_log(self, case_id):
        """The compact SETs of a case, oldest first (verify them before trusting them)."""
        log = self._get_json(f"/v2/cases/{_q(case_id)}/events", "event log").get("eventLog")
        if not isinstance(log, list) or not all(isinstance(t, str) for t in log):
            raise MailboxError(f"event log of case {case_id} is not a list of tokens")
        return log

    def delivery_service_keys(self):
        """The delivery service's signing keys (``/.well-known/jwks.json``) as a jwcrypto JWKSet."""
        body = self._json(self._send("GET", "/.well-known/jwks.json"), "JWKS")
        keys = body.get("keys")
        if not isinstance(keys, list):
            raise MailboxError("JWKS without keys")
        keyset = jwk.JWKSet()
        for i, key in enumerate(keys):
            keyset.add(_public_jwk(key, f"delivery service key {i}"))
        return keyset


def _public_jwk(document, what):
    try:
        key = jwk.JWK(**document) if isinstance(document, dict) else None
    except (JWException, ValueError, TypeError) as exc:
        raise CryptoError(f"{what} is not a usable JWK: {exc}") from exc
    if key is None or key.has_private:
        raise CryptoError(f"{what} must be a public JWK")
    return key


class Receiver(_Api):
    """The receiving side: list, fetch, fetch attachments, post events, read the event log."""

    def list_submissions(self, destination_id=None, *, page_size=100):
        """Every submission waiting for pickup (``destinationId``, ``submissionId``, ``caseId``), all pages."""
        found, offset = [], 0
        while True:
            params = {"offset": offset, "limit": page_size}
            if destination_id:
                params["destinationId"] = destination_id
            body = self._get_json("/v2/submissions", "submission list", params=params)
            page = body.get("submissions")
            if not isinstance(page, list) or not all(isinstance(s, dict) and isinstance(s.get("submissionId"), str)
                                                     and isinstance(s.get("caseId"), str) for s in page):
                raise MailboxError("submission list is malformed")
            found += page
            offset += len(page)
            total = body.get("totalCount")
            if not page or not isinstance(total, int) or offset >= total:
                return found

    def fetch_submission(self, submission_id):
        """One submission: ids, serviceType, attachments (ids), encryptedMetadata, encryptedData (compact JWE)."""
        body = self._get_json(f"/v2/submissions/{_q(submission_id)}", "submission")
        attachments = body.get("attachments", [])
        if not (isinstance(body.get("caseId"), str) and isinstance(body.get("encryptedMetadata"), str)
                and isinstance(attachments, list) and all(isinstance(a, str) for a in attachments)):
            raise MailboxError(f"submission {submission_id} is malformed")
        return body

    def fetch_attachment(self, submission_id, attachment_id):
        """One attachment of a submission as compact JWE text."""
        return self._call("GET", f"/v2/submissions/{_q(submission_id)}/attachments/{_q(attachment_id)}").text.strip()

    def post_event(self, case_id, set_token):
        """Post a signed SET (accept-submission / reject-submission).

        Raises Conflict when the submission already has its accept or reject, ApiError (422) when the
        delivery service refuses the event (e.g. its signature does not verify)."""
        self._call("POST", f"/v2/cases/{_q(case_id)}/events", expect=(200, 201, 202, 204),
                   content=set_token.encode("utf-8"), content_type=JOSE)


class Sender(_Api):
    """The sending side, as an online service uses it: destination and key, announce, upload, submit."""

    def announce(self, destination_id, service, attachment_ids, case_id=None):
        """Announce a submission; ``service`` is ``{"name", "identifier"}``. Returns submissionId and caseId."""
        body = {"destinationId": destination_id, "announcedAttachments": list(attachment_ids),
                "publicService": service}
        if case_id:
            body["caseId"] = case_id
        answer = self._json(self._call("POST", "/v2/submissions", expect=(201,), json=body), "announcement")
        if not isinstance(answer.get("submissionId"), str) or not isinstance(answer.get("caseId"), str):
            raise MailboxError("announcement answer without submissionId/caseId")
        return answer

    def upload_attachment(self, submission_id, attachment_id, encrypted):
        """Upload one attachment (compact JWE)."""
        self._call("PUT", f"/v2/submissions/{_q(submission_id)}/attachments/{_q(attachment_id)}", expect=(200, 204),
                   content=encrypted.encode("utf-8"), content_type=JOSE)

    def submit(self, submission_id, encrypted_metadata, encrypted_data):
        """Hand in metadata and data (compact JWEs): the submission is complete and ready for pickup."""
        self._call("PUT", f"/v2/submissions/{_q(submission_id)}", expect=(200, 204),
                   json={"encryptedMetadata": encrypted_metadata, "encryptedData": encrypted_data})

    def send(self, destination_id, *, service, metadata, data, attachments):
        """Encrypt and deliver one whole submission; returns ``{"submissionId", "caseId", "destinationId"}``.

        ``metadata`` and ``data`` are the plaintext bytes (JSON), ``attachments`` maps attachment id -> bytes.
        Each part is encrypted to the destination's current encryption key."""
        kid = self.destination(destination_id)["encryptionKid"]
        key = self.destination_key(destination_id, kid)
        encrypted = {aid: crypto.encrypt(content, key) for aid, content in attachments.items()}
        encrypted_metadata = crypto.encrypt(metadata, key, cty="application/json")
        encrypted_data = crypto.encrypt(data, key, cty="application/json")
        ids = self.announce(destination_id, service, list(encrypted))
        for aid, token in encrypted.items():
            self.upload_attachment(ids["submissionId"], aid, token)
        self.submit(ids["submissionId"], encrypted_metadata, encrypted_data)
        return {"submissionId": ids["submissionId"], "caseId": ids["caseId"], "destinationId": destination_id}
