"""The board-wide archives page, ``/archives``: every section with the years its threads
started in, each linking its section's archive of that year (the pages of
service/web/pages.py). The header's "Archives" leads here outside a section."""

from __future__ import annotations

from litestar import Controller, Response, get

from service.lifespan import Services
from service.web.rendering import (
    After,
    AnyRequest,
    _position,
    page_error,
    render,
    resolve_page_actor,
)
from workers.readmodels.errors import ReadNotFoundError
from workers.readmodels.values import ArchiveYears


class ArchivePages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/archives")
    async def archives(self, request: AnyRequest, services: Services, after: After = None
                       ) -> Response[bytes]:
        at = _position(after)
        forums = await services.reads.forums(min_position=at)
        sections: list[ArchiveYears] = []
        for forum in forums.forums:
            try:
                sections.append(await services.reads.archive_years(forum.slug,
                                                                   min_position=at))
            except ReadNotFoundError:  # a section created since the list was read
                continue
        state = tuple((s.seen, s.spaces) for s in sections)
        return render(request, "archives.html.j2", {
            "page_title": "Archives", "sections": sections,
        }, shared=("archives", forums.seen, forums.spaces, state),
            at=min([forums.position, *(s.position for s in sections)]), forms=False)
