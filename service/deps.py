"""What the app holds and its routes need, as ``Annotated`` dependencies.

``create_app`` (service/app.py) puts one ``ServiceState`` on ``app.state.service`` and the
lifespan loads its engine; routes, the stream and the server's signal handler reach it
through this module only. The dependencies take an ``HTTPConnection``, so the WebSocket
route declares them like the HTTP routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from service.engine import LivenessEngine
from service.errors import NotReady
from service.metrics import ServiceMetrics
from service.security.access import AccessControl
from service.settings import Settings
from service.shutdown import Drain


@dataclass
class ServiceState:
    """One app's settings, metrics, access control, shutdown state and engine."""

    settings: Settings
    metrics: ServiceMetrics
    access: AccessControl
    drain: Drain
    engine: LivenessEngine | None = None  # set by the lifespan while the model is loaded
    not_ready_reason: str = "the server has not started"

    def ready_engine(self) -> LivenessEngine:
        """The loaded engine; NotReady, with the reason, while there is none."""
        if self.engine is None:
            raise NotReady(f"the model is not loaded: {self.not_ready_reason}")
        return self.engine


def state_of(app) -> ServiceState:
    return app.state.service


def get_state(conn: HTTPConnection) -> ServiceState:
    return state_of(conn.app)


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_metrics(state: StateDep) -> ServiceMetrics:
    return state.metrics


def get_access(state: StateDep) -> AccessControl:
    return state.access


def get_engine(state: StateDep) -> LivenessEngine:
    """The loaded engine, or a 503 ``not_ready`` with the reason."""
    return state.ready_engine()


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
AccessDep = Annotated[AccessControl, Depends(get_access)]
EngineDep = Annotated[LivenessEngine, Depends(get_engine)]
