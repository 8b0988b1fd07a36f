"""The OpenAPI document at /api/v1/openapi.json is valid OpenAPI 3.1, readable without a token, and
describes exactly the routes the app serves under /api/v1."""

import re

import pytest
from test_web_fixtures import *  # noqa: F403

METHODS = {"get", "post", "put", "patch", "delete"}


def _app_operations(app):
    ops = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            ops |= {(path, m.lower()) for m in rule.methods if m.lower() in METHODS}
    return ops


def test_openapi_document_matches_the_routes(client, app):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.is_json
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    described = {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}
    assert described == _app_operations(app)
    for path, item in doc["paths"].items():  # every path parameter is declared
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path


def test_openapi_document_is_valid():
    validator = pytest.importorskip("openapi_spec_validator", reason="pip install -e .[test]")
    from web.openapi import openapi_document

    validator.validate(openapi_document())


def test_documented_public_operations_really_need_no_token(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op.get("security") == [] or "{" in path or method != "get":
                continue
            assert client.get(path).status_code == 401, path  # everything else wants a bearer token
