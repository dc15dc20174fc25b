"""No dead ends: every failure of a path people open answers a small HTML page in plain
words, with the API's status and a way on (a link back, a reload that honours
``Retry-After``); ``/api/*`` and the machines' routes keep problem+json.

``page_error`` is the page controllers' handler; ``any_error`` the app's, for what fails
before a controller is chosen (an unknown path, a method the route does not take, a
missing static file)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException

from events import StoreUnavailableError
from service.domain import errors as d
from service.errors import handle
from service.web.rendering import AnyRequest, render
from service.web.wording import for_people
from workers.readmodels.errors import ReadModelUnavailableError

# Paths for programs, not people: their errors stay problem+json.
_MACHINE = re.compile(r"^/(?:api(?:/|$)|health$|ready$|metrics$)")
_FORM_ROUTE = re.compile(r"^/threads/(\d{1,19})/(?:reply|lock|unlock|move|sign-in)$")

_TITLES = {400: "This address is not quite right", 403: "Not allowed",
           404: "Not found", 405: "Not available this way", 409: "That did not work",
           413: "Too large", 422: "That did not work", 429: "Too many requests",
           503: "Please try again in a moment"}


def is_machine_path(path: str) -> bool:
    return _MACHINE.match(path) is not None


def _seconds(value: str | None) -> str:
    return "a moment" if not value else f"{value} second{'s' if value != '1' else ''}"


def _without_after(request: AnyRequest) -> str:
    """The page asked for, without the ``after`` that made it wait for a write."""
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k != "after"]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def _words(request: AnyRequest, exc: Exception, status: int, detail: str,
           retry: str | None) -> tuple[str, str | None, str | None]:
    """What the page says, and where its "reload" and "back" links lead (or None)."""
    path, get = request.url.path, request.method in ("GET", "HEAD")
    if isinstance(exc, ValidationException):
        return "That address has a value this page does not accept.", None, None
    if status == 404 and isinstance(exc, HTTPException):
        return "There is nothing at this address.", None, None
    if status == 405:
        form = _FORM_ROUTE.match(path)
        back = f"/threads/{form[1]}" if form else None
        if get:
            return ("This address takes a form's submission, not a visit. Go back to the "
                    "page and use its button.", None, back)
        return "This page cannot take that request.", None, back
    if status == 413:
        return "What you sent is too large for this page.", None, None
    if status == 429:
        return (f"You have made too many requests in a short time. Please wait "
                f"{_seconds(retry)} and try again.", request.url.path if get else None, None)
    if status == 503:
        if isinstance(exc, ReadModelUnavailableError) and "after=" in request.url.query:
            return ("Your post was saved. It will appear here in a moment: reload the page "
                    "if it does not.", str(request.url.path) + "?" + request.url.query, None)
        if isinstance(exc, StoreUnavailableError) and not get:
            return ("The board could not save that just now, and nothing was saved. Please "
                    "go back and send it again in a moment.", None, None)
        return ("The board cannot show this page right now. Please try again in "
                f"{_seconds(retry)}.", _without_after(request) if get else None, None)
    if status >= 500:
        return "Something went wrong on our side. Please try again later.", None, None
    if isinstance(exc, d.DomainError):
        return for_people(exc), None, None
    return (detail[:1].upper() + detail[1:]) if detail else "That did not work.", None, None


def page_error(request: AnyRequest, exc: Exception) -> Response[bytes]:
    """Any failure on a page becomes a small HTML page with the API's status, in plain
    words, and a way on."""
    if isinstance(exc, ValidationException):
        status, detail, headers = 400, "", {}
    else:
        problem = handle(request, exc)
        status = problem.status_code or 500
        detail = msgspec.json.decode(problem.content).get("detail", "")
        headers = {k: v for k, v in problem.headers.items()
                   if k.lower() in ("retry-after", "allow")}
    retry = headers.get("Retry-After")
    said, reload, back = _words(request, exc, status, detail, retry)
    get = request.method in ("GET", "HEAD")
    return render(request, "error.html.j2", {
        "page_title": _TITLES.get(status, "Something went wrong"), "status": status,
        "detail": said, "reload": reload, "back": back,
        "retry_after": retry if get and reload else None,
    }, status, headers)


def any_error(request: AnyRequest, exc: Exception) -> Response[Any]:
    """The app's handler: problem+json for programs' paths, an HTML page for people's."""
    if is_machine_path(request.url.path):
        return handle(request, exc)
    return page_error(request, exc)
