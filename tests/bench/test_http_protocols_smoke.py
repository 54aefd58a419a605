"""bench/http_protocols.py runs its real path (three uvicorn processes on loopback) and
prints a row per protocol; no timing is asserted."""

from __future__ import annotations

import re

import pytest

from bench import http_protocols

pytestmark = pytest.mark.server  # starts its own server processes


def test_the_protocol_bench_reports_every_protocol(capsys):
    assert http_protocols.main(["--requests", "50", "--rounds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(http_protocols.PROTOCOLS)
    assert rows[1].startswith("| httptools") and rows[1].endswith("| 1.00x |")
    assert all(re.search(r"\| \d+ \| \d+\.\d\dx \|$", row) for row in rows[1:])
