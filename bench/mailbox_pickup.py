"""Scenario ``mailbox_pickup``: submissions per second from "submitted" to "case started and accept sent".

Ours: N submissions of the Marburg sample (RSA-4096 destination keys, as in production) wait in the
local FIT-Connect server; one timed pickup round fetches them over HTTP, verifies the delivery service's
events and the authentication tags, decrypts and hash-checks every part, validates the metadata, stores
submission, documents and case in one transaction, reads the event log and posts a signed accept.

The baseline, in the same run: the bare cryptography of the same submission with jwcrypto alone — the
decryption of its metadata, data and attachments and the signature of one accept event. RSA-4096 dominates
(about 11 ms per unwrap, 17 ms per signature here), so ``ratio`` says how much everything we add costs
next to it (goal ≥ 0.7). The pickup works a few submissions at a time (``OZGFLOW_MAILBOX_PARALLEL``, 4);
the row ``submissions_per_s_one_at_a_time`` shows the same with one at a time.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from connectors.fitconnect import crypto
from connectors.fitconnect.application import DEMO_APPLICATIONS, load_application
from connectors.fitconnect.client import Sender
from connectors.fitconnect.keys import ensure_demo_keys, key_folder
from engine import migrate
from engine.config import DEFAULT_TENANTS, PROJECT_ROOT, Settings
from engine.deploy import bundles_from_paths, deploy
from engine.intake import poll_all
from engine.runtime import Runtime
from engine.tenants import load_tenants

from .results import RESULTS_FILE, row

SCENARIO = "mailbox_pickup"
TENANT = "marburg"
SAMPLE = next(p for p in DEMO_APPLICATIONS if p.stem.endswith("_marburg"))


def run(quick=False):
    n = 3 if quick else 40
    tenants = load_tenants(DEFAULT_TENANTS)
    parent = RESULTS_FILE.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=parent) as tmp:
        var = Path(tmp).resolve()
        ensure_demo_keys(var, tenants)  # Marburg: the sample's published RSA-4096 test keys
        rt = Runtime(Settings(var_dir=var, database_url=f"sqlite:///{var / 'ozgflow.sqlite'}",
                              tenants_file=DEFAULT_TENANTS, processes_dir=PROJECT_ROOT / "processes"),
                     tenants=tenants)
        try:
            migrate.upgrade(rt.db)
            deploy(rt, bundles_from_paths([PROJECT_ROOT / "processes"]))
            with mailbox_server(var) as url:  # its own process, as the real one is: no shared GIL
                send(url, tenants, 2)
                poll_all(rt, tenant=TENANT, base_url=url)  # warm up: imports, keys, connections
                ours = timed_round(rt, url, tenants, n, parallel=None)
                sequential = timed_round(rt, url, tenants, n, parallel=1)
            bare = n / bare_seconds(var, tenants, n)
        finally:
            rt.close()
    return [
        row(SCENARIO, "submissions_per_s", ours, "submissions/s", "jwcrypto_only", ours / bare),
        row(SCENARIO, "jwcrypto_only_submissions_per_s", bare, "submissions/s"),
        row(SCENARIO, "submissions_per_s_one_at_a_time", sequential, "submissions/s", "jwcrypto_only",
            sequential / bare),
    ]


def timed_round(rt, url, tenants, n, parallel):
    """Submissions per second of one pickup round over ``n`` fresh submissions."""
    send(url, tenants, n)
    started = time.perf_counter()
    report = poll_all(rt, tenant=TENANT, base_url=url, parallel=parallel)
    rate = n / (time.perf_counter() - started)
    if len(report.accepted) != n or report.errors:
        raise RuntimeError(f"pickup did not accept all {n} submissions: {report.as_dict()}")
    return rate


@contextmanager
def mailbox_server(var):
    """``ozgflow mailbox-server`` on a free loopback port, stopped afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OZGFLOW_VAR": str(var)}
    proc = subprocess.Popen([sys.executable, "-m", "ozgflow", "mailbox-server", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/.well-known/jwks.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the mailbox server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def send(url, tenants, n):
    outgoing = load_application(SAMPLE)
    destination = tenants.get(TENANT).destinations[0].id
    with Sender(url, "demo-sender", "demo-sender-secret") as sender:
        for _ in range(n):
            sender.send(destination, service=outgoing.service, metadata=outgoing.metadata, data=outgoing.data,
                        attachments=outgoing.attachments)


def bare_seconds(var, tenants, n):
    """The same decryptions and one accept signature per submission, with jwcrypto alone."""
    destination = tenants.get(TENANT).destinations[0]
    keys = key_folder(var, destination)
    public, private, signing = keys.encryption_public_key(), keys.encryption_private_key(), keys.signing_private_key()
    out = load_application(SAMPLE)
    parts = [crypto.encrypt(out.metadata, public, cty="application/json"),
             crypto.encrypt(out.data, public, cty="application/json"),
             *(crypto.encrypt(content, public) for content in out.attachments.values())]
    started = time.perf_counter()
    for _ in range(n):
        for token in parts:
            crypto.decrypt(token, [private])
        crypto.make_set(signing, issuer=destination.id, submission_id="s", case_id="c",
                        event=crypto.ACCEPT_SUBMISSION, payload={"authenticationTags": {}})
    return time.perf_counter() - started
