"""Schemathesis against a real ``forum serve``: every operation of the served OpenAPI
document, fed data generated from that document (valid and invalid), answers a status the
document lists, with the content type and the body schema it declares, and never a 5xx.

Bounded: a few dozen examples per operation (a couple of minutes in all). Requests go as
nobody, as a member, as the operator, or with a garbage token, chosen per example.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import OPERATOR, Stack

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = 40



def _prepare(stack: Stack) -> dict[str, dict[str, str]]:
    """A section, a thread and a member to sign in as: some generated requests then hit
    things that exist (ids 1, slug "general"), the rest things that do not."""
    with httpx.Client(base_url=stack.url, timeout=10) as http:
        http.post("/api/forums", json={"slug": "general", "title": "General"},
                  headers=OPERATOR).raise_for_status()
        http.post("/api/forums/general/threads",
                  json={"title": "Hello", "body": "first", "guest_name": "gus"}
                  ).raise_for_status()
        http.post("/api/users", json={"name": "member1", "password": "long enough"}
                  ).raise_for_status()
        token = http.post("/api/sessions", json={"name": "member1", "password": "long enough"}
                          ).json()["token"]
    return {
        "nobody": {},
        "member": {"Authorization": f"Bearer {token}"},
        "operator": OPERATOR,
        "garbage": {"Authorization": "Bearer not-a-token"},
    }


def test_every_operation_answers_what_the_served_openapi_document_says(stack):
    credentials = _prepare(stack)
    schema = schemathesis.openapi.from_url(f"{stack.url}/api/schema/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode),
                   who=st.sampled_from(sorted(credentials)))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def call(case: schemathesis.Case, who: str) -> None:
                case.call_and_validate(base_url=stack.url, headers=credentials[who],
                                       checks=CHECKS, timeout=15)

            try:
                call()
            except Unsatisfiable:  # no parameters and no body: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as error:  # a FailureGroup of checks
                failures.append(f"{operation.label} ({mode.value}): {error}")
    assert not failures, "\n\n".join(failures)
