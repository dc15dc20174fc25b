"""The ``/search`` page: the same search as ``GET /api/search``, for people, with the
section and author filters as a plain GET form (no JavaScript, no form token: it changes
nothing). The box in every page's header sends its words here."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Controller, Response, get
from litestar.params import Parameter

from service.lifespan import Services
from service.limits import Throttle
from service.web.rendering import (
    AnyRequest,
    Page,
    _section_titles,
    page_error,
    render,
    resolve_page_actor,
)
from workers.readmodels.search import QueryError

Text = Annotated[str | None, Parameter(required=False, max_length=2000)]


class SearchPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/search")
    async def search(self, request: AnyRequest, services: Services, throttle: Throttle,
                     q: Text = None,
                     forum: Text = None, author: Text = None, page: Page = 1
                     ) -> Response[bytes]:
        """Too long or too many words re-render the form with the reason (422)."""
        q, forum, author = (q or "").strip(), (forum or "").strip(), (author or "").strip()
        titles = await _section_titles(services)
        results, error, status = None, None, 200
        if q:
            await throttle("search", None)  # an empty box costs nothing: not counted
            try:
                results = await services.search.search(
                    q, forum=forum or None, author=author or None, page=page)
            except QueryError as refused:
                error, status = refused.detail[:1].upper() + refused.detail[1:] + ".", 422
        asked = {k: v for k, v in (("q", q), ("forum", forum), ("author", author)) if v}
        return render(request, "search.html.j2", {
            "page_title": f"Search: {q}" if q else "Search", "q": q, "forum": forum,
            "author": author, "titles": titles, "error": error,
            "results": results.page if results else None,
            "base": "/search?" + urlencode(asked),
        }, status)
