"""Run the HTTP/WebSocket liveness server (uvicorn, one process).

Every option can also be set in the environment as LIVENESS_<NAME> (e.g.
LIVENESS_MODEL_DIR, LIVENESS_MAX_STREAMS, LIVENESS_BATCH_MAX_SIZE); flags given here
win. With no --model-dir the embedded default model is served. Secrets
(LIVENESS_API_KEYS, LIVENESS_SIGNING_KEY) come from the environment only: a flag would
show them in the process list. Without API keys the server runs in open mode and says
so when it starts. On SIGTERM, open streams get a last message and a close 1001,
in-flight requests finish, then the server exits.

Connections: a request header must arrive within LIVENESS_HEADER_TIMEOUT_SECONDS (408)
and fit LIVENESS_MAX_HEADER_BYTES (431); a WebSocket client may send
LIVENESS_WS_MAX_CONTROL_FRAMES_PER_SECOND pings and pongs (more: close 1008); streams
opened by web pages of other origins than the server's own or LIVENESS_STREAM_ORIGINS are
refused (403); LIVENESS_AUTH_MAX_FAILURES wrong credentials from one address get it 429.
Native libraries' stderr lines (libjpeg's warnings) are logged as JSON by the logger.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import sys

from model.config import DETECTORS, PROVIDER_CHOICES

STREAM_GRACE_S = 5.0  # on SIGTERM, how long open streams get to take their close (1001)

# flag -> settings field, for the options worth a flag; the rest come from the environment
FLAGS = {
    "host": "host",
    "port": "port",
    "model_dir": "model_dir",
    "providers": "providers",
    "threads": "threads",
    "yunet_model": "yunet_model",
    "detector_override": "detector_override",
    "threshold": "threshold",
    "calibration": "calibration",
    "cpu_workers": "cpu_workers",
    "max_streams": "max_streams",
    "log_level": "log_level",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument(
        "--model-dir", help="model directory to serve (default: the embedded default model)"
    )
    parser.add_argument(
        "--providers",
        choices=PROVIDER_CHOICES,
        help="ONNX Runtime providers (default auto: CUDA when available)",
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--yunet-model", help="YuNet face detector ONNX, for models that use it")
    parser.add_argument(
        "--detector-override",
        choices=DETECTORS,
        help="serve with this face detector, not the one the model was trained with (warns)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="decision threshold in place of the model manifest's (0 to 1)",
    )
    parser.add_argument(
        "--calibration",
        metavar="FILE",
        help="calibration.json from `liveness calibrate` for this model: its threshold in "
        "place of the manifest's (--threshold wins; default: none)",
    )
    parser.add_argument("--cpu-workers", type=int, help="threads for decoding and preprocessing")
    parser.add_argument("--max-streams", type=int, help="concurrent WebSocket streams (default 16)")
    parser.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), help="log level"
    )


def build_settings(args: argparse.Namespace):
    from service.settings import Settings

    overrides = {field: getattr(args, flag) for flag, field in FLAGS.items()}
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def settings_errors(exc) -> str:
    """A ValidationError as 'field: message' lines, without the values (they may be keys)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def log_config(level: str) -> dict:
    """uvicorn's logging, plus the service's loggers (start-up notes, the access log)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # uvicorn's handshake lines print the URL: a stream's ?token= must not reach a log
    config.setdefault("filters", {})["redact"] = {"()": "service.accesslog.RedactQueryStrings"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    config["loggers"]["liveness"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def make_server(config, app):
    """A uvicorn.Server whose first SIGTERM/SIGINT drains the streams (1001) first."""
    import uvicorn

    from service.deps import state_of

    state = state_of(app)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            engine = state.engine
            streams = (lambda: engine.active_streams) if engine else (lambda: 0)
            proceed = functools.partial(uvicorn.Server.handle_exit, self, sig, frame)
            if self.should_exit or not state.drain.begin(streams, proceed, STREAM_GRACE_S):
                proceed()

    return DrainingServer(config)


def run(args: argparse.Namespace) -> int:
    # ONNX Runtime (>= 1.29) sends usage telemetry and keeps a session file in TMPDIR unless
    # told not to before its first session: a biometric service calls no one and writes
    # nothing (set ORT_DISABLE_TELEMETRY=0 to opt back in)
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    # OpenCV reads its decoders' pixel limit once, when it is loaded: the second guard behind
    # the frame-header check (service/images.py)
    from service.settings import MAX_FRAME_PIXELS

    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_FRAME_PIXELS))
    import uvicorn
    from pydantic import ValidationError

    from service.app import create_app
    from service.engine import ModelLoadError, check_model_dir, settings_threshold

    try:
        settings = build_settings(args)
        # fail here, with the reason, rather than inside uvicorn
        check_model_dir(settings.model_dir)
        settings_threshold(settings)  # a calibration file for other weights, say so now
    except ValidationError as exc:
        print(f"liveness serve: invalid settings:\n{settings_errors(exc)}", file=sys.stderr)
        return 2
    except ModelLoadError as exc:
        print(f"liveness serve: {exc}", file=sys.stderr)
        return 2
    from service.nativelog import capture_native_stderr
    from service.security.protocols import http_protocol, websocket_protocol

    # libjpeg's warnings are printed by C code on fd 2: through the JSON logger instead
    capture_native_stderr()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        # httptools with a header timeout and size limit, websockets with control frames
        # rate-limited and stalled writes dropped (service/security/protocols.py)
        http=http_protocol(settings),
        ws=websocket_protocol(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        # uvicorn's access log prints query strings (a stream's ?token=): the service
        # writes its own, without them (service/accesslog.py)
        access_log=False,
        # Messages up to twice the limit reach the app, which answers with a JSON error and
        # close 1009; larger ones are refused by the protocol layer (also 1009).
        ws_max_size=2 * settings.max_message_bytes,
        # The stream's receiver drains the socket into its one-slot mailbox at once; a short
        # protocol queue keeps a flooding client's unread messages to a few, not dozens.
        ws_max_queue=4,
        timeout_graceful_shutdown=10,
    )
    server = make_server(config, app)
    server.run()
    return 0 if server.started else 1
