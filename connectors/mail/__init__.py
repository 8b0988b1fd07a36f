"""Outgoing e-mail to citizens: building the message, PGP/MIME encryption, SMTP or ``.eml`` files.

Settings come from the tenant file: ``[tenants.<id>.mail]`` over ``[defaults.mail]`` (keys ``from_address``,
``smtp_host``, ``smtp_port``, ``smtp_user``, ``smtp_password_env``, ``starttls``); the environment variables
``OZGFLOW_SMTP_HOST`` and ``OZGFLOW_SMTP_PORT`` override host and port. With no SMTP host anywhere (as with
``make run``) every mail is written to ``<var>/mail/<tenant>/`` as an ``.eml`` file instead.

Encryption is PGP/MIME (RFC 3156) to the citizen's ``pgpPublicKey`` from the submission's reply channel,
done by GnuPG (python-gnupg, ``/usr/bin/gpg``) in a temporary keyring that is removed afterwards. A key that
cannot be imported or used is an error: the mail is never sent in clear instead.

Sending happens outside any database transaction (``engine.dispatch`` calls it from a background job).
"""

import copy
import os
import shutil
import smtplib
import ssl
import tempfile
import tomllib
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from engine.files import write_atomically

DEFAULT_FROM = "noreply@ozgflow.invalid"
GPG_BINARY = os.environ.get("OZGFLOW_GPG", "/usr/bin/gpg")
SMTP_TIMEOUT_SECONDS = 30
ENVELOPE = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


class MailError(Exception):
    """A mail could not be encrypted or sent (the job retries it)."""


def _file_defaults(path):
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8")).get("defaults", {}).get("mail", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def mail_settings(rt, tenant, environ=None):
    """The mail settings of ``tenant``: defaults, the tenant's table, then the environment."""
    env = os.environ if environ is None else environ
    merged = {"from_address": DEFAULT_FROM, "smtp_host": None, "smtp_port": 25, "smtp_user": None,
              "smtp_password_env": None, "starttls": False,
              **_file_defaults(rt.settings.tenants_file), **(rt.tenants.get(tenant).settings.get("mail") or {})}
    if env.get("OZGFLOW_SMTP_HOST"):
        merged["smtp_host"] = env["OZGFLOW_SMTP_HOST"]
    if env.get("OZGFLOW_SMTP_PORT"):
        merged["smtp_port"] = int(env["OZGFLOW_SMTP_PORT"])
    merged["outbox"] = Path(rt.settings.var_dir) / "mail" / tenant
    return merged


def build_message(sender, recipient, subject, body, attachments=()):
    """A MIME message: a text part and ``attachments`` of (filename, mime type, bytes)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] if "@" in sender else None)
    msg.set_content(body)
    for filename, mime, content in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return msg


def encrypt(msg, public_key):
    """``msg`` as PGP/MIME (RFC 3156 multipart/encrypted) to ``public_key`` (ASCII-armored); the envelope
    headers (From, To, Subject, Date, Message-ID) stay readable, everything else is inside."""
    import gnupg

    home = tempfile.mkdtemp(prefix="ozgflow-gpg-")
    try:
        gpg = gnupg.GPG(gnupghome=home, gpgbinary=GPG_BINARY)
        imported = gpg.import_keys(public_key)
        if not imported.fingerprints:
            raise MailError(f"the citizen's PGP key could not be imported: {imported.stderr.strip()[-200:]}")
        inner = copy.deepcopy(msg)
        for header in ENVELOPE:
            del inner[header]
        payload = inner.as_bytes(policy=SMTP)
        result = gpg.encrypt(payload, imported.fingerprints, always_trust=True, armor=True)
        if not result.ok:
            raise MailError(f"encryption to the citizen's PGP key failed: {result.status}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    outer = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    for header in ENVELOPE:
        if msg[header]:
            outer[header] = msg[header]
    control = MIMEBase("application", "pgp-encrypted")
    control.set_payload("Version: 1\n")
    control["Content-Description"] = "PGP/MIME version identification"
    outer.attach(control)
    data = MIMEBase("application", "octet-stream", name="encrypted.asc")
    data.set_payload(str(result))
    data["Content-Description"] = "OpenPGP encrypted message"
    data["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    outer.attach(data)
    return outer


def deliver(settings, msg):
    """Send ``msg`` by SMTP, or write it as ``.eml`` when no host is configured.
    Returns {"via": "smtp", "host": …} or {"via": "file", "path": …}."""
    if not settings.get("smtp_host"):
        msgid = (msg["Message-ID"] or "mail").strip("<>").replace("/", "_").replace("@", "_at_")
        target = write_atomically(Path(settings["outbox"]) / f"{msgid}.eml", msg.as_bytes(policy=SMTP))
        return {"via": "file", "path": str(target)}
    host, port = settings["smtp_host"], int(settings.get("smtp_port") or 25)
    password = os.environ.get(settings["smtp_password_env"]) if settings.get("smtp_password_env") else None
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            if _truthy(settings.get("starttls")):
                smtp.starttls(context=ssl.create_default_context())
            if settings.get("smtp_user") and password:
                smtp.login(settings["smtp_user"], password)
            refused = smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP {host}:{port}: {exc.__class__.__name__}: {exc}") from exc
    if refused:
        raise MailError(f"SMTP {host}:{port} refused recipients: {sorted(refused)}")
    return {"via": "smtp", "host": f"{host}:{port}"}


def _truthy(value):
    return value is True or str(value).strip().lower() in ("true", "1", "yes")
