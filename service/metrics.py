"""Prometheus metrics in an app-owned registry (two apps in one process never collide).

``MetricsMiddleware`` counts HTTP requests by route template and status and times them;
the engine and the stream handler record frames, drops, streams and encoder batches.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.schemas import LivenessResult

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FRAME_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (1.0,)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu seconds, open fds
        self.requests = Counter(
            "liveness_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "liveness_http_request_duration_seconds",
            "HTTP request handling time",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.frame_seconds = Histogram(
            "liveness_stream_frame_latency_seconds",
            "Stream frame latency: message received to its answer sent",
            buckets=FRAME_BUCKETS,
            registry=r,
        )
        self.frames = Counter(
            "liveness_frames_processed",
            "Frames through preprocessing, by source (upload or stream)",
            ["source"],
            registry=r,
        )
        self.dropped = Counter(
            "liveness_stream_dropped_frames",
            "Stream frames dropped: 'busy' (a newer frame replaced it) or 'rate' (over the fps limit)",
            ["reason"],
            registry=r,
        )
        self.active_streams = Gauge(
            "liveness_active_streams", "WebSocket streams open now", registry=r
        )
        self.streams = Counter(
            "liveness_streams",
            "Finished WebSocket streams by outcome (result, error code, disconnect)",
            ["outcome"],
            registry=r,
        )
        self.batch_size = Histogram(
            "liveness_encoder_batch_size",
            "Face crops per encoder call (crops of streams and uploads merged)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )

        self.results = Counter(
            "liveness_results",
            "Results (uploads and streams) by source, label (the outcome) and model_label (the "
            "model's decision alone): a shadow period's figures",
            ["source", "label", "model_label"],
            registry=r,
        )
        self.scores = Histogram(
            "liveness_scores",
            "Result scores by label (the outcome)",
            ["label"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.gate_reasons = Counter(
            "liveness_gate_reasons",
            "Capture-quality gate reasons in results, by source and reason code",
            ["source", "reason"],
            registry=r,
        )

    def observe_result(self, source: str, body: LivenessResult) -> None:
        """Count one result body: its outcome, the model's own label, score and reasons."""
        self.results.labels(source, body.label, body.model_label).inc()
        self.scores.labels(body.label).observe(body.score)
        for reason in body.reasons:
            self.gate_reasons.labels(source, reason.code).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: request counts and durations by matched route template."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - start)
