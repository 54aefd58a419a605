"""Run the HTTP/WebSocket liveness server (uvicorn, one process).

Every option can also be set in the environment as LIVENESS_<NAME> (e.g.
LIVENESS_MODEL_DIR, LIVENESS_MAX_STREAMS, LIVENESS_BATCH_MAX_SIZE); flags given here
win. With no --model-dir the embedded default model is served.
"""

from __future__ import annotations

import argparse
import sys

# flag -> settings field, for the options worth a flag; the rest come from the environment
FLAGS = {
    "host": "host",
    "port": "port",
    "model_dir": "model_dir",
    "providers": "providers",
    "threads": "threads",
    "yunet_model": "yunet_model",
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
        choices=("auto", "cpu", "cuda"),
        help="ONNX Runtime providers (default auto: CUDA when available)",
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--yunet-model", help="YuNet face detector ONNX, for models that use it")
    parser.add_argument("--cpu-workers", type=int, help="threads for decoding and preprocessing")
    parser.add_argument("--max-streams", type=int, help="concurrent WebSocket streams (default 16)")
    parser.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), help="log level"
    )


def build_settings(args: argparse.Namespace):
    from service.settings import Settings

    overrides = {field: getattr(args, flag) for flag, field in FLAGS.items()}
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from service.app import create_app
    from service.engine import ModelLoadError, check_model_dir

    try:
        settings = build_settings(args)
        check_model_dir(
            settings.model_dir
        )  # fail here, with the reason, rather than inside uvicorn
    except ValidationError as exc:
        print(f"liveness serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except ModelLoadError as exc:
        print(f"liveness serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Messages up to twice the limit reach the app, which answers with a JSON error and
        # close 1009; larger ones are refused by the protocol layer (also 1009).
        ws_max_size=2 * settings.max_message_bytes,
        # The stream's receiver drains the socket into its one-slot mailbox at once; a short
        # protocol queue keeps a flooding client's unread messages to a few, not dozens.
        ws_max_queue=4,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
