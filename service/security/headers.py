"""Security headers on every HTTP response (pure ASGI middleware).

Added where a route did not set its own: ``X-Content-Type-Options: nosniff`` (a JSON
answer is never sniffed into HTML or script), ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY`` with ``frame-ancestors 'none'`` (no page of the service can be
framed), ``Cache-Control: no-store`` (results and errors are never kept by a cache; the
demo page, its files and the docs set ``no-cache`` themselves), and, for anything that is
not one of the service's pages, ``Content-Security-Policy: default-src 'none'`` (an API
answer opened in a browser runs nothing). The demo page and the docs send their own CSP.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
