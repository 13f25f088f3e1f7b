"""The OpenAPI checker: route matching, request and response validation, nullable, examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from incidentops.sandbox.openapi import OpenApiSpec

SPECS = Path(__file__).resolve().parents[2] / "scripts" / "incidentops" / "sandbox" / "specs"


@pytest.fixture(scope="module")
def github() -> OpenApiSpec:
    return OpenApiSpec.load(SPECS / "github-openapi-subset.json")


def tiny_spec() -> OpenApiSpec:
    """A hand-written spec small enough to reason about every branch."""
    thing = {
        "type": "object",
        "required": ["id", "note"],
        "properties": {
            "id": {"type": "integer"},
            "note": {"type": "string", "nullable": True},
            "kind": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "owner": {"nullable": True, "allOf": [{"$ref": "#/components/schemas/owner"}]},
            "nullable": {"type": "boolean"},
        },
    }
    thing_ref = {"$ref": "#/components/schemas/thing"}
    owner = {"type": "object", "required": ["login"], "properties": {"login": {"type": "string"}}}
    return OpenApiSpec(
        {
            "openapi": "3.0.3",
            "paths": {
                "/things/{id}": {
                    "get": {
                        "responses": {
                            "200": {
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/thing"},
                                        "example": {"id": 1, "note": None},
                                    }
                                }
                            },
                            "4XX": {"$ref": "#/components/responses/error"},
                        }
                    },
                    "put": {
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": thing_ref}},
                        },
                        "responses": {"204": {"description": "done"}},
                    },
                },
                "/things/{id}/raw": {"post": {"responses": {"200": {"description": "ok"}}}},
            },
            "components": {
                "schemas": {
                    "thing": thing,
                    "owner": owner,
                },
                "responses": {
                    "error": {
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "required": ["message"]},
                            }
                        }
                    }
                },
            },
        }
    )


def test_valid_request_body_passes(github: OpenApiSpec) -> None:
    body = {"title": "API down", "body": "500s everywhere", "labels": ["sev-1"], "assignees": ["reader"]}
    assert github.validate_request("POST", "/repos/acme/ops/issues", body) == []


def test_missing_required_field_is_reported(github: OpenApiSpec) -> None:
    errors = github.validate_request("POST", "/repos/acme/ops/issues", {"body": "no title"})
    assert len(errors) == 1
    assert "'title' is a required property" in errors[0]
    errors = github.validate_request("POST", "/repos/acme/ops/pulls", {"title": "x"})
    assert any("'head'" in e for e in errors) and any("'base'" in e for e in errors)


def test_wrong_type_names_the_field(github: OpenApiSpec) -> None:
    errors = github.validate_request("POST", "/repos/acme/ops/issues/7/comments", {"body": 42})
    assert errors and "$.body" in errors[0]


def test_unknown_path_and_method_are_reported(github: OpenApiSpec) -> None:
    assert "no such path" in github.validate_request("GET", "/repos/acme/ops/wiki/pages", None)[0]
    assert "method not described" in github.validate_request("DELETE", "/repos/acme/ops", None)[0]
    assert "no such path" in github.validate_response("GET", "/nothing", 200, {})[0]


def test_request_without_json_schema_passes(github: OpenApiSpec) -> None:
    assert github.validate_request("GET", "/repos/acme/ops/issues/7", None) == []
    assert tiny_spec().validate_request("POST", "/things/1/raw", {"anything": True}) == []


def test_required_body_missing_is_reported() -> None:
    assert "required" in tiny_spec().validate_request("PUT", "/things/1", None)[0]


def test_nullable_is_accepted_and_null_is_rejected_elsewhere() -> None:
    spec = tiny_spec()
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": None}) == []
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": None, "kind": None}) == []
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": "x", "owner": None}) == []
    assert spec.validate_response("GET", "/things/1", 200, {"id": None, "note": "x"}) != []
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": "x", "kind": "c"}) != []
    # The nullable alternative still checks the non-null branch.
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": "x", "owner": {}}) != []


def test_property_named_nullable_is_not_mistaken_for_the_keyword() -> None:
    spec = tiny_spec()
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": "", "nullable": True}) == []
    assert spec.validate_response("GET", "/things/1", 200, {"id": 1, "note": "", "nullable": "no"}) != []


def test_status_ranges_and_undocumented_statuses() -> None:
    spec = tiny_spec()
    assert spec.validate_response("GET", "/things/1", 404, {"message": "Not Found"}) == []
    assert spec.validate_response("GET", "/things/1", 404, {}) != []
    assert "not documented" in spec.validate_response("GET", "/things/1", 500, {})[0]
    assert spec.documents_status("GET", "/things/1", 418)
    assert not spec.documents_status("GET", "/things/1", 503)
    assert spec.validate_response("PUT", "/things/1", 204, None) == []


def test_nullable_in_the_github_spec(github: OpenApiSpec) -> None:
    comment = github.example("GET", "/repos/acme/ops/issues/comments/1", 200)
    assert isinstance(comment, dict)
    comment["performed_via_github_app"] = None
    assert github.validate_response("GET", "/repos/acme/ops/issues/comments/1", 200, comment) == []
    comment["user"] = None  # nullable-simple-user
    assert github.validate_response("GET", "/repos/acme/ops/issues/comments/1", 200, comment) == []
    comment["id"] = None
    assert github.validate_response("GET", "/repos/acme/ops/issues/comments/1", 200, comment) != []


def test_paths_spanning_slashes_and_literal_preference(github: OpenApiSpec) -> None:
    assert github.match("GET", "/repos/acme/ops/contents/incidents/2024/INC-7.md") == (
        "/repos/{owner}/{repo}/contents/{path}"
    )
    assert github.match("GET", "/repos/acme/ops/git/ref/heads/main") == "/repos/{owner}/{repo}/git/ref/{ref}"
    assert github.match("GET", "/repos/acme/ops/issues/comments/5") == (
        "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    )
    assert github.match("GET", "/repos/acme/ops/issues/5/comments") == (
        "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    )


def test_examples_come_from_the_spec(github: OpenApiSpec) -> None:
    issue: Any = github.example("GET", "/repos/acme/ops/issues/7", 200)
    assert issue["number"] == 1347
    assert github.validate_response("GET", "/repos/acme/ops/issues/7", 200, issue) == []
    issue["number"] = "seven"
    assert github.validate_response("GET", "/repos/acme/ops/issues/7", 200, issue) != []
    assert github.example("GET", "/nothing", 200) is None
    assert tiny_spec().example("GET", "/things/1", 200) == {"id": 1, "note": None}


def test_known_quirks_of_githubs_own_examples(github: OpenApiSpec) -> None:
    # Recorded in the reference notes: the emulator must add these fields itself.
    repo = github.example("GET", "/repos/acme/ops", 200)
    assert any("'language'" in e for e in github.validate_response("GET", "/repos/acme/ops", 200, repo))
    perm = github.example("GET", "/repos/acme/ops/collaborators/x/permission", 200)
    errors = github.validate_response("GET", "/repos/acme/ops/collaborators/x/permission", 200, perm)
    assert any("role_name" in e for e in errors)


def test_load_is_cached() -> None:
    path = SPECS / "github-openapi-subset.json"
    assert OpenApiSpec.load(path) is OpenApiSpec.load(path)


def test_cloudflare_spec_loads() -> None:
    spec = OpenApiSpec.load(SPECS / "cloudflare-openapi-subset.json")
    assert spec.match("GET", "/zones/abc/rulesets/phases/http_request_firewall_custom/entrypoint") is not None


def test_ambiguous_one_of_of_loose_objects_accepts_an_error_body(github: OpenApiSpec) -> None:
    # GitHub's 409 for contents PUT is oneOf two all-optional objects; any error body matches both.
    body = {"message": "a.txt does not match abc", "documentation_url": "https://docs.github.com/rest"}
    assert github.validate_response("PUT", "/repos/acme/ops/contents/a.txt", 409, body) == []
    assert github.validate_response("PUT", "/repos/acme/ops/contents/a.txt", 409, {"message": 3}) != []
