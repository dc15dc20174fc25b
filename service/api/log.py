"""The operator's view of the raw event log, in global order."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.params import Parameter

from service.api.common import MAX_ID, json_response
from service.api.openapi import OPERATOR_ONLY, ok, problems
from service.api.schemas import EventsPage, LoggedEvent
from service.domain.actors import Actor
from service.domain.errors import ForbiddenError, NotAuthenticatedError
from service.lifespan import Services


class EventLogController(Controller):
    path = "/api/events"
    tags = ["operators"]

    @get("/", operation_id="readLog", security=OPERATOR_ONLY, responses={
        200: ok(EventsPage, "events in global order; page on with after = last"),
        **problems(401, 403)})
    async def read(self, services: Services, actor: Actor | None,
                   after: int = Parameter(query="after", default=0, ge=0, le=MAX_ID,
                                         schema_extra={"maximum": MAX_ID}),
                   limit: int = Parameter(query="limit", default=100, ge=1, le=1000)
                   ) -> Response[bytes]:
        if actor is None:
            raise NotAuthenticatedError("the event log needs the operator's token")
        if actor.role != "operator":
            raise ForbiddenError("the event log is for the operator only")
        records = await services.store.read_all(after, limit)
        events = []
        for r in records:
            data = msgspec.to_builtins(r.event)
            kind = data.pop("type")
            events.append(LoggedEvent(
                position=r.position, stream=r.stream_id, version=r.version, type=kind,
                data=data, recorded_at=r.recorded_at.isoformat().replace("+00:00", "Z"),
                metadata=msgspec.to_builtins(r.metadata),
            ))
        last = events[-1].position if events else after
        return json_response({"events": events, "after": after, "last": last})
