"""Kept pages are bounded in size, the least recently used dropped first, and kept as
bytes cut where the form tokens go."""

from __future__ import annotations

import pytest

from service.web.kept import TOKEN_SLOT, KeptPages, Rendered


def test_a_kept_page_is_rendered_once_and_the_bound_holds():
    rendered: list[int] = []

    def page(n: int):
        def render(token: str) -> str:
            rendered.append(n)
            return f"{n:04d}{token}".ljust(100, ".")
        return render

    kept = KeptPages(max_bytes=1000)
    first = kept.page(1, page(1))
    assert first is kept.page(1, page(1))
    assert first.with_token("t") == b"0001t" + b"." * 90
    assert rendered == [1]
    for n in range(2, 30):
        kept.page(n, page(n))
        kept.page(1, page(1))  # kept in use: never the one dropped
        assert kept.bytes <= 1000
    assert rendered.count(1) == 1
    kept.page(2, page(2))
    assert rendered.count(2) == 2  # long dropped: rendered again


def test_a_page_too_large_to_keep_is_still_served():
    kept = KeptPages(max_bytes=800)
    assert kept.page("big", lambda token: "x" * 500).with_token("t") == b"x" * 500
    assert kept.bytes == 0


def test_a_page_is_kept_as_its_bytes_cut_where_each_form_token_goes():
    page = Rendered.of(f"<p>caf\u00e9</p><input value={TOKEN_SLOT}><b>{TOKEN_SLOT}</b>")
    assert page.has_form and page.size == len("<p>café</p><input value=><b></b>".encode())
    assert page.with_token("abc") == "<p>café</p><input value=abc><b>abc</b>".encode()
    plain = Rendered.of("<p>no form</p>")
    assert not plain.has_form and plain.with_token("abc") == b"<p>no form</p>"
    assert plain.formless == b"<p>no form</p>"
    with pytest.raises(ValueError, match="holds a form"):
        _ = page.formless
