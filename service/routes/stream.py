"""``WS /v1/stream``: the route; the protocol lives in service/stream.py."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from service.deps import StateDep
from service.stream import serve_stream

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket, state: StateDep) -> None:
    await serve_stream(websocket, state)
