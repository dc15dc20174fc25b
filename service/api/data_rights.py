"""The export of a member's data (service/data_rights.py); the erasure is
``DELETE /api/users/{name}``, beside the profile in service/api/members.py (one path, one
controller)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Stream

from service.api.openapi import SIGNED_IN, Name, ok, problems
from service.auth import Identity
from service.data_rights import MemberExport
from service.domain.errors import NotAuthenticatedError
from service.lifespan import Services


async def identity_of(request: Request[Any, Any, Any], services: Services, what: str
                    ) -> Identity:
    # Not the ``actor`` dependency: a suspended member keeps these rights.
    identity = await services.auth.identify(request.headers.get("authorization"))
    if identity is None:
        raise NotAuthenticatedError(f"{what} needs the member's or the operator's token")
    return identity


class DataRightsController(Controller):
    tags = ["members"]

    @get("/api/users/{name:str}/export", operation_id="exportMember", security=SIGNED_IN,
         responses={200: ok(MemberExport,
                            "{profile, posts}: every post the member wrote"),
                    **problems(401, 403, 404)})
    async def export(self, name: Name, request: Request[Any, Any, Any], services: Services
                     ) -> Stream:
        """A member's data: their profile and every post they wrote (thread, number, time,
        body; edited and deleted ones marked), as one JSON document, streamed. The member
        themself or the operator."""
        identity = await identity_of(request, services, "exporting a member's data")
        registered = await services.rights.check_export(name.strip(), identity.actor)
        return Stream(services.rights.export(registered), media_type="application/json",
                      headers={"Content-Disposition": 'attachment; filename="export.json"',
                               "Cache-Control": "private, no-store"})
