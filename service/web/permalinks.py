"""Stable permalinks: ``/posts/{id}`` leads (303) to the page of its thread the post is on
under the configured page size, at its anchor, so a link to a post never depends on the
page size it was copied under. Where a post is comes from the log's index
(``EventStore.locate_post``: its thread and number), the page from ``per_page``."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.response import Redirect

from service.api.common import checked_id
from service.domain import errors as d
from service.handling import page_of
from service.lifespan import Services
from service.web.rendering import AnyRequest, _position, page_error, resolve_page_actor


def post_path(thread_id: int, number: int, post_id: int, per_page: int) -> str:
    """Where post ``post_id``, number ``number`` of its thread, is shown."""
    return f"/threads/{thread_id}?page={page_of(number, per_page)}#p{post_id}"


class Permalinks(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/posts/{post:str}", status_code=303)
    async def post(self, request: AnyRequest, services: Services, post: str
                   ) -> Response[None]:
        number = _position(post)
        if number is None or not post.isdigit():
            raise d.NotFoundError("no such post")
        where = await services.store.locate_post(checked_id(number, "post"))
        if where is None:
            raise d.NotFoundError("no such post")
        # The answer depends on the page size only: a browser may keep it a while.
        return Redirect(post_path(where.thread_id, where.number, number,
                                  services.settings.per_page),
                        status_code=303, headers={"Cache-Control": "public, max-age=300"})
