"""The JavaScript, CSS and icon files that the Swagger UI and Redoc pages load from the API.

Swagger UI comes from the installed swagger-ui-bundle package, Redoc is vendored under
static/redoc/ (see its README.md) and the Swagger UI start script is ours: nothing is loaded
from a CDN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swagger_ui_bundle import swagger_ui_path

STATIC_DIR = Path(__file__).parent / "static"
REDOC_DIR = STATIC_DIR / "redoc"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))


@dataclass(frozen=True)
class Asset:
    path: Path
    content_type: str


ASSETS: dict[str, Asset] = {
    "swagger-ui.css": Asset(SWAGGER_UI_DIR / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": Asset(SWAGGER_UI_DIR / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-initializer.js": Asset(STATIC_DIR / "swagger-initializer.js", "text/javascript"),
    "favicon-32x32.png": Asset(SWAGGER_UI_DIR / "favicon-32x32.png", "image/png"),
    "redoc.standalone.js": Asset(REDOC_DIR / "redoc.standalone.js", "text/javascript"),
}
