"""The two files browsers and crawlers ask every site for: ``/favicon.ico`` (a small local
icon, never a third party's) and ``/robots.txt`` (crawl the board, not the API, the forms
or searches). Public, kept a day, tagged by their bytes."""

from __future__ import annotations

from functools import cache

from litestar import Controller, Response, get

from service.conditional import body_tag, not_modified
from service.web.rendering import HERE, AnyRequest

MAX_AGE = 86_400

ROBOTS = b"""# The board's pages are for everyone; the API, forms, searches and feeds are not for
# crawling.
User-agent: *
Disallow: /api/
Disallow: /login
Disallow: /register
Disallow: /search
Disallow: /moderation
Disallow: /posts/
Disallow: /*?quote=
Allow: /
"""


@cache
def _favicon() -> bytes:
    return (HERE / "static" / "favicon.ico").read_bytes()


def _file(request: AnyRequest, body: bytes, media_type: str
          ) -> Response[bytes]:
    headers = {"Cache-Control": f"public, max-age={MAX_AGE}", "ETag": body_tag(body)}
    unchanged = not_modified(request.headers.get("if-none-match"), headers)
    if unchanged is not None:
        return unchanged
    return Response(content=body, media_type=media_type, headers=headers)


class SiteFiles(Controller):
    include_in_schema = False

    @get("/favicon.ico")
    async def favicon(self, request: AnyRequest) -> Response[bytes]:
        return _file(request, _favicon(), "image/x-icon")

    @get("/robots.txt")
    async def robots(self, request: AnyRequest) -> Response[bytes]:
        return _file(request, ROBOTS, "text/plain; charset=utf-8")
