"""``ozgflow mailbox pickup`` and ``ozgflow mailbox quarantine``: the receiving side of the OZG mailbox.

``pickup`` runs one round over every configured destination (or one tenant's): fetch, check, store,
start the case, accept or reject (engine/intake.py). ``ozgflow worker`` does the same every
``OZGFLOW_MAILBOX_POLL_SECONDS`` (default 10). ``quarantine`` lists the rejected submissions.
"""

import click

from ozgflow.cli import emit, handles_errors, json_option, runtime
from ozgflow.cli_mailbox import mailbox


@mailbox.command("pickup")
@click.option("--tenant", help="Only this tenant's destinations.")
@json_option
@handles_errors
def mailbox_pickup(tenant, as_json):
    """Pick up every waiting submission once; exit 0 when the round ran (rejections included)."""
    from engine.intake import poll_all

    report = poll_all(runtime(), tenant=tenant)
    doc = report.as_dict()
    emit(as_json, doc, lambda: (f"accepted {len(doc['accepted'])}, rejected {len(doc['rejected'])}, "
                                f"answered late {len(doc['answered_late'])}, skipped {len(doc['skipped'])}, "
                                f"errors {len(doc['errors'])}"
                                + "".join(f"\n  error: {where}: {msg}" for where, msg in doc["errors"])))


@mailbox.command("quarantine")
@click.option("--tenant")
@json_option
@handles_errors
def mailbox_quarantine(tenant, as_json):
    """Rejected submissions, kept with their reason and raw encrypted parts."""
    from engine.intake import quarantine

    rows = quarantine(runtime(), tenant=tenant)
    emit(as_json, rows, lambda: "\n".join(
        f"{r['received_at']}  {r['tenant']:<8} {r['submission_id']}  {r['reason']}" for r in rows)
        or "quarantine is empty")
