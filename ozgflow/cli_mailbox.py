"""``ozgflow mailbox-server`` and ``ozgflow mailbox …``: the local FIT-Connect server and sending to it.

``mailbox-server`` runs the stand-in delivery service (connectors/fitconnect/server.py) for every
destination of the tenant file, with the public keys ``ozgflow init`` wrote to ``var/keys/``.
``mailbox send`` plays an online service: it encrypts a decrypted application file to the destination's
key, announces, uploads the attachments and submits over HTTP.

Environment (besides the engine's OZGFLOW_VAR and OZGFLOW_TENANTS):

| variable                                    | default                                   |
|---------------------------------------------|-------------------------------------------|
| OZGFLOW_FITCONNECT_URL                      | http://127.0.0.1:5001 (the local server)  |
| OZGFLOW_FITCONNECT_SENDER_ID                | demo-sender                               |
| OZGFLOW_FITCONNECT_SENDER_SECRET            | demo-sender-secret                        |
| OZGFLOW_FITCONNECT_SERVER_CALLBACK_URL      | none: no new-submission callbacks         |
| OZGFLOW_FITCONNECT_SERVER_CALLBACK_SECRET   | none (needed with a callback URL)         |
"""

import os
from functools import wraps
from pathlib import Path

import click

from engine.errors import OzgflowError
from ozgflow.cli import emit, handles_errors, json_option


def mailbox_errors(fn):
    """The connector's errors become engine errors, so ``handles_errors`` reports them the usual way."""
    from connectors.fitconnect.errors import MailboxError

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MailboxError as exc:
            raise OzgflowError(str(exc)) from exc

    return wrapper


def _settings_and_tenants():
    from engine.config import Settings
    from engine.tenants import load_tenants

    settings = Settings.from_env()
    return settings, load_tenants(settings.tenants_file)


@click.command("mailbox-server")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="SQLite file of the server (default: <OZGFLOW_VAR>/fitconnect-server.sqlite).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--callback-url",
              help="Announce new submissions here (secret: OZGFLOW_FITCONNECT_SERVER_CALLBACK_SECRET).")
@json_option
@handles_errors
@mailbox_errors
def mailbox_server(db_path, host, port, callback_url, as_json):
    """Run the local FIT-Connect server (sender and receiver side of the Submission API v2)."""
    from connectors.fitconnect.server import create_app
    from ozgflow.server import serve_app

    settings, tenants = _settings_and_tenants()
    config = {"DATABASE": str(db_path or settings.var_dir / "fitconnect-server.sqlite"),
              "VAR_DIR": str(settings.var_dir), "DESTINATIONS": tenants.destinations,
              "SERVICE_NAMES": {b.leika: b.name for b in tenants.bindings if b.name}}
    if callback_url:
        config["CALLBACK_URL"] = callback_url
    app = create_app(config)
    if as_json:  # one document on stdout; the server's own logs go to stderr
        emit(True, {"url": f"http://{host}:{port}", "destinations": [d.id for d in tenants.destinations],
                    "store": app.config["DATABASE"]}, "")
    click.echo(f"FIT-Connect server on http://{host}:{port} for {len(tenants.destinations)} destinations "
               f"(store {app.config['DATABASE']})", err=True)
    serve_app(lambda: app, host, port)  # one process: the store and the signing key are its own


@click.group()
def mailbox():
    """The OZG mailbox (FIT-Connect): send test applications."""


@mailbox.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="Tenant id, e.g. marburg.")
@click.option("--destination", "destination_id", help="Destination id (default: the tenant's destination "
                                                       "that accepts the application's service).")
@json_option
@handles_errors
@mailbox_errors
def mailbox_send(file, tenant, destination_id, as_json):
    """Encrypt a decrypted application (application_*.json) and submit it as an online service would."""
    from connectors.fitconnect.application import load_application
    from connectors.fitconnect.client import Sender, base_url_from_env

    _, tenants = _settings_and_tenants()
    outgoing = load_application(file)
    destination = _pick_destination(tenants.get(tenant), destination_id, outgoing.leika)
    sender = Sender(base_url_from_env(), os.environ.get("OZGFLOW_FITCONNECT_SENDER_ID") or "demo-sender",
                    os.environ.get("OZGFLOW_FITCONNECT_SENDER_SECRET") or "demo-sender-secret")
    with sender:
        sent = sender.send(destination.id, service=outgoing.service, metadata=outgoing.metadata,
                           data=outgoing.data, attachments=outgoing.attachments)
    doc = {**sent, "tenant": tenant, "service": outgoing.leika, "attachments": len(outgoing.attachments)}
    emit(as_json, doc, f"submission {sent['submissionId']} case {sent['caseId']} -> {tenant} "
                       f"(destination {destination.id}, service {outgoing.leika}, "
                       f"{len(outgoing.attachments)} attachments)")


def _pick_destination(tenant, destination_id, leika):
    if destination_id:
        for d in tenant.destinations:
            if d.id == destination_id:
                return d
        raise OzgflowError(f"tenant {tenant.id} has no destination {destination_id}")
    for d in tenant.destinations:
        if leika in d.services:
            return d
    raise OzgflowError(f"no destination of tenant {tenant.id} accepts the service {leika}")


def register(main):
    """Add the commands of this module to the ``ozgflow`` group."""
    main.add_command(mailbox_server)
    main.add_command(mailbox)
