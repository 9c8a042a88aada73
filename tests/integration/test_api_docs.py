"""The OpenAPI document and the documentation pages as the API serves them (no key needed)."""

from __future__ import annotations

import re

import pytest
import yaml
from openapi_spec_validator import validate

PAGES = ("/api/schema/swagger/", "/api/schema/redoc/")
LOCAL_REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')


async def test_the_document_is_served_as_json_and_yaml_without_a_key(api):
    as_json = await api.get("/api/schema/")
    assert as_json.status == 200
    assert as_json.content_type == "application/json"
    assert as_json.headers["X-Request-ID"]
    document = await as_json.json()
    validate(document)
    assert "/api/payouts/" in document["paths"]

    as_yaml = await api.get("/api/schema/", params={"format": "yaml"})
    assert as_yaml.status == 200
    assert as_yaml.content_type == "application/yaml"
    assert yaml.safe_load(await as_yaml.text()) == document


async def test_an_unknown_format_is_a_problem(api):
    resp = await api.get("/api/schema/", params={"format": "xml"})
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"].endswith("/invalid-parameter")
    assert "format" in problem["errors"]


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_loads_only_files_the_api_serves(api, page):
    resp = await api.get(page)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    references = LOCAL_REFERENCE.findall(html)
    assert references, html
    assert "://" not in html, "the page must not load anything from another origin"
    for reference in references:
        assert reference.startswith("../assets/"), reference
        asset = await api.get(page + reference)
        assert asset.status == 200, reference
        assert int(asset.headers["Content-Length"]) > 0
        assert asset.content_type in {"text/javascript", "text/css", "image/png"}


async def test_an_unknown_docs_file_is_a_404_problem(api):
    resp = await api.get("/api/schema/assets/secrets.txt")
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("/not-found")
    resp = await api.get("/api/schema/assets/..%2Fopenapi.py")
    assert resp.status == 404
