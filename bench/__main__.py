"""Run the benchmark scenarios, rewrite var/bench/results.json and print the table."""

import argparse
import sys
import time

from . import SCENARIOS
from .results import table, write


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run only this scenario (default: all)")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the scenarios work")
    args = parser.parse_args(argv)

    names = [args.scenario] if args.scenario else list(SCENARIOS)
    rows = []
    for name in names:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows += SCENARIOS[name](quick=args.quick)
        print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    path = write(rows)
    print(table(rows))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
