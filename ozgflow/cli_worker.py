"""``ozgflow worker`` and ``ozgflow incident …``: run background jobs; look after the ones that failed.

A worker is one process; run several (on one or more machines sharing a PostgreSQL) for more throughput.
``--once`` runs what is due now and exits 0 — a job that failed is retried later or becomes an incident, which
is reported, never an exit code. Without ``--once`` it polls every ``--interval`` seconds until stopped
(SIGTERM or Ctrl-C finish the job at hand first).

| option / variable                 | default |
|-----------------------------------|---------|
| --interval, OZGFLOW_WORKER_INTERVAL | 1 s: how often an idle worker looks for due jobs |
| --lease, OZGFLOW_WORKER_LEASE       | 30 s: after this a crashed worker's jobs are taken over |
| --batch, OZGFLOW_WORKER_BATCH       | 10 jobs claimed at a time |
"""

import logging
import signal
import sys

import click

from ozgflow.cli import emit, handles_errors, json_option, main, runtime


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit 0.")
@click.option("--interval", type=click.FloatRange(0.01), default=1.0, show_default=True,
              envvar="OZGFLOW_WORKER_INTERVAL", help="Seconds between looks for due jobs when idle.")
@click.option("--lease", type=click.FloatRange(1), default=30.0, show_default=True, envvar="OZGFLOW_WORKER_LEASE",
              help="Seconds a claimed job is ours; after that another worker takes it over.")
@click.option("--batch", type=click.IntRange(1, 1000), default=10, show_default=True, envvar="OZGFLOW_WORKER_BATCH")
@json_option
@handles_errors
def worker(once, interval, lease, batch, as_json):
    """Run background jobs: timers, service calls, message deliveries, periodic work."""
    from engine.jobs import Worker, ensure_periodic

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for chatty in ("alembic", "spiff", "httpx"):  # start-up, per-task and per-request chatter: not news
        logging.getLogger(chatty).setLevel(logging.WARNING)
    rt = runtime()
    w = Worker(rt, lease_seconds=lease, batch=batch)
    if once:
        ensure_periodic(rt)
        counts = w.run_due()
        emit(as_json, {"worker": w.name, **counts.as_dict()},
             f"{counts.ran} jobs: {counts.done} done, {counts.retried} to retry, {counts.incidents} incidents")
        return
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    click.echo(f"worker {w.name} polling every {interval:g} s (lease {lease:g} s)", err=True)
    w.run_forever(interval, stop=lambda: bool(stopping))


@click.group("incident")
def incident():
    """Jobs that failed their last try: list, retry, cancel."""


@incident.command("list")
@click.option("--tenant")
@json_option
@handles_errors
def incident_list(tenant, as_json):
    """Open incidents, oldest first."""
    from engine.jobs import list_incidents

    rows = list_incidents(runtime(), tenant=tenant)
    emit(as_json, rows, lambda: "\n".join(
        f"{r['id']:>6}  {r['kind']:<14} case {r['case_id'] or '-':<6} tries {r['attempts']}  {r['last_error']}"
        for r in rows) or "no open incidents")


@incident.command("retry")
@click.argument("job_id", type=int)
@click.option("--user", "actor", default="cli", show_default=True, help="Recorded in the case's history.")
@json_option
@handles_errors
def incident_retry(job_id, actor, as_json):
    """Give the job a fresh set of tries, due now."""
    from engine.jobs import retry_incident

    job = retry_incident(runtime(), job_id, actor)
    emit(as_json, job, f"job {job_id} ({job['kind']}) is due again")


@incident.command("cancel")
@click.argument("job_id", type=int)
@click.option("--user", "actor", default="cli", show_default=True, help="Recorded in the case's history.")
@json_option
@handles_errors
def incident_cancel(job_id, actor, as_json):
    """Give the job up (the case stays as it is, for people to handle)."""
    from engine.jobs import cancel_incident

    job = cancel_incident(runtime(), job_id, actor)
    emit(as_json, job, f"job {job_id} ({job['kind']}) cancelled")


main.add_command(worker)
main.add_command(incident)
