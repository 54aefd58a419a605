"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.engine import LivenessEngine
from service.errors import NotReady
from service.settings import Settings


def get_engine(request: Request) -> LivenessEngine:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise NotReady(f"the model is not loaded: {request.app.state.not_ready_reason}")
    return engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[LivenessEngine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
