"""``/docs`` (Swagger UI), ``/redoc`` (ReDoc) and ``/openapi.json``, served offline.

The pages' scripts and styles are the files the pinned ``fastapi-offline`` package ships
(Swagger UI 5, ReDoc 2), served by the app itself from ``/docs/assets/``: no CDN, so the
docs work on a network with no way out and no third-party script runs on the API's
origin. Each page loads only same-origin files, with ``integrity`` (SHA-384) on every
script and style tag, under a Content-Security-Policy that allows nothing else (styles
may be inline: both UIs set style attributes; ReDoc runs its search in a blob: worker).

Who may read them follows ``LIVENESS_DOCS_ACCESS`` (with API keys configured): ``open``,
``key`` (an API key or token in a header, as on /v1) or ``off`` (404). Without keys they
are open unless ``off``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import importlib.util
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from service.deps import AccessDep, SettingsDep
from service.errors import NotFound, ServiceError
from service.security.auth import BearerDep, KeyDep, require_client

router = APIRouter(include_in_schema=False)
ASSET_PACKAGE = "fastapi_offline"  # pyproject: fastapi-offline==1.7.7
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
SWAGGER_INIT = "swagger-init.js"  # this module's own: starts Swagger UI on /openapi.json
SWAGGER_INIT_JS = b"""window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}


def asset_dir() -> Path:
    spec = importlib.util.find_spec(ASSET_PACKAGE)
    if spec is None or spec.origin is None:
        raise ServiceError(f"the docs assets are missing: the package {ASSET_PACKAGE} is gone")
    return Path(spec.origin).parent / "static"


@functools.cache
def asset(name: str) -> bytes:
    if name == SWAGGER_INIT:
        return SWAGGER_INIT_JS
    return (asset_dir() / name).read_bytes()


@functools.cache
def integrity(name: str) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(asset(name)).digest()).decode()


async def docs_access(
    request: Request, settings: SettingsDep, access: AccessDep, bearer: BearerDep, api_key: KeyDep
) -> None:
    """/docs, /redoc and /openapi.json: open, behind a key, or off (LIVENESS_DOCS_ACCESS)."""
    await _gate(request, access, bearer, api_key, settings.docs_access, "docs")


async def metrics_access(
    request: Request, settings: SettingsDep, access: AccessDep, bearer: BearerDep, api_key: KeyDep
) -> None:
    """GET /metrics: open, behind a key, or off (LIVENESS_METRICS_ACCESS)."""
    await _gate(request, access, bearer, api_key, settings.metrics_access, "metrics")


async def _gate(request: Request, access, bearer, api_key, setting: str, what: str) -> None:
    if setting == "off":
        raise NotFound(f"the {what} are turned off on this server")
    if setting == "key":
        await require_client(request, access, bearer, api_key)


def _script(name: str) -> str:
    # relative URLs: the pages also work behind a proxy under a path prefix
    return f'<script src="docs/assets/{name}" integrity="{integrity(name)}"></script>'


def _page(title: str, head: str, body: str) -> HTMLResponse:
    text = (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f'<link rel=icon href="docs/assets/favicon.png">{head}</head><body>{body}</body></html>'
    )
    return HTMLResponse(text, headers=PAGE_HEADERS)


@router.get("/openapi.json", dependencies=[Depends(docs_access)])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(docs_access)])
async def swagger_ui(request: Request) -> HTMLResponse:
    title = f"{request.app.title} - Swagger UI"
    css = (
        '<link rel=stylesheet href="docs/assets/swagger-ui.css" '
        f'integrity="{integrity("swagger-ui.css")}">'
    )
    body = '<div id="swagger-ui"></div>' + _script("swagger-ui-bundle.js") + _script(SWAGGER_INIT)
    return _page(title, css, body)


@router.get("/redoc", dependencies=[Depends(docs_access)])
async def redoc(request: Request) -> HTMLResponse:
    title = f"{request.app.title} - ReDoc"
    body = '<redoc spec-url="openapi.json"></redoc>' + _script("redoc.standalone.js")
    return _page(title, "", body)


@router.get("/docs/assets/{name}", dependencies=[Depends(docs_access)])
async def docs_asset(name: str) -> Response:
    if name == SWAGGER_INIT:
        media_type = "text/javascript; charset=utf-8"
    elif name in ASSETS:
        media_type = ASSETS[name]
    else:
        raise NotFound(f"no docs asset {name!r}")
    return Response(asset(name), media_type=media_type, headers={"Cache-Control": "no-cache"})
