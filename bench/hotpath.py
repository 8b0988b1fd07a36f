"""``python -m bench.hotpath``: where the time of our hot path goes (cProfile over ``reference_case``).

Runs warm-up cases, then profiles ``--cases`` cases of start_case -> list_tasks -> complete_task x2 on a
fresh SQLite database and prints the share of each engine call, the own time per library and the top
functions. The figures are slower than ``python -m bench`` (cProfile adds overhead per call): read them
as proportions. (Named hotpath, not profile: a module named profile would shadow the one cProfile imports.)
"""

import argparse
import cProfile
import pstats
import sys

from .reference_case import engine_runtime, ours_case, timed

# The engine's entry points and the costs inside them worth naming in the summary.
WATCHED = {
    "start_case": "engine/cases.py", "complete_task": "engine/cases.py", "list_tasks": "engine/cases.py",
    "do_engine_steps": "SpiffWorkflow", "dump": "engine/runtime.py", "load": "engine/runtime.py",
    "_advance": "engine/cases.py", "_aktenzeichen": "engine/cases.py", "_write_completion": "engine/cases.py",
    "execute": "sqlalchemy/engine/base.py", "commit": "sqlalchemy/engine/base.py",
    "__init__": "SpiffWorkflow/bpmn/workflow.py", "seal": "engine/audit.py",
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--top", type=int, default=35, help="how many functions to list")
    parser.add_argument("--sort", default="cumulative", help="a pstats sort key: cumulative, tottime, ...")
    args = parser.parse_args(argv)

    with engine_runtime() as rt:
        timed(lambda: ours_case(rt), 20)
        profiler = cProfile.Profile()
        profiler.enable()
        timed(lambda: ours_case(rt), args.cases)
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(summary(stats, args.cases))
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


def summary(stats, cases):
    """Milliseconds per case: cumulative for the watched functions, own time per library."""
    total = stats.total_tt
    lines = [f"profiled {cases} cases: {1000 * total / cases:.2f} ms per case under cProfile", ""]
    found = []
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        where = WATCHED.get(name)
        if where and where in path:
            found.append((ct, f"{name} ({path.split('site-packages/')[-1]})"))
    for ct, label in sorted(found, reverse=True):
        lines.append(f"{1000 * ct / cases:8.2f} ms/case {100 * ct / total:5.1f}%  {label}")
    lines += ["", "own time by library (where the CPU goes, whoever called it):"]
    for tt, lib in sorted(((tt, lib) for lib, tt in by_library(stats).items()), reverse=True):
        lines.append(f"{1000 * tt / cases:8.2f} ms/case {100 * tt / total:5.1f}%  {lib}")
    return "\n".join(lines) + "\n"


# First match wins: C functions show up as '~' with their name, e.g. "<method 'commit' of 'sqlite3...'>".
LIBRARIES = [
    ("sqlite3 (C: statements, commits)", "sqlite3"), ("sqlalchemy", "sqlalchemy"),
    ("SpiffWorkflow", "SpiffWorkflow"), ("json (C and Python)", "json"), ("zlib", "zlib"),
    ("hashlib", "hashlib"), ("uuid", "uuid"), ("engine (ours)", "/engine/"), ("bench", "/bench/"),
]


def by_library(stats):
    """Own time (tottime) summed per library, by the file (or C function name) of each function."""
    totals = {}
    for (path, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        where = f"{path} {name}"
        lib = next((label for label, needle in LIBRARIES if needle in where), "other (stdlib, builtins)")
        totals[lib] = totals.get(lib, 0.0) + tt
    return totals


if __name__ == "__main__":
    sys.exit(main())
