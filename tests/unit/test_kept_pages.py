"""Kept pages are bounded in size, the least recently used dropped first."""

from __future__ import annotations

from service.web.kept import TOKEN_SLOT, KeptPages


def test_a_kept_page_is_rendered_once_and_the_bound_holds():
    rendered: list[int] = []

    def page(n: int):
        def render(token: str) -> str:
            rendered.append(n)
            return f"{n:04d}{token}".ljust(100, ".")
        return render

    kept = KeptPages(max_bytes=1000)
    assert kept.page(1, page(1)) == kept.page(1, page(1)) == f"0001{TOKEN_SLOT}".ljust(100, ".")
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
    assert kept.page("big", lambda token: "x" * 500) == "x" * 500
    assert kept.bytes == 0
