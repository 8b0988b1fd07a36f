"""``ozgflow up`` (what ``make run`` starts): mailbox, worker and web server together, demo data arriving."""

import json
import re
import signal
import socket
import time

import httpx
from conftest import ROOT, Cli


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_starts_everything_and_seeds_the_demo(sqlite_url, tmp_path):
    """All five cities get users (credentials printed) and cases at the stages the demo plan names: received
    from the mailbox, in progress, waiting, closed and in the E-Akte — seeded once. The seeding time is printed for
    the operator, not asserted (speed is for benchmarks)."""
    cli = Cli(sqlite_url, tmp_path)
    cli("init")
    web, mailbox = free_port(), free_port()
    proc = cli.popen("up", "--port", web, "--mailbox-port", mailbox, "--json")
    marker = tmp_path / "var" / ".demo-seeded"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.5)
        report = json.loads(marker.read_text(encoding="utf-8"))
        assert httpx.get(f"http://127.0.0.1:{web}/health").json()["status"] == "ok"
        login = httpx.get(f"http://127.0.0.1:{web}/login")
        assert login.status_code == 200 and "csrf_token" in login.text
        cases = {c["id"]: c for c in cli.json("case", "list")}
        shown = {c["case_id"]: cli.json("case", "show", c["case_id"]) for c in report["cases"]}
        efile = {c["case_id"]: cli.json("efile", "show", c["case_id"]) for c in report["cases"] if c.get("efile")}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    check_seeded(report, cases, shown, efile)
    assert "password 'ozgflow-demo'" in err
    for name in ("admin (admin)", "designer (designer)", "sb.marburg (caseworker)", "tl.fulda (teamlead)",
                 "Kreisstadt Limburg a. d. Lahn: sb.limburg"):
        assert name in err
    assert re.search(r"demo: \d+ cases seeded in [\d.]+ s", err), err  # the time is printed for the operator
    assert json.loads(out) == {"url": f"http://127.0.0.1:{web}", "mailbox": f"http://127.0.0.1:{mailbox}",
                               "pids": json.loads(out)["pids"]}  # stdout: exactly one JSON document
    for port in (web, mailbox):  # every child stopped with it
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    # a second start seeds nothing again
    proc = cli.popen("up", "--port", free_port(), "--mailbox-port", free_port(), "--json")
    try:
        json.loads(_read_json(proc))
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert "cases seeded" not in err and len(cli.json("case", "list")) == len(cases)


def _read_json(proc):
    lines = []
    for line in proc.stdout:  # the one document ends with its closing brace at the start of a line
        lines.append(line)
        if line.startswith("}"):
            return "".join(lines)
    raise AssertionError("up printed no JSON")


def check_seeded(report, cases, shown, efile):
    """Every plan entry became a case at its stage, or was skipped because its model is not deployed."""
    plan = json.loads((ROOT / "ozgflow" / "demo_plan.json").read_text(encoding="utf-8"))["cases"]
    for skipped in report["skipped"]:  # a renamed example or a failing entry is a fault of the plan
        assert skipped["reason"].startswith("model") and skipped["reason"].endswith("is not deployed"), skipped
    stages = set()
    for seeded in report["cases"]:
        entry, case = plan[seeded["entry"]], shown[seeded["case_id"]]
        assert case["tenant"] == seeded["tenant"] and entry.get("tenant") in (None, case["tenant"])
        assert seeded["process_id"] in (None, case["process_id"])
        done = sum(1 for h in case["history"] if h["action"] == "task_completed")
        assert done == seeded["tasks_completed"], (entry, case["history"])
        if entry.get("steps") == "all":
            assert case["state"] == "completed", (entry, case["state"], case["tasks"])
            stages.add("closed")
        elif entry["stage"].startswith("wartet"):
            assert case["state"] != "completed" and done > 0 and not case["tasks"], (entry, case["tasks"])
            stages.add("waiting")
        elif done:
            assert case["state"] != "completed" and case["tasks"], entry
            stages.add("in progress")
        else:
            assert case["state"] != "completed" and case["tasks"], entry
            stages.add("received")
        if entry.get("efile"):
            assert efile[seeded["case_id"]]["package_sha256"], entry
            stages.add("e-file")
        if seeded["via"] == "mailbox":
            assert case["submission_id"]
    assert stages == {"received", "in progress", "waiting", "closed", "e-file"}
    assert {c["tenant"] for c in cases.values()} == {"marburg", "wetzlar", "giessen", "limburg", "fulda"}
    samples = sorted(s["tenant"] for s in report["cases"] if plan[s["entry"]].get("application"))
    assert samples == ["giessen", "marburg", "wetzlar"]  # the three sample applications came by the mailbox
