"""``ozgflow ikz``: the IKZ dashboard's figures on the command line (the same document as GET /api/v1/ikz).

Registered on the main command group by a line at the end of ``ozgflow.cli``."""

import click

from ozgflow.cli import emit, handles_errors, json_option, main, runtime


@main.command()
@click.option("--from", "start", help="First day (YYYY-MM-DD, Berlin); default 1 January of this year.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD, Berlin); default today.")
@json_option
@handles_errors
def ikz(start, end, as_json):
    """Figures per city and process: received, open, overdue, median processing time, media breaks."""
    from engine.ikz import figures

    doc = figures(runtime(), start, end)
    emit(as_json, doc, lambda: _text(doc))


def _days(seconds):
    return "-" if seconds is None else f"{seconds / 86400:.1f} d"


def _text(doc):
    head = f"{'city':<10} {'process':<24} {'recv':>5} {'open':>5} {'late':>5} {'closed':>6} {'median':>8} post/all"
    lines = [f"IKZ {doc['period']['from']} .. {doc['period']['to']} (open/overdue as of {doc['as_of']})", head]
    for city in doc["cities"]:
        for row in city["processes"]:
            lines.append(f"{city['tenant']:<10} {row['process_id']:<24} {row['received']:>5} {row['open']:>5} "
                         f"{row['overdue']:>5} {row['closed']:>6} {_days(row['median_processing_seconds']):>8} "
                         f"{row['media_breaks']}/{row['letters']}")
    return "\n".join(lines)
