"""``GET /``: the browser demo page and its static files (service/static).

The page is plain HTML/JS/CSS served by the app itself (no build step, no CDN): it
streams the camera over ``WS /v1/stream`` and uploads clips to ``POST /v1/liveness``,
with relative URLs, so it also works behind a reverse proxy under a path prefix.
Only the files listed in ``STATIC_FILES`` are served; anything else is a 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.errors import NotFound, ServiceError

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
JS = "text/javascript; charset=utf-8"  # module scripts must be served as JavaScript
STATIC_FILES = {
    "app.js": JS,  # entry: wires the page's controls
    "common.js": JS,  # element lookup, status lines, the API key, server errors
    "stream.js": JS,  # the camera over WS /v1/stream
    "clip.js": JS,  # a clip to POST /v1/liveness and its timeline
    "style.css": "text/css; charset=utf-8",
}
# The page loads its own script and style only, talks to its own origin only (REST and the
# WebSocket), and shows the camera, frame thumbnails (blob:) and nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The files change with the package: revalidate rather than serve a stale page.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


def _static_path(name: str) -> Path:
    path = STATIC_DIR / name
    if not path.is_file():  # a broken installation: the package data is missing
        raise ServiceError(f"the demo page file {name} is missing from {STATIC_DIR}")
    return path


@router.get("/")
async def demo_page() -> FileResponse:
    """The demo page: camera stream and clip upload against this server."""
    headers = {**HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return FileResponse(
        _static_path("index.html"), media_type="text/html; charset=utf-8", headers=headers
    )


@router.get("/static/{name}")
async def static_file(name: str) -> FileResponse:
    """One of the page's own files (only those listed in ``STATIC_FILES``)."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound(f"no static file {name!r}: the demo page serves only its own files")
    return FileResponse(_static_path(name), media_type=media_type, headers=HEADERS)
