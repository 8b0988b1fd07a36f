"""``ozgflow case move|suspend|resume|terminate`` and ``ozgflow process versions|diff``.

Registered on the command groups of ``ozgflow.cli`` by its last lines. The CLI is the operator's tool: it
acts as the user named by ``--user`` (recorded in the history), without a role check of its own.
"""

import click

from ozgflow.cli import case, emit, handles_errors, json_option, process, runtime


def _move_text(report, preview):
    verb = "can move" if preview else "moved"
    lines = [f"process {report['process_id']}: version {report['from']} -> {report['to']}"]
    for c in report["cases"]:
        ok = c["can_move"] if preview else c["moved"]
        lines.append(f"case {c['case_id']} {c['aktenzeichen']} ({c['tenant']}): "
                     + (verb if ok else "NOT " + verb + ": " + "; ".join(c["reasons"]))
                     + "".join(f"\n    note: {n}" for n in c.get("notes", [])))
    if preview:
        lines.append(f"{report['movable']} can move, {report['blocked']} cannot")
    else:
        lines.append(f"{report['moved']} moved, {report['not_moved']} not moved")
    return "\n".join(lines)


@case.command("move")
@click.option("--process", "process_id", required=True, help="The process id.")
@click.option("--from", "from_version", required=True, type=int, help="The version the cases are on.")
@click.option("--to", "to_version", required=True, type=int, help="The later version to move them to.")
@click.option("--case", "case_ids", type=int, multiple=True, help="Only these cases (repeatable).")
@click.option("--preview", is_flag=True, help="Only say per case whether it can move and why not.")
@click.option("--user", "actor", default="cli", show_default=True, help="Recorded as who moved the cases.")
@json_option
@handles_errors
def case_move(process_id, from_version, to_version, case_ids, preview, actor, as_json):
    """Move the open cases of one version of a process to a later version (first try --preview)."""
    from engine import moves

    rt = runtime()
    ids = list(case_ids) or None
    if preview:
        report = moves.preview(rt, process_id, from_version, to_version, ids)
    else:
        report = moves.move(rt, process_id, from_version, to_version, actor, ids)
    emit(as_json, report, lambda: _move_text(report, preview))


def _state_command(name, action, help_text):
    @case.command(name, help=help_text)
    @click.argument("case_id", type=int)
    @click.option("--reason", required=True, help="Why (kept in the case's history).")
    @click.option("--user", "actor", default="cli", show_default=True, help="Recorded as who did it.")
    @json_option
    @handles_errors
    def command(case_id, reason, actor, as_json):
        from engine import suspension

        result = getattr(suspension, action)(runtime(), case_id, actor, reason)
        emit(as_json, result, f"case {case_id} {result['state']}")

    return command


_state_command("suspend", "suspend", "Suspend a case: it does not advance until it is resumed.")
_state_command("resume", "resume", "Resume a suspended case.")
_state_command("terminate", "terminate", "Terminate a case: cancel its tasks, timers and jobs; close it.")


@process.command("versions")
@click.argument("process_id")
@json_option
@handles_errors
def process_versions(process_id, as_json):
    """The versions of a process: who uploaded them, which starts new cases, how many cases run on each."""
    from engine.versions import bindings_for, list_versions_detailed

    rt = runtime()
    doc = {"process_id": process_id, "versions": list_versions_detailed(rt, process_id),
           "bindings": bindings_for(rt, process_id)}
    emit(as_json, doc, lambda: "\n".join(
        f"version {v['version']}{' (new cases)' if v['starts_new_cases'] else ''}: {v['cases']['open']} open, "
        f"{v['cases']['closed']} closed; {v['created_at']} by {v['created_by']}" for v in doc["versions"]))


@process.command("diff")
@click.argument("process_id")
@click.argument("a", type=int)
@click.argument("b", type=int)
@json_option
@handles_errors
def process_diff(process_id, a, b, as_json):
    """Elements added, removed and changed from version A to version B."""
    from engine.versions import diff_versions

    d = diff_versions(runtime(), process_id, a, b)
    emit(as_json, d, lambda: "\n".join(
        [f"+ {e['id']} {e['type']} {e['name'] or ''}" for e in d["added"]]
        + [f"- {e['id']} {e['type']} {e['name'] or ''}" for e in d["removed"]]
        + [f"~ {e['id']} {e['type']}: {', '.join(c['what'] for c in e['changes'])}" for e in d["changed"]])
        or "no changes")
