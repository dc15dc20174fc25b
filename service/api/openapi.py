"""What the OpenAPI document (/api/schema) says beyond what Litestar infers.

Routes answer pre-encoded bytes (``Response[bytes]``), so Litestar alone would describe
every body as a string. Each operation declares instead, in one line:

    @get(..., responses={200: ok(ThreadPage, "a page of a thread"), **problems(404)},
         security=PUBLIC)

``problems`` adds the statuses every operation can answer (400 malformed request, 431
headers too large, 503 a backing service or read model unavailable) and declares them all
as application/problem+json; 429 and 503 also carry ``Retry-After`` (added by
``finish``, with the rest Litestar leaves out).
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.openapi.spec.parameter import Parameter as OpenAPIParameter
from litestar.params import Parameter
from litestar.routes import HTTPRoute

from service.api.common import MAX_ID
from service.errors import PROBLEM, Problem
from workers.readmodels.reads import SLUG

SLUG_PATTERN = SLUG.pattern

# Path parameters. Their constraints are documented, not enforced by Litestar: a malformed
# slug, name or id names nothing and the route answers 404 itself (a 400 would say the
# request was malformed, but any string is a well-formed path).
Slug = Annotated[str, Parameter(description="a section's slug",
                                schema_extra={"pattern": SLUG_PATTERN})]
Name = Annotated[str, Parameter(description="a member's or a guest's name",
                                schema_extra={"min_length": 1, "max_length": 32})]
ThreadId = Annotated[int, Parameter(description="a thread's id",
                                    schema_extra={"minimum": 1, "maximum": MAX_ID})]
PostId = Annotated[int, Parameter(description="a post's id",
                                  schema_extra={"minimum": 1, "maximum": MAX_ID})]

Year = Annotated[int, Parameter(description="a year threads started in",
                                schema_extra={"minimum": 1, "maximum": 9999})]

# Query parameters shared by the reads. X-Min-Position is not a parameter: the reads read
# it from the raw headers (service/deps.py ``min_position``), and ``finish`` documents it
# for every operation that says ``opt=WAITS``.
Page: Any = Parameter(query="page", default=1, ge=1, le=1_000_000,
                      description="1-based; a page past the last is 404")

# A read that waits for ``X-Min-Position`` (service/deps.py ``min_position``): its route
# says ``opt=WAITS`` (or CONDITIONAL), and ``finish`` documents the header.
WAITS: dict[str, Any] = {"min_position": True}
# A read of the read models that answers an ETag and honours If-None-Match
# (service/conditional.py), and waits: ``finish`` documents the header, the tag and the 304.
CONDITIONAL: dict[str, Any] = {"etag": True, **WAITS}

# Security schemes (names used in operations' ``security`` lists).
MEMBER = "member"
GUEST = "guest"
OPERATOR = "operator"

SECURITY_SCHEMES: dict[str, Any] = {
    MEMBER: SecurityScheme(
        type="http", scheme="bearer",
        description="a member's session token, from POST /api/sessions",
    ),
    GUEST: SecurityScheme(
        type="apiKey", name="X-Guest-Token", security_scheme_in="header",
        description="a guest's identity, answered as guest_token by the guest's first write",
    ),
    OPERATOR: SecurityScheme(
        type="http", scheme="bearer",
        description="the operator's token (FORUM_OPERATOR_TOKEN), sent as a bearer token",
    ),
}


def _needs(*schemes: str) -> list[SecurityRequirement]:
    return [{scheme: []} for scheme in schemes]


ANONYMOUS: SecurityRequirement = {}
PUBLIC: list[SecurityRequirement] = [ANONYMOUS]
"""Anyone; credentials are not looked at."""
WRITERS: list[SecurityRequirement] = [*_needs(MEMBER, GUEST, OPERATOR), ANONYMOUS]
"""Members, the operator, or guests (by X-Guest-Token, or a guest_name in the body)."""
SIGNED_IN: list[SecurityRequirement] = _needs(MEMBER, OPERATOR)
"""A member (the role decides what is allowed) or the operator."""
OPERATOR_ONLY: list[SecurityRequirement] = _needs(OPERATOR)


def components() -> Components:
    return Components(security_schemes=SECURITY_SCHEMES)


def ok(data: Any, description: str, media_type: str = "application/json") -> ResponseSpec:
    """A success answer whose JSON body is ``data`` (a msgspec Struct)."""
    return ResponseSpec(data_container=data, description=description, media_type=media_type,
                        generate_examples=False)


ALWAYS = (400, 431, 503)
"""Any request can be malformed (400), carry too many header bytes (431), or find a
backing service or read model unavailable (503)."""

_WHY = {
    400: "malformed request: parameters, headers or JSON of the wrong shape, or an "
         "X-Min-Position beyond the log's head",
    401: "credentials missing, malformed, expired or unknown",
    403: "not allowed for this actor (role, ownership, suspension or ban)",
    404: "no such resource (including a malformed slug, name or id), or a page past the last",
    409: "conflicts with the current state (taken name, exists already, locked, busy)",
    413: "request body too large",
    422: "well-formed but invalid (empty or too long text, bad BBCode quote, bad name)",
    429: "too many requests: wait Retry-After seconds",
    431: "request headers too large",
    503: "a backing service is unavailable or the read models are rebuilding or behind "
         "X-Min-Position: retry after Retry-After seconds",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers of an operation, as RFC 9457 problem+json (plus ``ALWAYS``)."""
    return {
        status: ResponseSpec(data_container=Problem, media_type=PROBLEM,
                             description=_WHY.get(status, HTTPStatus(status).phrase),
                             generate_examples=False)
        for status in sorted({*ALWAYS, *statuses})
    }


_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="seconds to wait before trying again", required=True,
)


def _operations(app: Litestar) -> Iterator[tuple[HTTPRouteHandler, Operation]]:
    """Each documented route handler with its operation in the app's OpenAPI document."""
    by_id: dict[str, Operation] = {}
    for item in (app.openapi_schema.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is not None and operation.operation_id:
                by_id[operation.operation_id] = operation
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if isinstance(handler.operation_id, str) and handler.operation_id in by_id:
                    yield handler, by_id[handler.operation_id]


def _request_schema(openapi: OpenAPI, operation: Operation) -> Schema | None:
    body = operation.request_body
    if not isinstance(body, RequestBody):
        return None
    for media in body.content.values():
        # X, or X | None (oneOf: [X, null])
        candidates = [media.schema]
        if isinstance(media.schema, Schema):
            candidates.extend(media.schema.one_of or [])
        for ref in candidates:
            if isinstance(ref, Reference) and openapi.components.schemas:
                found = openapi.components.schemas.get(ref.ref.rsplit("/", 1)[-1])
                return found if isinstance(found, Schema) else None
    return None


_ETAG = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.STRING),
    description="names the read-model state the answer shows (weak); send it back as "
                "If-None-Match to get 304 while it is unchanged", required=True,
)


_MIN_POSITION = OpenAPIParameter(
    name="X-Min-Position", param_in="header", required=False,
    schema=Schema(type=OpenAPIType.INTEGER),
    description="a position a write answered: wait (at most 2 s) until the read models "
                "have reached it, else 503 with Retry-After; beyond the log's head: 400",
)


def _conditional(operation: Operation) -> None:
    operation.parameters = [*(operation.parameters or []), OpenAPIParameter(
        name="If-None-Match", param_in="header", required=False,
        schema=Schema(type=OpenAPIType.STRING),
        description="ETags of answers held (or *): 304 with no body when one is current",
    )]
    responses = operation.responses or {}
    ok_answer = responses.get("200")
    if isinstance(ok_answer, OpenAPIResponse):
        ok_answer.headers = {**(ok_answer.headers or {}), "ETag": _ETAG}
    responses["304"] = OpenAPIResponse(
        description="not modified: the answer If-None-Match names is current; no body",
        headers={"ETag": _ETAG})
    operation.responses = dict(sorted(responses.items()))


def finish(app: Litestar) -> None:
    """Say in the app's OpenAPI document what Litestar leaves out:
    * Retry-After on every 429 and 503 answer (ResponseSpec cannot declare headers);
    * request bodies that refuse unknown fields (forbid_unknown_fields Structs) have
      ``additionalProperties: false``: a request with an extra field is not valid;
    * an optional body (``data: X | None = None``) is not required;
    * a conditional read (``opt=CONDITIONAL``) takes If-None-Match, answers an ETag, and
      304 with no body when the tag is named;
    * a read that waits (``opt=WAITS``) takes X-Min-Position."""
    openapi = app.openapi_schema
    for handler, operation in _operations(app):
        if handler.opt.get("min_position"):
            operation.parameters = [*(operation.parameters or []), _MIN_POSITION]
        if handler.opt.get("etag"):
            _conditional(operation)
        for code, response in (operation.responses or {}).items():
            if code in ("429", "503") and isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), "Retry-After": _RETRY_AFTER}
        data = handler.parsed_fn_signature.parameters.get("data")
        if data is None or not isinstance(operation.request_body, RequestBody):
            continue
        if data.is_optional:
            operation.request_body.required = False
        struct = next((t for t in (data.annotation, *data.args)
                       if isinstance(t, type) and issubclass(t, msgspec.Struct)), None)
        schema = _request_schema(openapi, operation)
        if struct is not None and schema is not None and (
                struct.__struct_config__.forbid_unknown_fields):
            schema.additional_properties = False
