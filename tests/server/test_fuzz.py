"""Fuzz the whole API from its own OpenAPI document (schemathesis): no request gets a 500,
every answer the document describes matches its schema, and every refusal is
`{"code", "message"}`."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.server.conftest import Served

EXAMPLES = 30


def test_no_input_makes_a_server_error(served: Served) -> None:
    if served.broker.runtime_name != "asyncio" and os.environ.get("FUZZ_ALL") != "1":
        pytest.skip("the routes are the same on every runtime: `make fuzz` runs the others too")
    opened = served.signup("fuzzer", deposit="1000000")
    headers = opened["headers"]
    served.client.post(
        "/api/orders", json={"symbol": "AAPL", "side": "buy", "quantity": 10}, headers=headers
    ).raise_for_status()
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 40
    for operation in operations:
        _fuzz(operation, served.url, headers)


def _fuzz(operation: Any, url: str, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=url, headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"code", "message"}, (operation.label, body)

    run()
