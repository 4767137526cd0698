"""The admin API's OpenAPI document in the repo is the one the API serves."""

from __future__ import annotations

import json

import pytest

from infra.openapi import DOC, current_document
from tests.support.apigw import LambdaContext, http_event
from tests.support.aws import aws_stack
from tests.support.handlers import load_handler

pytestmark = pytest.mark.contract


def test_committed_document_matches_routes_and_models():
    assert DOC.read_text() == current_document(), "docs/admin-openapi.json is stale: run `make openapi`"


def test_served_document_is_the_committed_one_and_needs_no_token():
    with aws_stack():
        reply = load_handler("admin_api").lambda_handler(http_event("GET", "/admin/openapi.json"), LambdaContext())
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == json.loads(DOC.read_text())


def test_document_describes_the_required_routes():
    paths = json.loads(DOC.read_text())["paths"]
    assert {"post", "get"} <= set(paths["/admin/communities"])
    assert {"post", "get"} <= set(paths["/admin/plans"])
    assert "get" in paths["/admin/members"] and "get" in paths["/admin/kpis"]
    member = json.loads(DOC.read_text())["components"]["schemas"]["EntitlementOut"]
    assert member["properties"]["state"]["enum"] == ["pending", "active", "grace", "ended"]


def test_document_lists_the_real_error_statuses_in_the_one_envelope_and_the_bearer_scheme():
    doc = json.loads(DOC.read_text())
    # Given every operation of the admin API
    operations = [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    assert operations
    # Then none documents FastAPI's 422 (validation answers 400), each documents 401, bodies 413/415
    for path, method, op in operations:
        responses = op["responses"]
        assert "422" not in responses and "401" in responses, (path, method)
        if method == "post":
            assert {"400", "413", "415"} <= set(responses), (path, method)
        for status, answer in responses.items():
            if int(status) >= 400:
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    assert set(doc["components"]["schemas"]["ErrorBody"]["properties"]) == {"code", "message", "field"}
