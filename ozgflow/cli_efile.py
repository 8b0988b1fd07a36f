"""``ozgflow efile`` (the E-Akte export and its confirmation) and ``ozgflow retention`` (deletion after the
retention period). Registered on the main command group by a line at the end of ``ozgflow.cli``."""

import sys

import click

from ozgflow.cli import emit, handles_errors, json_option, main, runtime


@main.group()
def efile():
    """The electronic file: xdomea packages in the tenant's E-Akte outbox and their confirmation."""


@efile.command("export")
@click.argument("case_id", type=int)
@json_option
@handles_errors
def efile_export(case_id, as_json):
    """Export a completed case now (the worker does this by itself when a case completes)."""
    from engine.efile import export_case

    e = export_case(runtime(), case_id)
    emit(as_json, e, f"case {case_id}: {e['location']} (sha256 {e['package_sha256']})")


@efile.command("confirm")
@click.argument("case_id", type=int)
@click.option("--by", "actor", default="operator", show_default=True, help="Who confirms (for the history).")
@json_option
@handles_errors
def efile_confirm(case_id, actor, as_json):
    """Confirm by hand that the E-Akte imported the case's package (recorded in the case's history)."""
    from engine.efile import confirm

    e = confirm(runtime(), case_id, actor)
    emit(as_json, e, f"case {case_id}: import of {e['prozess_id']} confirmed by {actor}")


@efile.command("show")
@click.argument("case_id", type=int)
@json_option
@handles_errors
def efile_show(case_id, as_json):
    """The case's export: package, hashes, retention, confirmation."""
    from engine.efile import get_export

    e = get_export(runtime(), case_id)
    if e is None:
        emit(as_json, {"case_id": case_id, "exported": False}, f"case {case_id}: not exported")
        return
    emit(as_json, e, f"case {case_id}: {e['location']} exported {e['exported_at']}, "
                     f"{'confirmed ' + e['confirmed_at'] if e['confirmed'] else 'NOT confirmed'}, "
                     f"retention until {e['retention_until']} ({e['aussonderungsart']})")


@efile.command("inbox")
@click.option("--tenant", default=None, help="Only this tenant's inbox.")
@json_option
@handles_errors
def efile_inbox(tenant, as_json):
    """Read the E-Akte's Abgabe.ImportBestaetigen.0402 answers now (the worker does this every minute)."""
    from engine.efile import process_answers

    results = process_answers(runtime(), tenant)
    emit(as_json, results, lambda: "\n".join(f"{r['tenant']} {r['file']}: {r['message']}" for r in results)
         or "no answers waiting")


@main.group()
def retention():
    """Deletion of cases after their retention period (only when the E-Akte confirmed the export)."""


def _lines(result):
    lines = [f"deleted case {d['case_id']} ({d['aktenzeichen']}), retention until {d['retention_until']}"
             for d in result.get("deleted", result.get("deletable", []))]
    lines += [f"BLOCKED case {b['case_id']} ({b['aktenzeichen']}): {b['reason']}" for b in result["blocked"]]
    return "\n".join(lines) or "no case is past its retention period"


@retention.command("list")
@click.option("--tenant", default=None)
@json_option
@handles_errors
def retention_list(tenant, as_json):
    """Cases past their retention period: deletable ones and those blocked by an unconfirmed export."""
    from engine.retention import due

    result = due(runtime(), tenant=tenant)
    emit(as_json, result, lambda: _lines(result).replace("deleted case", "deletable case"))


@retention.command("run")
@click.option("--tenant", default=None)
@json_option
@handles_errors
def retention_run(tenant, as_json):
    """Delete the cases past their retention period whose export was confirmed; list the blocked ones.
    Exit code 0; 3 when some case is blocked (for an operator to look at)."""
    from engine.retention import run

    result = run(runtime(), actor="operator", tenant=tenant)
    emit(as_json, result, lambda: _lines(result))
    sys.exit(3 if result["blocked"] else 0)
