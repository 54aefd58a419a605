"""Native libraries' stderr lines, through the service's logger instead of raw into its log.

libjpeg (inside OpenCV) prints warnings such as ``Corrupt JPEG data: premature end of data
segment`` with ``fprintf(stderr, ...)``; OpenCV's log level does not reach them. So
``liveness serve`` points file descriptor 2 at a pipe before anything else starts: a
thread reads it and logs each line as a JSON message of the logger ``liveness.native``
(``{"event": "native", "message": ...}``, at most ``LINES_PER_SECOND`` a second, the rest
counted). Python's own ``sys.stderr`` (uvicorn's and the service's log handlers, tracebacks)
and faulthandler's crash reports keep writing to the original stderr.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import sys
import threading

from service.security.ratelimit import TokenBucket

log = logging.getLogger("liveness.native")
LINES_PER_SECOND = 20.0  # a flood of corrupt frames cannot flood the log
MAX_LINE_CHARS = 500


def _pump(fd: int) -> None:
    limiter = TokenBucket.per_second(LINES_PER_SECOND, burst_seconds=1.0)
    suppressed = 0
    with open(fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            pending = pending[-4 * MAX_LINE_CHARS :]
            for raw in lines:
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                if not limiter.allow():
                    suppressed += 1
                    continue
                fields = {"event": "native", "message": text[:MAX_LINE_CHARS]}
                if suppressed:
                    fields["suppressed"], suppressed = suppressed, 0
                # never let a logging fault stop the pipe being drained
                with contextlib.suppress(Exception):
                    log.warning(json.dumps(fields))


def capture_native_stderr() -> None:
    """Route what native code writes to fd 2 through ``liveness.native``; Python's
    ``sys.stderr`` keeps the original stream. Call once, before logging is configured."""
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(  # noqa: SIM115 (the process's stderr, for its whole life)
        original, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )
    faulthandler.enable(file=sys.stderr)  # a crash report must not depend on the thread
    threading.Thread(target=_pump, args=(read_end,), name="native-stderr", daemon=True).start()
