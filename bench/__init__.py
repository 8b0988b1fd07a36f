"""``python -m bench``: the performance scenarios of ozgflow (``make bench``, ``make bench BENCH=name``).

Each scenario is a function ``run(quick=False)`` returning result rows (see ``bench.results``); it
measures our engine next to a baseline in the same run, so a figure never depends on the machine alone.
A new scenario is a module of its own plus one line in ``SCENARIOS``.
"""

from . import inbox, jobs, mailbox_pickup, reference_case, timers

SCENARIOS = {
    "reference_case": reference_case.run,
    "mailbox_pickup": mailbox_pickup.run,
    "inbox": inbox.run,
    "timers": timers.run,
    "jobs": jobs.run,
}
