"""The OpenAPI schema at /api/schema and the docs page at /api/docs."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db


def test_schema_is_valid_openapi_3_with_the_users_paths_and_the_token_schemes(
    client: Client,
) -> None:
    response = client.get("/api/schema", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/users", "/api/v1/users/me", "/api/v1/users/{id}"} <= set(schema["paths"])
    assert not any(path.startswith("/v1/") for path in schema["paths"])  # the alias, once
    schemes = schema["components"]["securitySchemes"]
    assert schemes["api_key"] == {"type": "apiKey", "in": "header", "name": "x-api-token"}
    assert schemes["api_token_query"] == {"type": "apiKey", "in": "query", "name": "api_token"}
    assert schemes["bearerAuth"]["scheme"] == "bearer"


def test_schema_documents_the_envelopes(client: Client) -> None:
    schema = client.get("/api/schema", {"format": "json"}).json()

    me = schema["paths"]["/api/v1/users/me"]["get"]
    assert me["operationId"] == "getCurrentUser"
    ok = me["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok == "#/components/schemas/UserMeResponse"
    components = schema["components"]["schemas"]
    assert set(components["UserMeResponse"]["properties"]) == {"success", "data"}
    assert set(components["UserListResponse"]["properties"]["data"]) >= {"type", "items"}
    unauthorized = me["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
    assert unauthorized == "#/components/schemas/UnauthorizedResponse"
    assert {"success", "error", "error_info", "data", "additional_data", "errorCode"} == set(
        components["UnauthorizedResponse"]["properties"]
    )
    detail = schema["paths"]["/api/v1/users/{id}"]["get"]["responses"]
    assert detail["404"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/ErrorResponse"
    )


def test_schema_is_served_as_yaml_too(client: Client) -> None:
    response = client.get("/api/schema", {"format": "yaml"})

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert "/api/v1/users/me" in schema["paths"]


def test_docs_page_loads_swagger_ui_from_our_own_static_files(client: Client) -> None:
    response = client.get("/api/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn.jsdelivr.net" not in page
    assert "/api/schema" in page
