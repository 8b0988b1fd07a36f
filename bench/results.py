"""Result rows of the benchmark: how they are made, written to ``var/bench/results.json`` and printed.

A row is a plain dict ``{"scenario", "metric", "value", "unit", "baseline", "ratio"}`` so the file stays
readable by any tool (CI, a spreadsheet, a later run comparing itself). ``baseline`` names what ``ratio``
compares ``value`` to (another measurement, or a goal); both are None for a row that stands alone.
"""

import json
from pathlib import Path

RESULTS_FILE = Path("var") / "bench" / "results.json"  # relative to the working directory, like var/ itself
FIELDS = ("scenario", "metric", "value", "unit", "baseline", "ratio")


def row(scenario, metric, value, unit, baseline=None, ratio=None):
    """One result row; numbers are rounded so the file and the table show what is meaningful."""
    return {"scenario": scenario, "metric": metric, "value": _round(value), "unit": unit,
            "baseline": baseline, "ratio": None if ratio is None else round(ratio, 3)}


def _round(value):
    return round(value, 1) if isinstance(value, float) else value


def write(rows, path=RESULTS_FILE):
    """Replace the results file with ``rows`` (each run starts afresh: no stale figures survive)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return path


def table(rows):
    """The rows as an aligned text table for people."""
    header = [f.upper() for f in FIELDS]
    lines = [[_cell(r[f]) for f in FIELDS] for r in rows]
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    numeric = {FIELDS.index("value"), FIELDS.index("ratio")}

    def fmt(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _cell(value):
    return "-" if value is None else str(value)
