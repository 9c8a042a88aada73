"""The OpenAPI document and the Swagger UI and Redoc pages that render it (no key needed).

The pages use relative URLs (../ is /api/schema/), so they also work behind a path prefix. Their
Content-Security-Policy keeps the browser on this origin: Redoc's sidebar would otherwise fetch
its "API docs by Redocly" logo from a CDN.
"""

from __future__ import annotations

from aiohttp import web

from payout_api.openapi.assets import ASSETS
from payout_api.openapi.document import document_json, document_yaml
from payout_api.problems import Problem

ASSET_MAX_AGE_S = 3600
# Inline styles: both UIs set style attributes; blob: workers: Redoc's search index.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)

SWAGGER_UI_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Payout API - Swagger UI</title>
  <link rel="icon" type="image/png" href="../assets/favicon-32x32.png">
  <link rel="stylesheet" href="../assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="../assets/swagger-ui-bundle.js"></script>
  <script src="../assets/swagger-initializer.js"></script>
</body>
</html>
"""

REDOC_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Payout API - Redoc</title>
  <link rel="icon" type="image/png" href="../assets/favicon-32x32.png">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="../"></redoc>
  <script src="../assets/redoc.standalone.js"></script>
</body>
</html>
"""


async def openapi_document(request: web.Request) -> web.Response:
    output = request.query.get("format", "json")
    if output == "json":
        return web.Response(body=document_json(), content_type="application/json")
    if output == "yaml":
        return web.Response(body=document_yaml(), content_type="application/yaml")
    raise Problem(
        400,
        "invalid-parameter",
        "Invalid query parameter: format.",
        errors={"format": ["Must be one of: json, yaml."]},
    )


def _page(html: str) -> web.Response:
    return web.Response(
        text=html, content_type="text/html", headers={"Content-Security-Policy": PAGE_POLICY}
    )


async def swagger_ui(_request: web.Request) -> web.Response:
    return _page(SWAGGER_UI_PAGE)


async def redoc(_request: web.Request) -> web.Response:
    return _page(REDOC_PAGE)


async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    found = ASSETS.get(name)
    if found is None:
        raise Problem(404, "not-found", f"No documentation file {name[:64]!r}.")
    return web.FileResponse(
        found.path,
        headers={
            "Content-Type": found.content_type,
            "Cache-Control": f"public, max-age={ASSET_MAX_AGE_S}",
        },
    )


def add_docs_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/schema/", openapi_document, name="openapi")
    router.add_get("/api/schema/swagger/", swagger_ui, name="swagger-ui")
    router.add_get("/api/schema/redoc/", redoc, name="redoc")
    router.add_get("/api/schema/assets/{name}", asset, name="docs-asset")
