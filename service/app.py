"""``create_app()``: settings, metrics, the engine's lifespan and the routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from service import docs
from service.accesslog import AccessLogMiddleware
from service.deps import ServiceState, state_of
from service.engine import LivenessEngine, configure_opencv, load_model
from service.errors import install_error_handlers
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.routes import demo, health, liveness, stream
from service.schemas import stream_message_schemas
from service.security import auth
from service.security.access import AccessControl
from service.security.headers import SecurityHeadersMiddleware
from service.settings import Settings
from service.shutdown import Drain

log = logging.getLogger("liveness.service")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model once at start-up (never at import); fail start-up if it cannot be."""
    configure_opencv()
    state = state_of(app)
    state.not_ready_reason = "loading the model"
    engine = LivenessEngine(load_model(state.settings), state.settings, state.metrics)
    await engine.start()
    state.drain.bind()
    (log.warning if state.access.mode == "open" else log.info)(state.access.describe())
    state.engine = engine
    try:
        yield
    finally:
        state.engine = None
        state.not_ready_reason = "shutting down"
        await engine.stop()


class LivenessApp(FastAPI):
    """FastAPI with the security headers outside everything, Starlette's own 500 answers
    included (user middleware sits inside the error middleware)."""

    def build_middleware_stack(self):
        return SecurityHeadersMiddleware(super().build_middleware_stack())

    def openapi(self) -> dict:
        """The routes' schema, plus the stream's messages (service/schemas.py) under
        components/schemas: StreamClientMessage, StreamServerMessage and their parts."""
        if self.openapi_schema is None:
            schema = super().openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                stream_message_schemas()
            )
        return self.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    app = LivenessApp(
        title="liveness",
        summary="Face liveness from motion over time: is a live person in front of the camera?",
        version="1",
        lifespan=lifespan,
        # served by service/docs.py: offline assets, a CSP, and LIVENESS_DOCS_ACCESS
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    settings = settings or Settings()
    state = ServiceState(settings, ServiceMetrics(), AccessControl(settings), Drain())
    app.state.service = state  # read through service/deps.py
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(AccessLogMiddleware)
    # every /v1 route asks for a client (an API key or token unless in open mode)
    client = [Depends(auth.require_client)]
    app.include_router(liveness.router, dependencies=client)
    app.include_router(auth.router)
    for module in (stream, health, demo, docs):
        app.include_router(module.router)
    return app
