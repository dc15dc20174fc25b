"""``GET /api/search``: posts and titles found by words, phrases and prefixes (the search
model, workers/readmodels/search.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, get
from litestar.params import Parameter
from litestar.types import Scope

from service.api import bodies
from service.api import schemas as s
from service.api.openapi import PUBLIC, SLUG_PATTERN, WAITS, Page, ok, problems
from service.deps import min_position
from service.lifespan import Services
from service.limits import Throttle
from workers.readmodels.search import MAX_QUERY

Query: Any = Parameter(
    query="q", min_length=1, max_length=MAX_QUERY,
    description='words, all required; "a phrase" in double quotes; word* for every word '
                "beginning with it; at most 16 words and phrases",
)
Forum: Any = Parameter(query="forum", default=None, required=False, pattern=SLUG_PATTERN,
                       description="only posts in this section (its slug)")
Author: Any = Parameter(query="author", default=None, required=False, min_length=1,
                        max_length=64, description="only posts by this name")


class SearchController(Controller):
    path = "/api/search"
    tags = ["search"]

    @get("/", operation_id="search", opt=WAITS, security=PUBLIC, responses={
        200: ok(s.SearchPage, "the posts found, best first: a title's words weigh more than "
                              "a post's; snippets are HTML with the matches in <mark>"),
        **problems(404, 422, 429)})
    async def search(self, services: Services, throttle: Throttle,
                     scope: Scope, q: str = Query, forum: str | None = Forum,
                     author: str | None = Author, page: int = Page) -> Response[bytes]:
        """The newest 1,000 matches are ranked and counted (``total``); ``more`` is true
        when there were more (another word, a phrase or a section reaches older ones).
        Deleted posts, posts held for review and erased text are never found. 404: a
        page past the last; 422: too many words; 503: the search model is being built,
        or the search took too long (narrow it)."""
        await throttle("search", None)
        found = await services.search.search(q, forum=forum, author=author, page=page,
                                             min_position=min_position(scope))
        # Tagged by its bytes: the answer depends on the query as much as on the model.
        return bodies.answer(msgspec.json.encode(found.page), found, None)
