"""``ozgflow up`` (what ``make run`` starts): mailbox, worker and web server together, demo data arriving."""

import json
import signal
import socket
import time

import httpx
from conftest import Cli


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_starts_everything_and_the_samples_become_cases(sqlite_url, tmp_path):
    cli = Cli(sqlite_url, tmp_path)
    cli("init")
    web, mailbox = free_port(), free_port()
    proc = cli.popen("up", "--port", web, "--mailbox-port", mailbox, "--json")
    try:
        deadline, cases = time.monotonic() + 90, []
        while time.monotonic() < deadline and len(cases) < 3:
            time.sleep(1)
            cases = cli.json("case", "list")
        assert sorted(c["tenant"] for c in cases) == ["giessen", "marburg", "wetzlar"]
        assert all(c["submission_id"] for c in cases)
        assert httpx.get(f"http://127.0.0.1:{web}/health").json()["status"] == "ok"
        login = httpx.get(f"http://127.0.0.1:{web}/login")
        assert login.status_code == 200 and "csrf_token" in login.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert "password 'ozgflow-demo'" in err
    assert json.loads(out) == {"url": f"http://127.0.0.1:{web}", "mailbox": f"http://127.0.0.1:{mailbox}",
                               "pids": json.loads(out)["pids"]}  # stdout: exactly one JSON document
    for port in (web, mailbox):  # every child stopped with it
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
