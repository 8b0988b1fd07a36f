"""Decrypted applications (the ``application_*.json`` shape of the demo data) turned into parts to send.

An application file holds ``metadata`` (FIT-Connect metadata), ``data`` (the Fachdaten) and
``attachmentFiles`` (attachment id -> file path, relative to the application file). :func:`load_application`
reads one and returns the plaintext parts a sender encrypts: the data serialized as
``json.dumps(data, ensure_ascii=False, indent=2)`` (the exact bytes of the samples), the attachments' bytes,
and the metadata with the SHA-512 of data and attachments filled in — a sender computes those hashes,
so the metadata always matches what is sent. Files are untrusted: sizes are bounded and attachment paths
must stay inside the application file's folder.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .crypto import sha512_hex
from .errors import MailboxError
from .keys import DEMO_DIR

MAX_APPLICATION_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
LEIKA = re.compile(r"(?:urn:de:fim:leika:leistung:)?(\d{14})")
DEMO_APPLICATIONS = tuple(sorted(DEMO_DIR.glob("application_*.json")))


@dataclass(frozen=True)
class Outgoing:
    """The plaintext parts of one submission, ready to encrypt."""

    service: dict  # {"name", "identifier"}
    leika: str  # the 14-digit LeiKa key of the service
    metadata: bytes
    data: bytes
    attachments: dict  # attachment id -> bytes


def load_application(path):
    """Read an application file and return its Outgoing parts; MailboxError naming the problem if unusable."""
    path = Path(path)
    app = _read_json(path)
    metadata, data = app.get("metadata"), app.get("data")
    if not isinstance(metadata, dict) or not isinstance(data, dict):
        raise MailboxError(f"{path}: an application needs 'metadata' and 'data' objects")
    service = metadata.get("publicServiceType") or (app.get("submission") or {}).get("serviceType")
    match = LEIKA.fullmatch(str((service or {}).get("identifier", "")))
    if not match:
        raise MailboxError(f"{path}: metadata.publicServiceType.identifier is not a LeiKa key")
    data_bytes = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    metadata = json.loads(json.dumps(metadata))  # a copy to fill in the hashes
    structure = metadata.setdefault("contentStructure", {})
    structure.setdefault("data", {})["hash"] = {"type": "sha512", "content": sha512_hex(data_bytes)}
    files = app.get("attachmentFiles") or {}
    attachments = {}
    for entry in structure.get("attachments") or []:
        aid = entry.get("attachmentId") if isinstance(entry, dict) else None
        if not isinstance(aid, str) or not isinstance(files.get(aid), str):
            raise MailboxError(f"{path}: attachment {aid!r} has no file in attachmentFiles")
        attachments[aid] = _read_attachment(path.parent, files[aid])
        entry["hash"] = {"type": "sha512", "content": sha512_hex(attachments[aid])}
    return Outgoing(service={"name": str(service.get("name") or ""), "identifier": service["identifier"]},
                    leika=match.group(1), metadata=json.dumps(metadata, ensure_ascii=False).encode("utf-8"),
                    data=data_bytes, attachments=attachments)


def _read_json(path):
    try:
        if path.stat().st_size > MAX_APPLICATION_BYTES:
            raise MailboxError(f"{path}: larger than {MAX_APPLICATION_BYTES} bytes")
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MailboxError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise MailboxError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise MailboxError(f"{path}: the JSON must be an object")
    return value


def _read_attachment(folder, relative):
    base = folder.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise MailboxError(f"attachment path {relative!r} leaves the application's folder")
    try:
        if target.stat().st_size > MAX_ATTACHMENT_BYTES:
            raise MailboxError(f"{target}: larger than {MAX_ATTACHMENT_BYTES} bytes")
        return target.read_bytes()
    except OSError as exc:
        raise MailboxError(f"{target}: {exc.strerror or exc}") from exc
