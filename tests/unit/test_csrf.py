"""The CSRF guard's pure parts, and its refusal off the pages (problem+json)."""

from __future__ import annotations

import pytest
from litestar import Litestar, post
from litestar.datastructures import State
from litestar.middleware.csrf import generate_csrf_token
from litestar.testing import TestClient

from service.errors import EXCEPTION_HANDLERS, PROBLEM
from service.web.csrf import (
    PUBLIC_PREFIX,
    REFUSED_FORM,
    REFUSED_SIGNED_IN,
    REFUSED_UNNAMED,
    FormGuard,
    PublicTokens,
    derive_secret,
    foreign_origin,
    verdict,
)


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


# -- the public token and the verdict ---------------------------------------------------

def test_the_public_token_is_one_per_hour_and_the_last_hours_still_counts():
    now = [3600.0 * 1000 + 5]
    tokens = PublicTokens(derive_secret("s"), clock=lambda: now[0])
    first = tokens.current()
    assert first.startswith(PUBLIC_PREFIX) and len(first) == 65
    assert tokens.current() == first
    assert PublicTokens(derive_secret("s"), clock=lambda: now[0]).current() == first
    assert PublicTokens(derive_secret("other"), clock=lambda: now[0]).current() != first
    now[0] += 3600
    assert tokens.current() != first and tokens.valid(first)
    now[0] += 3600
    assert not tokens.valid(first)
    for forged in ("", "p", first + "0", first[:-1], "p" + "é" * 64, "P" + first[1:]):
        assert not tokens.valid(forged)


def _verdict(sent, cookie=None, *, session=False, site_named=True, sign_in=False,
             tokens=None):
    secret = derive_secret("s")
    return verdict(sent, cookie, secret=secret, session=session, site_named=site_named,
                   sign_in=sign_in, public=tokens or PublicTokens(secret))


def test_the_verdict_on_a_public_token():
    public = PublicTokens(derive_secret("s")).current()
    assert _verdict(public) is None
    assert _verdict(public, "any cookie") is None  # the csrf cookie plays no part
    assert _verdict(public, site_named=False) == REFUSED_UNNAMED
    assert _verdict(public, session=True) == REFUSED_SIGNED_IN
    assert _verdict(public, sign_in=True) == REFUSED_FORM
    stale = PublicTokens(derive_secret("s"), clock=lambda: 0.0).current()
    assert _verdict(stale) == REFUSED_FORM


def test_the_verdict_on_a_visitors_token():
    secret = derive_secret("s")
    own = generate_csrf_token(secret)
    assert _verdict(own, own) is None
    assert _verdict(own, own, site_named=False) is None  # no Origin: the token decides
    assert _verdict(own, own, session=True, sign_in=True) is None
    assert _verdict(own, generate_csrf_token(secret)) == REFUSED_FORM
    assert _verdict(own, None) == REFUSED_FORM
    other = generate_csrf_token(derive_secret("other"))
    assert _verdict(other, other) == REFUSED_FORM
    for bad in (None, "", "é" * 128, own[:-1] + "é"):
        assert _verdict(bad, own) == REFUSED_FORM
