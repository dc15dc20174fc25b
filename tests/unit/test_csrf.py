"""The CSRF guard's pure parts, and its refusal off the pages (problem+json)."""

from __future__ import annotations

import pytest
from litestar import Litestar, post
from litestar.datastructures import State
from litestar.testing import TestClient

from service.errors import EXCEPTION_HANDLERS, PROBLEM
from service.web.csrf import FormGuard, derive_secret, foreign_origin


@pytest.mark.parametrize(("headers", "scheme", "foreign"), [
    ({"host": "forum.example", "origin": "https://forum.example"}, "http", False),
    ({"host": "forum.example:443", "origin": "https://forum.example"}, "https", False),
    ({"host": "forum.example", "origin": "http://forum.example:80"}, "http", False),
    ({"host": "Forum.Example", "origin": "https://forum.example"}, "http", False),
    ({"host": "[::1]:8000", "origin": "http://[::1]:8000"}, "http", False),
    ({"host": "forum.example", "referer": "https://forum.example/threads/1"}, "http", False),
    ({"host": "forum.example"}, "http", False),  # no header at all: the token decides
    ({"host": "forum.example", "origin": "https://evil.example"}, "http", True),
    ({"host": "forum.example", "origin": "https://forum.example.evil.example"}, "http", True),
    ({"host": "forum.example", "origin": "https://forum.example:8443"}, "https", True),
    ({"host": "forum.example", "origin": "null"}, "http", True),
    ({"host": "forum.example", "origin": "file://"}, "http", True),
    ({"host": "forum.example", "referer": "https://evil.example/forum.example"}, "http", True),
    ({"host": "forum.example", "referer": "http://[bad"}, "http", True),
    ({"host": "forum.example", "origin": "https://evil.example",
      "referer": "https://forum.example/"}, "http", True),
    ({"origin": "https://forum.example"}, "http", True),  # no Host to compare with
])
def test_foreign_origin_compares_the_named_host_with_the_requests_own(headers, scheme,
                                                                     foreign):
    assert foreign_origin(headers, scheme) is foreign


def test_the_csrf_key_is_derived_and_differs_from_the_stored_secret():
    key = derive_secret("stored secret")
    assert key == derive_secret("stored secret") and key != derive_secret("another")
    assert "stored secret" not in key and len(key) == 64


def test_a_route_outside_the_pages_is_refused_with_problem_json():
    @post("/webhook", status_code=200)
    async def webhook() -> str:
        return "done"

    app = Litestar([webhook], middleware=[FormGuard], exception_handlers=EXCEPTION_HANDLERS,
                   state=State({"csrf_secret": derive_secret("s")}))
    with TestClient(app) as client:
        r = client.post("/webhook", data={"a": "b"})
        assert r.status_code == 403
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "did not come from this site" in r.json()["detail"]
