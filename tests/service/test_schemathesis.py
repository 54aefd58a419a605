"""Schemathesis over /openapi.json of a real server: requests generated from the schema,
valid and invalid, to every operation, with an API key, never get a server error.

Bounded for CI: a handful of examples per operation and generation mode. (Schemathesis's
own pytest plugin does not run under this pytest, so its Hypothesis strategies are
driven directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.service.secured import KEYS, secured_server  # noqa: F401 (fixture)

EXAMPLES = 6  # per operation and mode


@pytest.fixture(scope="module")
def api_schema(secured_server):  # noqa: F811
    return schemathesis.openapi.from_url(secured_server.url + "/openapi.json", timeout=30)


@pytest.mark.timeout(300)  # a bound for CI, whatever the generated inputs cost
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_for_any_generated_request(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/liveness", "POST /v1/token", "GET /readyz", "GET /metrics"} <= labels
    statuses: dict[str, set[int]] = {}
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case) -> None:
            response = case.call_and_validate(
                headers={"X-API-Key": KEYS["main"]}, timeout=60, checks=[not_a_server_error]
            )
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            call()
        except Unsatisfiable:  # an operation with no input to get wrong (GET /healthz)
            assert mode == GenerationMode.NEGATIVE and not operation.query
    # the generated requests reached the handlers: answers other than auth failures
    assert "POST /v1/liveness" in statuses
    assert all(codes - {401, 403} for codes in statuses.values()), statuses
