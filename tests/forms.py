"""Sending an HTML form as a browser does: fetch the page that holds the form, take the
CSRF token from that very form, and post it with the fields (service/web/csrf.py)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import httpx

_FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S)
_TOKEN = re.compile(r'<input type="hidden" name="_csrf_token" value="([^"]*)">')


def form_token(page: str, action: str) -> str:
    """The token in the page's form that posts to ``action`` (its path, any #fragment
    ignored); fails the test when no such form carries one."""
    for form in _FORM.findall(page):
        target = re.search(r'action="([^"]*)"', form)
        if target and html.unescape(target.group(1)).split("#")[0] == action:
            found = _TOKEN.search(form)
            assert found and found.group(1), f"the form posting to {action} has no token"
            return html.unescape(found.group(1))
    raise AssertionError(f"no form posts to {action}")


def origin(client: httpx.AsyncClient) -> str:
    """The client's own site, as a browser names it in ``Origin``."""
    url = client.base_url
    return f"{url.scheme}://{url.netloc.decode()}"


async def submit(client: httpx.AsyncClient, page: str, action: str, data: dict[str, str],
                 **kwargs: Any) -> httpx.Response:
    """GET ``page``, then POST ``data`` to ``action`` with the token of the form there and
    this site's ``Origin``, as a browser does (a form of an anonymous page carries the
    public token, which needs it), unless the caller names an Origin or Referer."""
    shown = await client.get(page)
    assert shown.status_code == 200, (page, shown.status_code)
    headers = dict(kwargs.get("headers") or {})
    if not {name.lower() for name in headers} & {"origin", "referer"}:
        headers["Origin"] = origin(client)
    kwargs["headers"] = headers
    return await client.post(action, data={**data, "_csrf_token": form_token(shown.text, action)},
                             **kwargs)


async def any_token(client: httpx.AsyncClient) -> str:
    """A valid token for this client (its cookie's), from the sign-in form: for posting
    to a form that its page does not show (e.g. a locked thread's reply)."""
    page = await client.get("/login")
    return form_token(page.text, "/login")


async def reply(client: httpx.AsyncClient, thread_id: int, data: dict[str, str],
                **kwargs: Any) -> httpx.Response:
    """The reply form of a thread's first page."""
    return await submit(client, f"/threads/{thread_id}", f"/threads/{thread_id}/reply", data,
                        **kwargs)


class _Form(HTMLParser):
    """The named fields of the form posting to one action, as a browser would send them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.found = action, False, False
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action", "").split("#")[0] == self.action
            self.found = self.found or self.inside
        elif self.inside and tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")
        elif self.inside and tag == "textarea":
            self._textarea = a.get("name")
            self.fields[a.get("name", "")] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def form_fields(page: str, action: str) -> dict[str, str]:
    """The fields (hidden ones and the token included) of the page's form that posts to
    ``action``, with the values the page gave them."""
    parser = _Form(action)
    parser.feed(page)
    assert parser.found, f"no form posts to {action}"
    return parser.fields
