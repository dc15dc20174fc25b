"""Member and guest profile pages: ``/users/{name}`` shows the author's counters (threads
started | posts written | reputation), when they joined (a member) or first posted (a
guest), and their last threads and posts (workers/projections/member_stats.py keeps the
last ``RECENT`` of each; a deleted post leaves the list). A name that no one writes under
is an HTML 404."""

from __future__ import annotations

from litestar import Controller, Response, get

from service.domain import errors as d
from service.domain.text import NAME_MAX
from service.lifespan import Services
from service.web.rendering import (
    After,
    AnyRequest,
    _position,
    _titles,
    page_error,
    render,
    resolve_page_actor,
)
from workers.readmodels.errors import ReadNotFoundError

RECENT_SHOWN = 10


def _known_name(name: str) -> str:
    """A name as a path may hold one; anything no author could be called is not found
    without a read (a name is at most ``NAME_MAX`` printable characters)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise d.NotFoundError("nobody writes under that name")
    return name


class ProfilePages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/users/{name:str}")
    async def profile(self, request: AnyRequest, services: Services, name: str,
                      after: After = None) -> Response[bytes]:
        name = _known_name(name)
        at = _position(after)
        try:
            user = await services.reads.user(name, min_position=at)
        except ReadNotFoundError:
            raise d.NotFoundError("nobody writes under that name") from None
        activity = await services.reads.activity(user.name, RECENT_SHOWN, min_position=at)
        titles, titled = await _titles(services)
        return render(request, "profile.html.j2", {
            "page_title": user.name, "user": user, "activity": activity, "titles": titles,
        }, shared=("profile", user.name, user.seen, user.spaces, activity.seen,
                   activity.spaces, titled),
            at=min(user.position, activity.position), forms=False)
