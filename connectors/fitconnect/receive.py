"""Receiving one submission: fetch every part, check it the way FIT-Connect requires, say what is wrong.

``MailboxSource`` is the small interface the engine's pickup (``engine.intake``) works with; this module's
``FitConnectSource`` is the real one, over HTTP to any Submission API (the local server included).

The checks, in FIT-Connect's order (docs "Einreichung überprüfen"): the delivery service's own
``submit-submission`` event verifies and names the authentication tags of exactly the parts we fetched;
every part decrypts; the metadata is JSON and valid against the metadata schema (1.0.0; later 1.x versions
are checked against it leniently); the service is one the destination offers; announced and described
attachments agree; data and every attachment match their SHA-512 from the metadata; no part is larger than
the limit. Each failure becomes a problem with FIT-Connect's problem ``type`` and ``instance``; a
submission with problems is rejected, never dropped.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from jsonschema import Draft202012Validator

from . import crypto
from .errors import CryptoError
from .keys import key_folder

METADATA_SCHEMA = Path(__file__).resolve().parent / "schemas" / "fit-connect-metadata-1.0.0.schema.json"
METADATA_1X = re.compile(r"^https://schema\.fitko\.de/fit-connect/metadata/1\.\d+\.\d+/metadata\.schema\.json$")
LEIKA = re.compile(r"(\d{14})$")
DEFAULT_MAX_PART_BYTES = 50 * 1024 * 1024


def problem(name, title, detail, instance):
    """A problem of a reject-submission event (RFC 7807 style, as FIT-Connect defines them)."""
    return {"type": crypto.PROBLEMS + name, "title": title, "detail": detail, "instance": instance}


@dataclass
class Received:
    """One fetched submission: raw parts as delivered, what decrypted, and the problems found."""

    submission_id: str
    case_id: str  # FIT-Connect caseId: the correlation key of the procedure
    destination_id: str
    raw: dict  # {"encryptedMetadata", "encryptedData", "attachments": {id: JWE}}
    metadata: dict | None = None
    data: dict | None = None
    data_bytes: bytes | None = None
    attachments: dict = field(default_factory=dict)  # id -> (bytes, metadata entry)
    service: str | None = None  # LeiKa key
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def tags(self):
        """The authentication tags of the parts as received (for the accept event)."""
        return crypto.authentication_tags(self.raw["encryptedMetadata"], self.raw["encryptedData"],
                                          self.raw["attachments"])


class MailboxSource(Protocol):
    """What the pickup needs from a mailbox (one destination)."""

    destination_id: str

    def pending(self) -> list:
        """Submissions ready for pickup: dicts with ``submissionId`` and ``caseId``."""

    def receive(self, submission_id) -> Received:
        """Fetch and check one submission. Content problems are in ``Received.problems``; transport
        failures raise ``MailboxError``."""

    def answer_in_log(self, case_id, submission_id) -> str | None:
        """``"accept"``/``"reject"`` when our answer to the submission is already in the case's event log."""

    def answer(self, received_ids, accept, problems=None, tags=None) -> None:
        """Post accept-submission (with ``tags``) or reject-submission (with ``problems``)."""


class FitConnectSource:
    """The real mailbox of one destination, over the FIT-Connect Submission API."""

    def __init__(self, receiver, destination, var_dir, max_part_bytes=DEFAULT_MAX_PART_BYTES):
        self.receiver = receiver
        self.destination = destination
        self.destination_id = destination.id
        self.keys = key_folder(var_dir, destination)
        self.max_part_bytes = max_part_bytes
        self._delivery_keys = None
        self._loaded = {}

    def _key(self, purpose, private=False):
        """A key of the destination, loaded once: turning a 4096-bit private JWK into a usable key costs
        about a third of a second (the RSA key check), far more than using it."""
        if (purpose, private) not in self._loaded:
            self._loaded[(purpose, private)] = self.keys.load(purpose, private)
        return self._loaded[(purpose, private)]

    def pending(self):
        return self.receiver.list_submissions(self.destination_id)

    def receive(self, submission_id):
        sub = self.receiver.fetch_submission(submission_id)
        raw = {"encryptedMetadata": sub["encryptedMetadata"], "encryptedData": sub.get("encryptedData") or "",
               "attachments": {aid: self.receiver.fetch_attachment(submission_id, aid)
                               for aid in sub.get("attachments", [])}}
        received = Received(submission_id, sub["caseId"], sub.get("destinationId", self.destination_id), raw)
        self._check(received, sub)
        return received

    # -- answering ---------------------------------------------------------------------------------------

    def answer_in_log(self, case_id, submission_id):
        signing = self._key("signing")
        for token in self.receiver.event_log(case_id):
            try:
                claims = crypto.verify_set(token, [signing])
            except CryptoError:
                continue  # not ours (the delivery service signs its own events with another key)
            if claims["sub"] != f"submission:{submission_id}":
                continue
            event, _payload = crypto.event_of(claims)
            if event == crypto.ACCEPT_SUBMISSION:
                return "accept"
            if event == crypto.REJECT_SUBMISSION:
                return "reject"
        return None

    def answer(self, received_ids, accept, problems=None, tags=None):
        submission_id, case_id = received_ids
        event = crypto.ACCEPT_SUBMISSION if accept else crypto.REJECT_SUBMISSION
        payload = {"authenticationTags": tags} if accept else {"problems": problems}
        token = crypto.make_set(self._key("signing", private=True), issuer=self.destination_id,
                                submission_id=submission_id, case_id=case_id, event=event, payload=payload)
        self.receiver.post_event(case_id, token)

    # -- checks ------------------------------------------------------------------------------------------

    def _check(self, r, sub):
        sizes = {"metadata": r.raw["encryptedMetadata"], "data": r.raw["encryptedData"],
                 **{f"attachment:{aid}": t for aid, t in r.raw["attachments"].items()}}
        for instance, token in sizes.items():
            segments = token.split(".")
            ciphertext = segments[3] if len(segments) == 5 else token  # GCM: as long as the plaintext
            if len(ciphertext) * 3 // 4 > self.max_part_bytes:
                r.problems.append(problem("technical-error", "Teil zu groß",
                                          f"{instance} exceeds the limit of {self.max_part_bytes} bytes", instance))
        if r.problems:
            return
        if not self._check_tags(r):
            return
        private = self._key("encryption", private=True)
        r.metadata = self._decrypt_json(r, r.raw["encryptedMetadata"], private, "metadata")
        if r.metadata is None or not self._check_metadata(r, sub):
            return
        r.data_bytes = self._decrypt(r, r.raw["encryptedData"], private, "data")
        if r.data_bytes is not None:
            expected = ((r.metadata["contentStructure"].get("data") or {}).get("hash") or {}).get("content")
            if not crypto.hash_matches(r.data_bytes, expected):
                r.problems.append(problem("hash-mismatch", "Prüfsumme stimmt nicht",
                                          "the SHA-512 of the data does not match the metadata", "data"))
            else:
                r.data = self._json(r, r.data_bytes, "data")
        described = {a["attachmentId"]: a for a in r.metadata["contentStructure"].get("attachments", [])}
        for aid, token in r.raw["attachments"].items():
            content = self._decrypt(r, token, private, f"attachment:{aid}")
            if content is None:
                continue
            if not crypto.hash_matches(content, (described[aid].get("hash") or {}).get("content")):
                r.problems.append(problem("hash-mismatch", "Prüfsumme stimmt nicht",
                                          f"the SHA-512 of attachment {aid} does not match the metadata",
                                          f"attachment:{aid}"))
                continue
            r.attachments[aid] = (content, described[aid])

    def _check_tags(self, r):
        """The delivery service's submit-submission event must verify and name our parts' tags."""
        try:
            keys = self._delivery_service_keys()
            tags = None
            for token in self.receiver.event_log(r.case_id):
                # A case's log also holds other submissions' events (a follow-up in the same case) and the
                # destination's own answers, signed with other keys: verify the ones this check relies on.
                _header, unverified = crypto.read_set(token)
                unverified = unverified if isinstance(unverified, dict) else {}
                events = unverified.get("events") if isinstance(unverified.get("events"), dict) else {}
                if unverified.get("sub") != f"submission:{r.submission_id}" or crypto.SUBMIT_SUBMISSION not in events:
                    continue  # another submission's event, or an answer: not what this check relies on
                claims = crypto.verify_set(token, keys)
                event, payload = crypto.event_of(claims)
                if event == crypto.SUBMIT_SUBMISSION and claims["sub"] == f"submission:{r.submission_id}":
                    tags = payload.get("authenticationTags")
        except CryptoError as exc:
            r.problems.append(problem("invalid-event-log", "Ereignisprotokoll ungültig",
                                      f"an event of the delivery service does not verify: {exc}", "submission"))
            return False
        if not isinstance(tags, dict):
            r.problems.append(problem("missing-authentication-tags", "Authentication-Tags fehlen",
                                      "the submit-submission event names no authentication tags", "submission"))
            return False
        try:
            mine = r.tags()
        except CryptoError as exc:
            r.problems.append(problem("encryption-issue", "Entschlüsselungsfehler", str(exc), "submission"))
            return False
        for part in ("metadata", "data"):
            if tags.get(part) != mine[part]:
                r.problems.append(problem("incorrect-authentication-tag", "Authentication-Tag ungültig",
                                          f"the authentication tag of the {part} differs from the delivery "
                                          "service's submit-submission event", part))
        their = tags.get("attachments") or {}
        for aid, tag in mine["attachments"].items():
            if their.get(aid) != tag:
                r.problems.append(problem("incorrect-authentication-tag", "Authentication-Tag ungültig",
                                          f"the authentication tag of attachment {aid} differs from the "
                                          "delivery service's submit-submission event", f"attachment:{aid}"))
        return not r.problems

    def _delivery_service_keys(self):
        if self._delivery_keys is None:
            self._delivery_keys = self.receiver.delivery_service_keys()
        return self._delivery_keys

    def _decrypt(self, r, token, private, instance):
        try:
            return crypto.decrypt(token, [private])
        except CryptoError as exc:
            r.problems.append(problem("encryption-issue", "Entschlüsselungsfehler",
                                      f"the {instance} cannot be decrypted: {exc}", instance))
            return None

    def _json(self, r, content, instance):
        try:
            value = json.loads(content)
        except ValueError as exc:
            r.problems.append(problem("syntax-violation", "Syntax-Fehler", f"the {instance} is not JSON: {exc}",
                                      instance))
            return None
        if not isinstance(value, dict):
            r.problems.append(problem("syntax-violation", "Syntax-Fehler", f"the {instance} is not a JSON object",
                                      instance))
            return None
        return value

    def _decrypt_json(self, r, token, private, instance):
        content = self._decrypt(r, token, private, instance)
        return None if content is None else self._json(r, content, instance)

    def _check_metadata(self, r, sub):
        declared = r.metadata.get("$schema")
        if declared is not None and not METADATA_1X.match(str(declared)):
            r.problems.append(problem("unsupported-schema", "Schema nicht unterstützt",
                                      f"metadata schema {declared!r} is not a FIT-Connect metadata schema 1.x",
                                      "metadata"))
            return False
        errors = sorted(_metadata_validator().iter_errors(r.metadata), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            r.problems.append(problem("schema-violation", "Schema-Fehler",
                                      f"the metadata does not match the metadata schema at {where}: "
                                      f"{errors[0].message}", "metadata"))
            return False
        service = (r.metadata.get("publicServiceType") or sub.get("serviceType") or {}).get("identifier", "")
        match = LEIKA.search(str(service))
        r.service = match.group(1) if match else None
        if r.service not in self.destination.services:
            r.problems.append(problem("service-mismatch", "Verwaltungsleistung nicht unterstützt",
                                      f"the service {service!r} is not offered at destination {self.destination_id}",
                                      "metadata"))
        described = {a.get("attachmentId") for a in r.metadata["contentStructure"].get("attachments", [])}
        delivered = set(r.raw["attachments"])
        if described != delivered:
            missing, extra = sorted(described - delivered), sorted(delivered - described)
            r.problems.append(problem("attachments-mismatch", "Anlagen stimmen nicht überein",
                                      f"attachments described but not delivered: {missing or 'none'}; "
                                      f"delivered but not described: {extra or 'none'}", "metadata"))
        return not r.problems


_VALIDATOR = []


def _metadata_validator():
    if not _VALIDATOR:
        schema = json.loads(METADATA_SCHEMA.read_text(encoding="utf-8"))
        _VALIDATOR.append(Draft202012Validator(schema))
    return _VALIDATOR[0]
