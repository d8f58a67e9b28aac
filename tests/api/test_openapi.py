"""The served OpenAPI document tells the truth about auth and errors, for every operation (issue 8).
Schemathesis (tests/api/test_fuzz.py) then checks the running service against it."""

from __future__ import annotations

from typing import Any

from api.errors import STATUS_BY_CODE
from tests.support import World

PROBLEM = "application/problem+json"


def _codes(response: dict[str, Any]) -> set[str]:
    schema = response["content"][PROBLEM]["schema"]
    return set(schema["allOf"][1]["properties"]["code"]["enum"])


async def test_every_operation_documents_bearer_auth_and_its_problems(world: World) -> None:
    document = (await world.http.get("/schema/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    operations = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation["responses"]
            if not path.startswith("/api/v1"):
                assert operation["security"] == [], path
                continue
            operations += 1
            assert operation["security"] == [{"bearer": []}], (method, path)
            expected = {"400", "401", "403", "404", "405", "422", "429", "500"}
            if method != "get":
                expected |= {"409", "413", "415"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                assert set(responses[status]["content"]) == {PROBLEM}, (method, path, status)
                assert _codes(responses[status]), (method, path, status)
            assert "unauthenticated" in _codes(responses["401"])
            assert "validation_error" in _codes(responses["422"])
            if method != "get":
                assert {"malformed_request", "unknown_field", "idempotency_key_required"} <= _codes(
                    responses["400"]
                )
                assert {"duplicate", "request_in_progress", "invalid_state"} <= _codes(responses["409"])
            successes = [s for s in responses if s.startswith("2")]
            assert successes, (method, path)
            for status in successes:
                assert "application/json" in responses[status].get("content", {"application/json": 1})
    assert operations >= 40
    # Every stable code with a status of its own is documented somewhere.
    documented: set[str] = set()
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                if PROBLEM in response.get("content", {}):
                    documented |= _codes(response)
    # (`schema_out_of_date` is the command line's: `loanfund serve` will not start on such a database.)
    assert {code for code, status in STATUS_BY_CODE.items() if status != 503} <= documented
