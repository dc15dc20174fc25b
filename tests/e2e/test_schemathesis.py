"""Schemathesis against a real ``forum serve``: every operation of the served OpenAPI
document, fed data generated from that document (valid and invalid), answers a status the
document lists, with the content type, headers and body schema it declares, never a 5xx.

Two runs, bounded to about three minutes together:
* through the Python API, a few dozen examples per operation and generation mode, each
  sent as nobody, a member, the operator or with a garbage token;
* through the CLI (``st run``), as the operator: its coverage phase (boundary values,
  missing and malformed parts, systematically) and its stateful phase (a thread created,
  then replied to, read, edited... by following the document's links), for 60 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

CHECK_NAMES = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "response_headers_conformance"]
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


def test_schemathesis_cli_coverage_and_stateful_phases_find_nothing(stack, tmp_path: Path):
    _prepare(stack)
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "run", f"{stack.url}/api/schema/openapi.json",
        "--checks", ",".join(CHECK_NAMES), "--phases", "coverage,fuzzing,stateful",
        "--max-time", "60", "--workers", "1", "--request-timeout", "15",
        "--suppress-health-check", "all", "--generation-database", "none", "--no-color",
        "-H", f"Authorization: {OPERATOR['Authorization']}",
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
