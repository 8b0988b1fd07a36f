"""Scenario ``inbox``: the caseworker's landing page with 100,000 open tasks, through the Flask stack.

The data: 100,000 open tasks, one per case, over the five tenants and 200 groups (40 group names per
tenant — the names repeat across tenants, as they do when one shared model names its lanes). A task has
one candidate group (a fifth of them two), a tenth is assigned to one of 50 users of its tenant, most
have a due date and a few of those are overdue. It is written with bulk SQL inserts: going through the
engine would take an hour and measure the engine, not the inbox.

Measured: ``GET /posteingang`` — "my tasks and my groups' tasks, soonest due first" with its counts per
filter, a page of 25 — for a caseworker of Marburg with two groups, through Flask's test client (the
whole WSGI stack: session, security headers, the inbox queries, the template). Also the team lead's page
(every task of the tenant) and a search by applicant name, as rows of their own. Baseline: the goal of
issue 4, p95 at most 50 ms.
"""

import random
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine import migrate
from engine.config import DEFAULT_TENANTS, Settings
from engine.deploy import bundles_from_paths, deploy
from engine.runtime import Runtime
from engine.users import add_user

from .results import RESULTS_FILE, row

SCENARIO = "inbox"
GOAL_MS = 50.0
MODEL = Path(__file__).resolve().parent / "models" / "reference_case.bpmn"
PROCESS_ID = "bench-reference-case"
TENANTS = ("marburg", "wetzlar", "giessen", "limburg", "fulda")
GROUP_NAMES = 40  # per tenant: 200 groups in all
USERS_PER_TENANT = 50
PASSWORD = "bench-geheim-1"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NAMES = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
         "Yilmaz", "Beispiel", "Mustermann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Braun")


def run(quick=False):
    """Build the 100,000 tasks (2,000 when quick), then time the pages; return the result rows."""
    tasks, requests = (2_000, 10) if quick else (100_000, 300)
    with inbox_runtime() as rt:
        fill(rt, tasks)
        caseworker = add_user(rt, "bench-anna", "marburg", "caseworker", PASSWORD, ["g00", "g01"])
        add_user(rt, "bench-lena", "marburg", "teamlead", PASSWORD, ["g00"])
        app = _app(rt)
        mine = _latencies(app, "bench-anna", "/posteingang", requests)
        lead = _latencies(app, "bench-lena", "/posteingang", requests)
        search = _latencies(app, "bench-anna", "/posteingang?q=Beispiel", requests)
        visible = _visible(rt, caseworker)
    p50, p95 = _pct(mine, 50), _pct(mine, 95)
    return [
        row(SCENARIO, "my_inbox_p50_ms", p50, "ms", f"goal_max_{GOAL_MS:g}_ms", p50 / GOAL_MS),
        row(SCENARIO, "my_inbox_p95_ms", p95, "ms", f"goal_max_{GOAL_MS:g}_ms", p95 / GOAL_MS),
        row(SCENARIO, "teamlead_inbox_p95_ms", _pct(lead, 95), "ms", f"goal_max_{GOAL_MS:g}_ms",
            _pct(lead, 95) / GOAL_MS),
        row(SCENARIO, "applicant_search_p95_ms", _pct(search, 95), "ms", f"goal_max_{GOAL_MS:g}_ms",
            _pct(search, 95) / GOAL_MS),
        row(SCENARIO, "open_tasks", tasks, "tasks"),
        row(SCENARIO, "tasks_visible_to_caseworker", visible, "tasks"),
    ]


@contextmanager
def inbox_runtime():
    """A Runtime on a fresh SQLite file under var/bench/ (not a tmpfs), removed afterwards."""
    parent = RESULTS_FILE.parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=parent) as tmp:
        var = Path(tmp).resolve()
        rt = Runtime(Settings(var_dir=var, database_url=f"sqlite:///{var / 'ozgflow.sqlite'}",
                              tenants_file=DEFAULT_TENANTS, processes_dir=var / "processes"),
                     clock=lambda: NOW)
        try:
            migrate.upgrade(rt.db)
            deploy(rt, bundles_from_paths([MODEL]), actor="bench")
            yield rt
        finally:
            rt.close()


def fill(rt, count, seed=4):
    """``count`` open tasks, one per case, with groups, assignees, due dates and applicant names."""
    rng = random.Random(seed)
    ts = lambda t: t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")  # noqa: E731 (SQLite's form)
    cases, tasks, groups, applicants, words = [], [], [], [], []
    with rt.db.begin() as conn:
        version_id = conn.exec_driver_sql("SELECT id FROM process_version").scalar()
        for i in range(1, count + 1):
            tenant = TENANTS[i % len(TENANTS)]
            created = NOW - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1440))
            cases.append((i, tenant, PROCESS_ID, version_id, f"AZ-{tenant[:2].upper()}-{i:06d}", "waiting", b"",
                          "1.5", 1, ts(created), ts(created), 0, "0" * 64))
            due = None if rng.random() < 0.15 else NOW + timedelta(days=rng.randint(-5, 60), hours=rng.randint(0, 23))
            assignee = f"{tenant}-u{rng.randrange(USERS_PER_TENANT):02d}" if rng.random() < 0.1 else None
            task_id = f"00000000-0000-4000-8000-{i:012d}"
            tasks.append((task_id, i, tenant, PROCESS_ID, rng.choice(("Task_A", "Task_B")), "Antrag prüfen",
                          assignee, "[]", ts(due) if due else None, ts(created), "open"))
            for g in {rng.randrange(GROUP_NAMES) for _ in range(2 if rng.random() < 0.2 else 1)}:
                groups.append((task_id, f"g{g:02d}"))
            family, first = rng.choice(NAMES), rng.choice(("Lena", "Jonas", "Deniz", "Erika", "Max", "Anna"))
            applicants.append((i, tenant, f"{first} {family}"))
            words += [(tenant, first.lower(), i), (tenant, family.lower(), i)]
        raw = conn.connection.driver_connection
        raw.executemany('INSERT INTO "case" (id, tenant, process_id, version_id, aktenzeichen, state, workflow, '
                        'serializer_version, lock_version, created_at, updated_at, audit_seq, audit_hash) '
                        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', cases)
        raw.executemany("INSERT INTO task (id, case_id, tenant, process_id, element_id, title, assignee, "
                        "candidate_users, due_at, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tasks)
        raw.executemany("INSERT INTO task_group (task_id, group_name) VALUES (?, ?)", groups)
        _fill_applicants(raw, applicants, words)
    with rt.db.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _fill_applicants(raw, applicants, words):
    """The applicant search rows (``engine.applicants``), when the schema has them."""
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "case_applicant" in tables:
        raw.executemany("INSERT INTO case_applicant (case_id, tenant, name) VALUES (?, ?, ?)", applicants)
        raw.executemany("INSERT INTO applicant_word (tenant, word, case_id) VALUES (?, ?, ?)", words)


def _app(rt):
    from web import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, runtime=rt)


def _latencies(app, name, url, n):
    """Milliseconds of ``n`` GETs of ``url`` by ``name`` (after a few unmeasured ones)."""
    client = app.test_client()
    answer = client.post("/login", data={"username": name, "password": PASSWORD})
    _expect(answer.status_code == 302, f"login of {name} failed: {answer.status_code}")
    for _ in range(5):
        _expect(client.get(url).status_code == 200, f"GET {url} failed")
    out = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(url)
        out.append((time.perf_counter() - started) * 1000)
        _expect(answer.status_code == 200, f"GET {url} answered {answer.status_code}")
    return out


def _visible(rt, person):
    from engine.inbox import list_inbox

    return list_inbox(rt, person)["total"]


def _pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _expect(condition, message):
    if not condition:
        raise RuntimeError(message)
