"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from service.deps import AccessDep, EngineDep, MetricsDep
from service.docs import metrics_access
from service.schemas import ErrorResponse, Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive (always 200)")
async def healthz() -> Health:
    return Health(status="alive")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The model is loaded and requests are served",
    responses={503: {"model": ErrorResponse, "description": "Not ready, with the reason"}},
)
async def readyz(engine: EngineDep, access: AccessDep) -> Ready:
    return Ready(
        status="ready",
        model=engine.describe_model(),
        detector=engine.describe_detector(),
        threshold=engine.describe_threshold(),
        auth=access.mode,
        signed_verdicts=access.signing_key is not None,
        gates=engine.gates.mode,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {"model": ErrorResponse, "description": "LIVENESS_METRICS_ACCESS=key, no key"},
        404: {"model": ErrorResponse, "description": "LIVENESS_METRICS_ACCESS=off"},
    },
    dependencies=[Depends(metrics_access)],  # open, key or off: LIVENESS_METRICS_ACCESS
)
async def metrics(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
