"""``ozgflow up``: everything a newcomer needs, in one command (``make run`` calls it after ``init``).

Starts, as child processes of this one:
- the local FIT-Connect server (``ozgflow mailbox-server``) on 127.0.0.1:5001 (``--mailbox-port``), unless
  ``OZGFLOW_FITCONNECT_URL`` points at another Submission API;
- the background worker (``ozgflow worker``): mailbox pickup, timers, jobs;
- the web server (``ozgflow serve``) on the given host and port;
and, for a first look, creates demo users in every city (once; their credentials are printed at every
start) and seeds the demo cases once (``ozgflow/demo.py``, plan ``ozgflow/demo_plan.json``, marker
``var/.demo-seeded``): sample applications sent to the local mailbox and cases of every model at different
stages — received, in progress, waiting, closed and in the E-Akte. Ctrl-C stops all of them.
"""

import os
import secrets
import signal
import subprocess
import sys
import time

import click

from ozgflow.cli import emit, handles_errors, json_option, main


def _child(*args):
    # The children write to our stderr: with --json, stdout carries exactly one document, ours.
    return subprocess.Popen([sys.executable, "-m", "ozgflow", *args], stdout=sys.stderr)


def _local(host):
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _wait_for(url, seconds=30):
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--mailbox-port", default=5001, show_default=True, type=int, help="Port of the local mailbox.")
@click.option("--no-demo", is_flag=True, help="No demo users, no sample applications.")
@json_option
@handles_errors
def up(host, port, mailbox_port, no_demo, as_json):
    """Start the local mailbox, the worker and the web server together (Ctrl-C stops all)."""
    from engine.config import Settings
    from engine.tenants import load_tenants
    from ozgflow.cli import runtime

    load_tenants(Settings.from_env().tenants_file)  # a broken tenant file stops us here, before any child starts
    local = f"http://127.0.0.1:{mailbox_port}"
    url = os.environ.get("OZGFLOW_FITCONNECT_URL", local).rstrip("/")
    if not no_demo:
        from ozgflow.demo import credentials, demo_users

        rt = runtime()
        for line in credentials(rt, demo_users(rt)):
            click.echo(line, err=True)
        rt.close()
    children = []

    def stop(*_):
        raise KeyboardInterrupt  # SIGTERM ends us like Ctrl-C: the children are stopped below

    signal.signal(signal.SIGTERM, stop)
    try:
        _start(children, host, port, url, local)
        if url == local and not no_demo:
            _wait_for(f"http://{_local(host)}:{port}/health")  # so the mailbox's callbacks find us
            _seed(url)  # before the worker starts: the demo's own pickups and steps, in plan order
        children.append(_child("worker"))
        click.echo(f"ozgflow runs on http://{host}:{port}  (mailbox {url}; Ctrl-C stops everything)", err=True)
        if as_json:  # one document on stdout once everything runs; the children log to stderr
            emit(True, {"url": f"http://{host}:{port}", "mailbox": url,
                        "pids": [c.pid for c in children]}, "")
            sys.stdout.flush()
        _supervise(children)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)


def _seed(url):
    """The demo cases, once (ozgflow/demo_plan.json): through the local mailbox and the engine."""
    from ozgflow.cli import runtime
    from ozgflow.demo import seed

    rt = runtime()
    try:
        started = time.monotonic()
        report = seed(rt, url, note=lambda text: click.echo(text, err=True))
        if report is not None:
            click.echo(f"demo: {len(report['cases'])} cases seeded in {time.monotonic() - started:.1f} s "
                       f"({len(report['skipped'])} plan entries skipped); the list is in var/.demo-seeded", err=True)
    finally:
        rt.close()


def _start(children, host, port, url, local):
    if url == local:
        secret = secrets.token_hex(16)  # this run's callback secret, shared by the mailbox and the web app
        os.environ["OZGFLOW_FITCONNECT_SERVER_CALLBACK_SECRET"] = secret
        os.environ["OZGFLOW_FITCONNECT_CALLBACK_SECRET"] = secret
        children.append(_child("mailbox-server", "--port", local.rsplit(":", 1)[1], "--callback-url",
                               f"http://{_local(host)}:{port}/api/v1/fitconnect/callback"))
        if not _wait_for(url + "/.well-known/jwks.json"):
            raise click.ClickException(f"the local FIT-Connect server did not start on {local}")
    os.environ["OZGFLOW_FITCONNECT_URL"] = url
    children.append(_child("serve", "--host", host, "--port", str(port)))


def _supervise(children):
    """Wait while all run; when one stops, say which (the finally clause stops the others)."""
    while all(c.poll() is None for c in children):
        time.sleep(0.5)
    failed = [c for c in children if c.poll() not in (None, 0)]
    if failed:
        raise click.ClickException(f"'ozgflow {failed[0].args[3]}' stopped (exit {failed[0].returncode})")


def _stop(children):
    for c in children:
        if c.poll() is None:
            c.send_signal(signal.SIGTERM)
    for c in children:
        try:
            c.wait(timeout=15)
        except subprocess.TimeoutExpired:
            c.kill()
