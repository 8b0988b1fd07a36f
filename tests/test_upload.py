"""Uploading process models by API: versions, refusals with file and line, limits (413), zips, roles, audit."""

import io
import json
import struct
import time
import zipfile

import pytest
from bpmn_snippets import user_task_process, with_step
from conftest import DATA, make_runtime
from sqlalchemy import func, select

from engine.schema import Deployment, ProcessVersion
from engine.users import add_user, create_token
from web import create_app

PASSWORD = "richtig-geheim-1"
URL = "/api/v1/process-models"


@pytest.fixture
def upload_rt(db_url, tmp_path):
    runtime = make_runtime(db_url, tmp_path / "var")
    add_user(runtime, "dora", "marburg", "designer", PASSWORD, [])
    add_user(runtime, "anna", "marburg", "caseworker", PASSWORD, ["steuern"])
    yield runtime
    runtime.close()


@pytest.fixture
def app(upload_rt):
    return create_app({"TESTING": True}, runtime=upload_rt)


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(rt, name="dora"):
    return {"Authorization": f"Bearer {create_token(rt, name)}"}


def post(client, rt, files, name="dora"):
    """POST the (file name, bytes) pairs as parts named ``files``."""
    data = {"files": [(io.BytesIO(content), filename) for filename, content in files]}
    return client.post(URL, data=data, headers=bearer(rt, name), content_type="multipart/form-data")


def count_versions(rt):
    with rt.reader.connect() as conn:
        return conn.execute(select(func.count()).select_from(ProcessVersion)).scalar_one()


def zipped(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in entries.items():
            z.writestr(name, content)
    return buf.getvalue()


def test_designer_uploads_files_and_gets_the_next_version(client, upload_rt):
    form = (DATA / "two_tasks" / "forms" / "a.schema.json").read_bytes()
    resp = post(client, upload_rt, [("two_tasks.bpmn", (DATA / "two_tasks" / "two_tasks.bpmn").read_bytes()),
                                    ("forms/a.schema.json", form)])
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json() == {"versions": [{"process_id": "two_tasks", "version": 1, "new": True}]}
    again = post(client, upload_rt, [("p.bpmn", user_task_process("p"))])
    assert again.status_code == 201
    changed = post(client, upload_rt, [("p.bpmn", user_task_process("p", name="Anders"))])
    assert changed.get_json()["versions"] == [{"process_id": "p", "version": 2, "new": True}]
    same = post(client, upload_rt, [("p.bpmn", user_task_process("p", name="Anders"))])
    assert same.status_code == 200 and same.get_json()["versions"][0]["new"] is False

    listing = client.get(URL, headers=bearer(upload_rt)).get_json()["models"]
    by_id = {m["process_id"]: m for m in listing}
    assert [v["version"] for v in by_id["p"]["versions"]] == [2, 1]
    assert by_id["p"]["versions"][0]["executable"] is True
    assert by_id["p"]["versions"][0]["created_by"] == "dora"
    assert by_id["two_tasks"]["versions"][0]["created_at"].startswith("20")


def test_every_deploy_is_audited_with_actor_files_and_hashes(client, upload_rt):
    import hashlib

    content = user_task_process("p")
    assert post(client, upload_rt, [("p.bpmn", content)]).status_code == 201
    with upload_rt.reader.connect() as conn:
        [row] = conn.execute(select(Deployment)).mappings().all()
    assert row["actor"] == "dora"
    assert json.loads(row["files"]) == [{"path": "p.bpmn", "sha256": hashlib.sha256(content).hexdigest()}]
    assert json.loads(row["versions"]) == [{"process_id": "p", "version": 1, "new": True}]


def test_caseworker_403_and_no_token_401(client, upload_rt):
    assert post(client, upload_rt, [("p.bpmn", user_task_process("p"))], name="anna").status_code == 403
    assert client.post(URL, data={}).status_code == 401
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=bearer(upload_rt, "anna")).status_code == 403  # listing: designers and admins
    assert count_versions(upload_rt) == 0


def test_refused_model_422_names_file_line_element_and_stores_nothing(client, upload_rt):
    bad = with_step('    <bpmn:scriptTask id="Step"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>'
                    '<bpmn:script>import os</bpmn:script></bpmn:scriptTask>')
    resp = post(client, upload_rt, [("bad.bpmn", bad)])
    assert resp.status_code == 422
    [problem] = resp.get_json()["errors"]
    assert problem == {"file": "bad.bpmn", "line": 7, "column": None, "element": "Step",
                       "message": "script refused: imports are not allowed"}
    assert count_versions(upload_rt) == 0


@pytest.mark.parametrize("name, content, expected", [
    ("x.bpmn", b"this is not XML", "not an XML document"),
    ("x.bpmn", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
     "DOCTYPE"),
    ("x.bpmn", b"<a><b></a>", "XML syntax error"),
    ("../x.bpmn", user_task_process("p"), "not allowed"),
    ("/etc/x.bpmn", user_task_process("p"), "not allowed"),
    ("x.exe", b"MZ", "not accepted"),
    ("x.zip", b"PK\x03\x04garbage", "not a readable zip"),
    ("x.zip", b"garbage", "not a readable zip"),
])
def test_hostile_or_broken_files_422(client, upload_rt, name, content, expected):
    resp = post(client, upload_rt, [(name, content)])
    assert resp.status_code == 422, resp.get_json()
    assert expected in resp.get_json()["errors"][0]["message"]


def test_size_limits_413(app, client, upload_rt):
    app.config.update(UPLOAD_MAX_FILE_BYTES=2000, UPLOAD_MAX_REQUEST_BYTES=3000)
    big = user_task_process("p") + b" " * 2000
    resp = post(client, upload_rt, [("p.bpmn", big)])
    assert resp.status_code == 413 and "limit" in resp.get_json()["error"]
    small = user_task_process("p").ljust(1900)
    assert post(client, upload_rt, [("a.bpmn", small), ("b.bpmn", small)]).status_code == 413  # 2 × 1,900 bytes
    huge = client.post(URL, data=b"x" * 400_000, headers={**bearer(upload_rt), "Content-Type": "multipart/form-data; "
                                                          "boundary=zz"})
    assert huge.status_code == 413 and huge.is_json
    assert count_versions(upload_rt) == 0


def test_zip_of_a_process_folder(client, upload_rt):
    folder = DATA / "two_tasks"
    archive = zipped({f"two_tasks/{p.relative_to(folder).as_posix()}": p.read_bytes()
                      for p in folder.rglob("*") if p.is_file()} | {"two_tasks/__MACOSX/._x.bpmn": b"junk"})
    resp = post(client, upload_rt, [("two_tasks.zip", archive)])
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["versions"][0]["process_id"] == "two_tasks"


def test_zip_with_path_traversal_refused(client, upload_rt):
    archive = zipped({"../../evil.bpmn": user_task_process("p"), "ok.bpmn": user_task_process("q")})
    resp = post(client, upload_rt, [("m.zip", archive)])
    assert resp.status_code == 422
    assert "leaves the folder" in resp.get_json()["errors"][0]["message"]
    assert count_versions(upload_rt) == 0


def test_zip_bomb_by_declared_size_413(app, client, upload_rt):
    archive = zipped({f"p{i}.bpmn": b"\0" * 5_000_000 for i in range(12)})  # 60 MB unpacked, ~60 KB zipped
    started = time.monotonic()
    resp = post(client, upload_rt, [("bomb.zip", archive)])
    assert resp.status_code == 413 and "unpacks to" in resp.get_json()["error"]
    assert time.monotonic() - started < 5


def test_zip_bomb_with_forged_sizes_refused_while_unpacking(client, upload_rt):
    archive = bytearray(zipped({"p.bpmn": b"\0" * 30_000_000}))  # declares 30 MB: forge it to say 1,000 bytes
    local = archive.find(b"PK\x03\x04")
    central = archive.find(b"PK\x01\x02")
    archive[local + 22:local + 26] = struct.pack("<I", 1000)
    archive[central + 24:central + 28] = struct.pack("<I", 1000)
    started = time.monotonic()
    resp = post(client, upload_rt, [("forged.zip", bytes(archive))])
    assert resp.status_code in (413, 422)
    assert "cannot be unpacked" in json.dumps(resp.get_json()) or "declared size" in json.dumps(resp.get_json())
    assert time.monotonic() - started < 5
    assert count_versions(upload_rt) == 0


def test_a_zip_goes_alone(client, upload_rt):
    resp = post(client, upload_rt, [("a.zip", zipped({"p.bpmn": user_task_process("p")})), ("b.bpmn", b"<x/>")])
    assert resp.status_code == 422 and "alone" in resp.get_json()["errors"][0]["message"]


def test_no_files_422(client, upload_rt):
    resp = client.post(URL, data={"other": "x"}, headers=bearer(upload_rt), content_type="multipart/form-data")
    assert resp.status_code == 422 and "no files" in resp.get_json()["errors"][0]["message"]


def test_deeply_nested_expression_refused_quickly(client, upload_rt):
    script = "x = " + "-" * 200_000 + "1"
    bad = with_step('    <bpmn:scriptTask id="Step"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>'
                    f'<bpmn:script>{script}</bpmn:script></bpmn:scriptTask>')
    started = time.monotonic()
    resp = post(client, upload_rt, [("deep.bpmn", bad)])
    assert resp.status_code == 422 and "nested too deeply" in resp.get_json()["errors"][0]["message"]
    assert time.monotonic() - started < 5
