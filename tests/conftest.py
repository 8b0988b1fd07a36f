"""Fixtures shared by the suite: a real database per test (SQLite file, or a fresh PostgreSQL database),
a Runtime on it, and a runner for the ``ozgflow`` command as its own process."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine import migrate
from engine.config import Settings
from engine.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"
PG_ADMIN_URL = os.environ.get("OZGFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_state = {}


def _pg_available():
    if "ok" not in _pg_state:
        import psycopg

        try:
            with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
                _pg_state["ok"], _pg_state["why"] = True, ""
        except Exception as exc:  # any failure to connect means: no server here
            _pg_state["ok"], _pg_state["why"] = False, f"{exc.__class__.__name__}: {exc}".strip()
    return _pg_state["ok"]


def _pg_admin(sql):
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'ozgflow.sqlite'}"
        return
    if not _pg_available():
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer ({_pg_state['why']})")
    name = f"ozgflow_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'var' / 'ozgflow.sqlite'}"


def make_runtime(db_url, var_dir, **kwargs):
    env = {"OZGFLOW_DATABASE_URL": db_url, "OZGFLOW_VAR": str(var_dir)}
    rt = Runtime(Settings.from_env(env), **kwargs)
    migrate.upgrade(rt.db)
    return rt


@pytest.fixture
def rt(db_url, tmp_path):
    """A migrated Runtime on the test database (nothing deployed yet)."""
    runtime = make_runtime(db_url, tmp_path / "var")
    yield runtime
    runtime.close()


class Cli:
    """Runs ``ozgflow`` as its own process, the way an operator does."""

    def __init__(self, db_url, cwd):
        self.cwd = Path(cwd)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OZGFLOW_")}
        self.env.update(OZGFLOW_DATABASE_URL=db_url, OZGFLOW_VAR=str(self.cwd / "var"))

    def popen(self, *args, stdin=None):
        return subprocess.Popen([sys.executable, "-m", "ozgflow", *map(str, args)], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __call__(self, *args, check=True, input=None):
        proc = subprocess.run([sys.executable, "-m", "ozgflow", *map(str, args)], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, input=input, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"ozgflow {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args):
        proc = self(*args, "--json")
        return json.loads(proc.stdout)


@pytest.fixture
def cli(db_url, tmp_path):
    return Cli(db_url, tmp_path)


@pytest.fixture
def hundesteuer_data():
    path = SHARED / "ozg" / "fit-connect" / "application_01_hundesteuer_anmeldung_marburg.json"
    return json.loads(path.read_text(encoding="utf-8"))["data"]
