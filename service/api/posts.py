"""JSON routes of single posts: read, edit, delete, like."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post
from litestar.types import Scope

from service import commands as c
from service.api import bodies
from service.api import schemas as s
from service.api.common import checked_id, written
from service.api.openapi import (
    CONDITIONAL,
    PUBLIC,
    SIGNED_IN,
    PostId,
    ok,
    problems,
)
from service.deps import min_position, services_of
from service.domain.actors import Actor
from service.domain.errors import NotAuthenticatedError, NotFoundError
from service.handlers import RequestMeta
from service.lifespan import Services
from service.limits import Throttle

_CHANGE_PROBLEMS = problems(401, 403, 404, 409, 413, 422, 429)


def _member(actor: Actor | None) -> Actor:
    if actor is None:
        raise NotAuthenticatedError("sign in to change posts or give reputation")
    return actor


async def _thread_of(services: Services, post_id: int) -> int:
    where = await services.store.locate_post(checked_id(post_id, "post"))
    if where is None:
        raise NotFoundError("no such post")
    return where.thread_id


class PostController(Controller):
    path = "/api/posts"
    tags = ["posts"]

    @get("/{post_id:int}", operation_id="getPost", opt=CONDITIONAL, security=PUBLIC, responses={
        200: ok(s.PostOnPage, "the post, with the page of its thread it is on"),
        **problems(404)})
    async def get_post(self, post_id: PostId, scope: Scope) -> Response[bytes]:
        services = services_of(scope)
        return bodies.post(await services.reads.post(checked_id(post_id, "post"),
                                                     min_position=min_position(scope)),
                           services.tags)

    @patch("/{post_id:int}", operation_id="editPost", security=SIGNED_IN, responses={
        200: ok(s.PostChanged, "the post was edited"), **_CHANGE_PROBLEMS})
    async def edit(self, post_id: PostId, data: c.EditPost, services: Services,
                   actor: Actor | None, meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        who = _member(actor)
        await throttle("edit", who)
        thread_id = await _thread_of(services, post_id)
        return written(await services.handlers.edit_post(thread_id, post_id, data, who, meta))

    @delete("/{post_id:int}", operation_id="deletePost", status_code=200, security=SIGNED_IN,
            responses={200: ok(s.PostChanged, "the post was deleted"), **_CHANGE_PROBLEMS})
    async def remove(self, post_id: PostId, services: Services, actor: Actor | None,
                     meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        who = _member(actor)
        await throttle("edit", who)
        thread_id = await _thread_of(services, post_id)
        return written(await services.handlers.delete_post(thread_id, post_id, who, meta))

    @post("/{post_id:int}/likes", operation_id="likePost", status_code=201,
          security=SIGNED_IN, responses={
              201: ok(s.PostChanged, "the post's author got reputation"), **_CHANGE_PROBLEMS})
    async def like(self, post_id: PostId, services: Services, actor: Actor | None,
                   meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        who = _member(actor)
        await throttle("like", who)
        thread_id = await _thread_of(services, post_id)
        result = await services.handlers.like(thread_id, post_id, who, meta, liked=True)
        return written(result, 201)

    @delete("/{post_id:int}/likes", operation_id="unlikePost", status_code=200,
            security=SIGNED_IN, responses={
                200: ok(s.PostChanged, "the reputation was taken back"), **_CHANGE_PROBLEMS})
    async def unlike(self, post_id: PostId, services: Services, actor: Actor | None,
                     meta: RequestMeta, throttle: Throttle
                   ) -> Response[bytes]:
        who = _member(actor)
        await throttle("like", who)
        thread_id = await _thread_of(services, post_id)
        return written(await services.handlers.like(thread_id, post_id, who, meta, liked=False))
