"""``ozgflow``: set up, deploy, start and work cases, verify history, serve the web app.

Every command takes ``--json`` and then prints exactly one JSON document on standard output (on failure
``{"error": …}``, with ``problems`` for refused models). Errors never end in a traceback: they are one line
per problem on standard error and a non-zero exit code.
"""

import json
import sys
from functools import wraps
from pathlib import Path

import click

from engine.errors import DeployError, FormInvalid, OzgflowError

json_option = click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")


def emit(as_json, document, text):
    if as_json:
        click.echo(json.dumps(document, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def handles_errors(fn):
    """Turn engine errors into a clear message and exit code 1 (JSON on stdout with --json)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OzgflowError as exc:
            doc = {"error": str(exc)}
            if isinstance(exc, DeployError):
                doc["problems"] = [p.as_dict() for p in exc.problems]
            if isinstance(exc, FormInvalid):
                doc["fields"] = exc.errors
            if kwargs.get("as_json"):
                click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
            for line in str(exc).splitlines() or [exc.__class__.__name__]:
                click.echo(f"error: {line}", err=True)
            sys.exit(1)

    return wrapper


def runtime():
    """A Runtime for this command; a brand-new database gets its schema first."""
    from engine.runtime import Runtime
    from engine.setup import ensure_schema

    rt = Runtime()
    ensure_schema(rt)
    return rt


def read_data(value):
    """--data: inline JSON, or @file.json."""
    if value is None:
        return {}
    try:
        text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
        data = json.loads(text)
    except FileNotFoundError:
        raise OzgflowError(f"--data: no such file {value[1:]}") from None
    except ValueError as exc:
        raise OzgflowError(f"--data: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise OzgflowError("--data: the JSON must be an object")
    return data


@click.group()
def main():
    """ozgflow: from the OZG mailbox to the electronic file."""


@main.command()
@json_option
@handles_errors
def init(as_json):
    """Migrate the database and deploy processes/ (running it again changes nothing)."""
    from engine.runtime import Runtime
    from engine.setup import initialise

    result = initialise(Runtime())
    emit(as_json, result, lambda: "\n".join(
        [f"database: {result['database']} (schema {result['schema']})"]
        + [f"process {v['process_id']} version {v['version']}{' (new)' if v['new'] else ''}"
           for v in result["versions"]]))


@main.group()
def db():
    """Database schema."""


@db.command("upgrade")
@json_option
@handles_errors
def db_upgrade(as_json):
    """Migrate the database to the newest schema (alembic)."""
    from engine import migrate
    from engine.runtime import Runtime

    before, after = migrate.upgrade(Runtime().db)
    emit(as_json, {"before": before, "after": after}, f"schema {before or '(empty)'} -> {after}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--actor", default="cli", show_default=True, help="Who deploys (recorded with the deployment).")
@json_option
@handles_errors
def deploy(paths, actor, as_json):
    """Deploy process models from files or folders (.bpmn, .dmn, form files)."""
    from engine.deploy import bundles_from_paths
    from engine.deploy import deploy as do_deploy

    rt = runtime()
    versions = do_deploy(rt, bundles_from_paths(paths), actor=actor)
    emit(as_json, {"versions": versions}, lambda: "\n".join(
        f"{v['process_id']} version {v['version']}{' (new)' if v['new'] else ' (unchanged)'}" for v in versions))


@main.group()
def case():
    """Start, show and list cases."""


@case.command("start")
@click.argument("process_id")
@click.option("--tenant", required=True, help="Tenant id, e.g. marburg.")
@click.option("--data", help="Initial data: JSON or @file.json.")
@click.option("--count", default=1, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--user", "actor", default="cli", show_default=True, help="Recorded as who started the case.")
@json_option
@handles_errors
def case_start(process_id, tenant, data, count, actor, as_json):
    """Start a case (or --count N cases) on the newest version and run it until it waits."""
    from engine.cases import start_case

    started = start_case(runtime(), process_id, tenant, read_data(data), actor=actor, count=count)
    for s in started:
        if s["error"]:
            click.echo(f"warning: case {s['id']} stopped with an error: {s['error']}", err=True)
    if count == 1:
        s = started[0]
        emit(as_json, {"id": s["id"], "aktenzeichen": s["aktenzeichen"]},
             f"case {s['id']} {s['aktenzeichen']} {s['state']}")
    else:
        emit(as_json, {"ids": [s["id"] for s in started]}, f"{len(started)} cases started")


@case.command("show")
@click.argument("case_id", type=int)
@json_option
@handles_errors
def case_show(case_id, as_json):
    """State, model and version, Aktenzeichen, data, open tasks and history of a case."""
    from engine.cases import get_case

    c = get_case(runtime(), case_id)
    emit(as_json, c, lambda: _case_text(c))


def _case_text(c):
    lines = [f"case {c['id']}  {c['aktenzeichen']}  {c['state']}",
             f"process {c['process_id']} version {c['version']}, tenant {c['tenant']}",
             "data: " + json.dumps(c["data"], ensure_ascii=False, default=str), "open tasks:"]
    lines += [f"  {t['id']}  {t['title']}  groups={','.join(t['groups'])} due={t['due']}" for t in c["tasks"]]
    lines += ["history:"] + [f"  {h['at']}  {h['actor']:<12} {h['action']:<15} {h['element_id'] or ''} "
                             f"{json.dumps(h['new'], ensure_ascii=False, default=str) if h['new'] is not None else ''}"
                             for h in c["history"]]
    return "\n".join(lines)


@case.command("list")
@click.option("--tenant")
@click.option("--limit", type=click.IntRange(0))
@json_option
@handles_errors
def case_list(tenant, limit, as_json):
    """List cases (newest first), all of them unless --limit is given."""
    from engine.cases import list_cases

    rows = list_cases(runtime(), tenant=tenant, limit=limit)
    emit(as_json, rows, lambda: "\n".join(
        f"{r['id']:>6}  {r['tenant']:<8} {r['state']:<9} {r['process_id']:<28} {r['aktenzeichen']}" for r in rows)
        or "no cases")


@main.group()
def task():
    """List and complete user tasks."""


@task.command("list")
@click.option("--case", "case_id", type=int)
@click.option("--tenant")
@json_option
@handles_errors
def task_list(case_id, tenant, as_json):
    """List open user tasks (soonest due first)."""
    from engine.cases import list_tasks

    rows = list_tasks(runtime(), case_id=case_id, tenant=tenant)
    emit(as_json, rows, lambda: "\n".join(
        f"{t['id']}  case {t['case_id']:<5} {t['title']:<30} groups={','.join(t['groups'])} due={t['due']}"
        for t in rows) or "no open tasks")


@task.command("complete")
@click.argument("task_id")
@click.option("--user", "user", required=True, help="Recorded as the actor (no account check: operator tool).")
@click.option("--data", help="Form data: JSON or @file.json.")
@json_option
@handles_errors
def task_complete(task_id, user, data, as_json):
    """Validate the data against the task's form, complete the task and advance the case."""
    from engine.cases import complete_task

    result = complete_task(runtime(), task_id, user, read_data(data))
    emit(as_json, {"task_id": task_id, **result}, f"task {task_id} completed; case {result['case_id']} "
                                                  f"is {result['state']}")


@main.command()
@click.argument("case_id", type=int)
@json_option
@handles_errors
def verify(case_id, as_json):
    """Check a case: exit 0 when intact, else name what broke. Open cases: the audit chain; closed ones: the
    submission's hashes, the stored documents, the package in the E-Akte outbox and the audit chain."""
    from engine.efile import verify_case

    report = verify_case(runtime(), case_id)
    message = report["message"]
    emit(as_json, report, f"case {case_id}: {message}" if report["ok"] or message.startswith("BROKEN")
         else f"case {case_id}: BROKEN: {message}")
    sys.exit(0 if report["ok"] else 1)


@main.command()
@json_option
@handles_errors
def tenants(as_json):
    """The configured tenants (cities), their FIT-Connect destinations and service bindings."""
    from connectors.fitconnect.keys import key_folder
    from engine.config import Settings
    from engine.tenants import load_tenants

    settings = Settings.from_env()
    cfg = load_tenants(settings.tenants_file)

    def destination(d):  # the key folder in effect and the secret's variable name, never the secret
        shown = {"id": d.id, "services": list(d.services), "client_id": d.client_id,
                 "keys": str(key_folder(settings.var_dir, d).path)}
        return shown | ({"client_secret_env": d.client_secret_env} if d.client_secret_env else {})

    doc = [{"id": t.id, "name": t.name, "ags": t.ags, "aktenzeichen_pattern": t.aktenzeichen_pattern,
            "aktenplan": t.aktenplan,
            "settings": {k: v for k, v in t.settings.items()  # no secrets: names of variables only
                         if k not in ("name", "ags", "aktenzeichen_pattern", "aktenplan") and "secret" not in k},
            "destinations": [destination(d) for d in t.destinations],
            "services": [{"leika": b.leika, "process": b.process} for b in cfg.bindings if b.tenant in (None, t.id)]}
           for t in cfg.tenants.values()]
    emit(as_json, doc, lambda: "\n".join(
        f"{t['id']:<8} {t['ags']}  {t['name']}"
        + "".join(f"\n         destination {d['id']}  {' '.join(d['services'])}" for d in t["destinations"])
        for t in doc))


@main.group()
def process():
    """Deployed process models."""


@process.command("list")
@json_option
@handles_errors
def process_list(as_json):
    """Every deployed process version."""
    from engine.deploy import list_versions

    rows = list_versions(runtime())
    emit(as_json, rows, lambda: "\n".join(f"{r['process_id']:<32} v{r['version']:<4} {r['dialect']:<8} {r['name']}"
                                          for r in rows) or "nothing deployed")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@json_option
@handles_errors
def serve(host, port, workers, as_json):
    """Start the web server (gunicorn). With --json: one line {"url", "pid"} on stdout, logs on stderr."""
    import os

    from ozgflow.server import serve as run_server

    runtime().close()  # make sure the schema exists before workers start
    url = f"http://{host}:{port}"
    emit(as_json, {"url": url, "pid": os.getpid()}, f"ozgflow on {url}")
    sys.stdout.flush()
    run_server(host, port, workers, access_log="-" if not as_json else None)


if __name__ == "__main__":
    main()
import ozgflow.cli_users  # noqa: E402,F401  (registers the "users" commands)
from ozgflow import cli_mailbox  # noqa: E402  (registers "mailbox-server" and "mailbox")

cli_mailbox.register(main)
import ozgflow.cli_cases  # noqa: E402,F401  (registers "case move|suspend|resume|terminate", "process versions|diff")
import ozgflow.cli_efile  # noqa: E402,F401  (registers "efile" and "retention")
import ozgflow.cli_ikz  # noqa: E402,F401  (registers "ikz": the IKZ dashboard's figures)
import ozgflow.cli_intake  # noqa: E402,F401  (registers "mailbox pickup" and "mailbox quarantine")
import ozgflow.cli_up  # noqa: E402,F401  (registers "up": mailbox, worker and web server together)
import ozgflow.cli_worker  # noqa: E402,F401  (registers "worker" and "incident")
