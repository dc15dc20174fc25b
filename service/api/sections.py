"""JSON routes of forum sections."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.types import Scope

from service import commands as c
from service.api import bodies
from service.api import schemas as s
from service.api.common import moderator, writer, written
from service.api.openapi import (
    CONDITIONAL,
    PUBLIC,
    SIGNED_IN,
    WRITERS,
    Page,
    Slug,
    Year,
    ok,
    problems,
)
from service.deps import min_position, services_of
from service.domain.actors import Actor
from service.guests import GuestPass
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle
from workers.readmodels.reads import known_slug


class SectionController(Controller):
    path = "/api/forums"
    tags = ["sections"]

    @post("/", operation_id="createForum", status_code=201, security=SIGNED_IN, responses={
        201: ok(s.ForumCreated, "the section was created"),
        **problems(401, 403, 409, 413, 422, 429)})
    async def create(self, data: c.CreateForum, services: Services, actor: Actor | None,
                     meta: RequestMeta, throttle: Throttle) -> Response[bytes]:
        actor = moderator(actor, "create sections")
        await throttle("write", actor)
        result = await services.handlers.create_forum(data, actor, meta)
        return written(result, 201, {"Location": f"/api/forums/{result.slug}/threads"})

    @get("/", operation_id="listForums", opt=CONDITIONAL, security=PUBLIC, responses={
        200: ok(s.Forums, "every section"), **problems()})
    async def list(self, scope: Scope) -> Response[bytes]:
        services = services_of(scope)
        return bodies.forums(await services.reads.forums(min_position=min_position(scope)),
                             services.tags)

    @post("/{slug:str}/threads", operation_id="startThread", status_code=201,
          security=WRITERS, responses={
              201: ok(s.ThreadStarted, "the thread was started"),
              202: ok(s.HeldResult, "the first post is held for a moderator's review"),
              **problems(401, 403, 404, 409, 413, 422, 429)})
    async def start_thread(self, slug: Slug, data: c.StartThread, services: Services,
                           actor: Actor | None, meta: RequestMeta, throttle: Throttle,
                           guest_pass: GuestPass) -> Response[bytes]:
        """Start a thread as a member, or as a guest with ``guest_name``.

        A guest's first write answers a ``guest_token``; sent back as ``X-Guest-Token`` it
        makes the guest the same one: the OP mark and the starter's bump are that
        identity's, never a typed name's. A guest that writes with its token sent back
        holds its name for FORUM_GUEST_NAME_DAYS after its last use: another guest typing
        a look-alike of it gets 409, as does a name that looks like a member's or a
        reserved one (names are compared by confusable skeleton); a name mixing scripts
        confusingly is 422. A malformed ``X-Guest-Token`` is 400."""
        known_slug(slug)
        who = await writer(services, actor, data.guest_name, guest_pass)
        await throttle("thread", who)
        result = await services.handlers.start_thread(slug, data, who, meta)
        if isinstance(result, c.HeldResult):  # waiting for a moderator: nothing to locate
            return written(result, 202, guest=guest_pass)
        return written(result, 201, {"Location": f"/api/threads/{result.thread_id}"},
                       guest_pass)

    @get("/{slug:str}/threads", operation_id="listThreads", opt=CONDITIONAL, security=PUBLIC,
         responses={
             200: ok(s.ThreadList, "the section's threads, most recently bumped first"),
             **problems(404)})
    async def threads(self, slug: Slug, scope: Scope, page: int = Page) -> Response[bytes]:
        services = services_of(scope)
        return bodies.section_threads(await services.reads.section_threads(
            slug, page, min_position=min_position(scope)), services.tags)

    @get("/{slug:str}/archive", operation_id="archiveYears", opt=CONDITIONAL, security=PUBLIC,
         responses={200: ok(s.ArchiveYears, "the years the section's threads started in"),
                    **problems(404)})
    async def archive(self, slug: Slug, scope: Scope) -> Response[bytes]:
        services = services_of(scope)
        return bodies.archive_years(await services.reads.archive_years(
            slug, min_position=min_position(scope)), services.tags)

    @get("/{slug:str}/archive/{year:int}", operation_id="archiveYear", opt=CONDITIONAL,
         security=PUBLIC, responses={200: ok(s.ArchiveYear, "the threads started in one year"),
                    **problems(404)})
    async def archive_year(self, slug: Slug, year: Year, scope: Scope, page: int = Page
                           ) -> Response[bytes]:
        services = services_of(scope)
        return bodies.archive_year(slug, year, await services.reads.archive_year(
            slug, year, page, min_position=min_position(scope)), services.tags)
