"""Per-request cost of the HTTP protocol: uvicorn's httptools, the service's
LimitedHttpProtocol (httptools plus a header timeout and size limit) and h11 with
``h11_max_incomplete_event_size`` (the other way to get a header size limit).

Each protocol serves a minimal ASGI app (a 2-byte answer, so the protocol is what is
measured) in its own process on loopback; one client sends keep-alive GETs with a
browser-sized header (~600 bytes) over one connection, the protocols taking turns round
after round so that a busy machine slows them alike. Printed: median microseconds per
request over the rounds, and each against httptools.

    python -m bench.http_protocols [--requests 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from bench.server import free_port, stop_process

PROTOCOLS = ("httptools", "limited", "h11")
HEADER = (
    "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n"
    "Cookie: " + "c" * 300 + "\r\nX-API-Key: key-0123456789abcdef\r\n\r\n"
).encode()


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def serve(name: str, port: int) -> None:
    import uvicorn

    from service.security.protocols import http_protocol
    from service.settings import Settings

    http = {"httptools": "httptools", "h11": "h11", "limited": http_protocol(Settings())}[name]
    uvicorn.run(
        "bench.http_protocols:app",
        host="127.0.0.1",
        port=port,
        http=http,
        h11_max_incomplete_event_size=64 * 1024,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def measure(port: int, requests: int) -> float:
    """Microseconds per request, keep-alive, one at a time."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for _ in range(requests):
            s.sendall(HEADER)
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                answer += s.recv(4096)
        return (time.perf_counter() - started) / requests * 1e6


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            measure(port, 1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server on {port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", nargs=2, metavar=("PROTOCOL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    ports = {name: free_port() for name in PROTOCOLS}
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench.http_protocols", "--serve", n, str(p)])
        for n, p in ports.items()
    ]
    try:
        for port in ports.values():
            wait_listening(port)
            measure(port, 200)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
        for _ in range(args.rounds):
            for name, port in ports.items():
                times[name].append(measure(port, args.requests))
    finally:
        for proc in procs:
            stop_process(proc, timeout=10)
    base = statistics.median(times["httptools"])
    print(f"| protocol | µs per request (median of {args.rounds}) | vs httptools |")
    print("|---|---|---|")
    labels = {
        "httptools": "httptools (uvicorn's default)",
        "limited": "LimitedHttpProtocol (httptools + header timeout and size limit)",
        "h11": "h11 with h11_max_incomplete_event_size",
    }
    for name in PROTOCOLS:
        median = statistics.median(times[name])
        print(f"| {labels[name]} | {median:.0f} | {median / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
