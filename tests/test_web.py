"""The web app's start page and health check, against a real SQLite database."""

import pytest
from conftest import make_runtime

from engine.setup import initialise
from web import create_app


@pytest.fixture
def client(sqlite_url, tmp_path):
    rt = make_runtime(sqlite_url, tmp_path / "var")
    initialise(rt)
    app = create_app({"TESTING": True}, runtime=rt)
    return app.test_client()


def test_health(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok" and resp.get_json()["schema"]


def test_start_page_lists_tenants_and_models(client):
    html = client.get("/").get_data(as_text=True)
    assert "Universitätsstadt Gießen" in html and "06631009" in html
    assert "hundesteuer-anmeldung" in html
