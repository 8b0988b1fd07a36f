"""A sixth city by configuration only: the operator copies the shipped tenants.toml, adds [tenants.herborn] with a
FIT-Connect destination, and — without touching any model — the city is listed, gets demo keys, receives an
application through the mailbox into the shared Hundesteuer model, and appears on the IKZ dashboard."""

import json
import re
import shutil
import signal
import time

import httpx
from conftest import ROOT, Cli
from test_up import free_port

from connectors.fitconnect.keys import DEMO_DIR

HERBORN = """

[tenants.herborn]
name = "Stadt Herborn"
ags = "06532011"
aktenzeichen_pattern = "HB-{aktenplan}-{year}-{seq:05}"

[[tenants.herborn.destinations]]
id = "5b1f0c2e-8d3a-4c6b-9e7f-0a1b2c3d4e5f"
services = ["99102013104000"]
client_id = "ozgflow-herborn"
client_secret = "demo-herborn-secret"
"""
SAMPLE = "application_01_hundesteuer_anmeldung_marburg.json"


def _application_for_herborn(tmp_path):
    """The Marburg sample application as a citizen of Herborn would send it (same service, same model)."""
    folder = tmp_path / "antrag"
    app = json.loads((DEMO_DIR / SAMPLE).read_text(encoding="utf-8"))
    app["data"]["gemeinde"] = {"name": "Stadt Herborn", "ags": "06532011"}
    for rel in app["attachmentFiles"].values():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO_DIR / rel, folder / rel)
    path = folder / "application_herborn.json"
    path.write_text(json.dumps(app, ensure_ascii=False), encoding="utf-8")
    return path


def _wait_for(url):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=1)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _login(client, name, password):
    html = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def test_a_sixth_city_by_configuration(sqlite_url, tmp_path):
    shipped = (ROOT / "engine" / "defaults" / "tenants.toml").read_text(encoding="utf-8")
    tenants_file = tmp_path / "tenants.toml"
    tenants_file.write_text(shipped + HERBORN, encoding="utf-8")
    cli = Cli(sqlite_url, tmp_path)
    mailbox_port, web_port = free_port(), free_port()
    cli.env.update(OZGFLOW_TENANTS=str(tenants_file), OZGFLOW_FITCONNECT_URL=f"http://127.0.0.1:{mailbox_port}")

    listed = {t["id"]: t for t in cli.json("tenants")}
    assert list(listed) == ["marburg", "wetzlar", "giessen", "limburg", "fulda", "herborn"]
    assert listed["herborn"]["destinations"] == [{
        "id": "5b1f0c2e-8d3a-4c6b-9e7f-0a1b2c3d4e5f", "services": ["99102013104000"], "client_id": "ozgflow-herborn",
        "keys": str(tmp_path / "var" / "keys" / "5b1f0c2e-8d3a-4c6b-9e7f-0a1b2c3d4e5f")}]
    assert {"leika": "99102013104000", "process": "hundesteuer-anmeldung"} in listed["herborn"]["services"]
    init = cli.json("init")
    assert (tmp_path / "var" / "keys" / "5b1f0c2e-8d3a-4c6b-9e7f-0a1b2c3d4e5f").is_dir(), init

    server = cli.popen("mailbox-server", "--port", mailbox_port)
    web = cli.popen("serve", "--host", "127.0.0.1", "--port", web_port)
    try:
        _wait_for(f"http://127.0.0.1:{mailbox_port}/.well-known/jwks.json")
        sent = cli.json("mailbox", "send", _application_for_herborn(tmp_path), "--tenant", "herborn")
        picked = cli.json("mailbox", "pickup", "--tenant", "herborn")
        assert picked["accepted"] == [sent["submissionId"]], picked
        [case] = [c for c in cli.json("case", "list") if c["tenant"] == "herborn"]
        assert case["process_id"] == "hundesteuer-anmeldung" and case["aktenzeichen"].startswith("HB-")
        [herborn] = [c for c in cli.json("ikz")["cities"] if c["tenant"] == "herborn"]  # the command line
        assert sum(p["received"] for p in herborn["processes"]) == 1
        assert "herborn    hundesteuer-anmeldung" in cli("ikz").stdout

        cli("users", "add", "tl.herborn", "--tenant", "herborn", "--role", "teamlead", input="herborn-geheim-1\n")
        token = cli("users", "token", "tl.herborn").stdout.strip()
        _wait_for(f"http://127.0.0.1:{web_port}/health")
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}") as client:
            ikz = client.get("/api/v1/ikz", headers={"Authorization": f"Bearer {token}"}).json()
            [herborn] = [c for c in ikz["cities"] if c["tenant"] == "herborn"]
            [row] = [p for p in herborn["processes"] if p["process_id"] == "hundesteuer-anmeldung"]
            assert (herborn["name"], row["received"], row["open"]) == ("Stadt Herborn", 1, 1)
            assert _login(client, "tl.herborn", "herborn-geheim-1").status_code == 302
            page = client.get("/ikz").text
            assert "Stadt Herborn" in page and "Universitätsstadt Marburg" in page
            assert case["aktenzeichen"] not in page  # figures only, even for the city's own team lead
    finally:
        for proc in (web, server):
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
