"""Fixtures of the web tests (imported by each tests/test_web_*.py): a Runtime on a real SQLite file with the
shipped models deployed, the Flask app and its test client, users of two tenants (Marburg, Wetzlar) and a
client logged in as one of them.

Time is injected: ``clock`` is a mutable clock the runtime reads, so tests move it instead of sleeping.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_runtime

from engine.setup import initialise
from engine.users import add_user
from web import create_app

PASSWORD = "richtig-geheim-1"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def web_rt(sqlite_url, tmp_path, clock):
    """A Runtime on a SQLite file with processes/ deployed and the injected clock."""
    runtime = make_runtime(sqlite_url, tmp_path / "var", clock=clock)
    initialise(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def app(web_rt):
    return create_app({"TESTING": True}, runtime=web_rt)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(web_rt):
    rt = web_rt
    """Caseworkers and a team lead of Marburg, a caseworker of Wetzlar, an admin."""
    return {
        "anna": add_user(rt, "anna", "marburg", "caseworker", PASSWORD, ["steuern"]),
        "bernd": add_user(rt, "bernd", "marburg", "caseworker", PASSWORD, ["steuern"]),
        "carla": add_user(rt, "carla", "marburg", "caseworker", PASSWORD, ["buergerbuero"]),
        "lena": add_user(rt, "lena", "marburg", "teamlead", PASSWORD, ["steuern"]),
        "wim": add_user(rt, "wim", "wetzlar", "caseworker", PASSWORD, ["steuern"]),
        "root": add_user(rt, "root", "marburg", "admin", PASSWORD, []),
    }


def csrf_of(html):
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client, name, password=PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def post_form(client, url, data, page=None):
    """POST a form the way a browser does: with the CSRF token of the page it was on."""
    html = client.get(page or "/").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_of(html)})


@pytest.fixture
def logged_in(client, users):
    """A client logged in as anna (caseworker of Marburg, group steuern)."""
    assert login(client, "anna").status_code == 302
    return client


def start(rt, tenant="marburg", data=None, count=1):
    """Start hundesteuer cases; returns their ids."""
    from engine.cases import start_case

    return [s["id"] for s in start_case(rt, "hundesteuer-anmeldung", tenant, data or {"hundename": "Bello"},
                                        count=count)]


def open_task(rt, case_id):
    from engine.cases import list_tasks

    return list_tasks(rt, case_id=case_id)[0]


def add_document(rt, case_id, content, filename="anlage.pdf", mime_type="application/pdf", purpose="attachment"):
    """A document of a case as the mailbox pickup stores it: a content-addressed blob and its row."""
    import hashlib

    from sqlalchemy import insert

    from engine.blobs import blob_store
    from engine.schema import Document

    sha256 = blob_store(rt).put(content)
    with rt.db.begin() as conn:
        return conn.execute(insert(Document).values(
            case_id=case_id, filename=filename, mime_type=mime_type, purpose=purpose, size=len(content),
            sha256=sha256, sha512=hashlib.sha512(content).hexdigest(), created_at=rt.clock())
            .returning(Document.id)).scalar_one()


def _sample_pdf():
    from conftest import SHARED

    return (SHARED / "ozg" / "fit-connect" / "01_hundesteuer_anmeldung_marburg" / "attachments"
            / "Antrag_Hundesteuer_Anmeldung.pdf").read_bytes()


SAMPLE_PDF = _sample_pdf()
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")
