"""What the browser tests share: a board seeded through the API with something on every
kind of page, and a browser context signed in as a guest, a member or a moderator that
reports Content-Security-Policy violations and script errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, Stack

WAIT_MS = 15_000
PASSWORD = "a good password"

REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.reportViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
                         + ' on ' + document.location.pathname);
});
"""


@dataclass
class Member:
    name: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Board:
    """What ``seed`` wrote: enough for every kind of page to show something."""
    section: str = ""
    other_section: str = ""
    long_thread: int = 0  # several pages, quotes, an OP, members and guests
    first_post: int = 0  # the long thread's
    edited_post: int = 0  # the long thread's, a member's (ann's), edited once
    long_pages: int = 0
    unanswered_thread: int = 0
    locked_thread: int = 0
    member: Member = field(default_factory=lambda: Member("", ""))
    moderator: Member = field(default_factory=lambda: Member("", ""))
    word: str = ""  # found by search
    year: int = 0
    position: int = 0  # the last write


class Api:
    """The board's API over HTTP, remembering the log position of the last write."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=20)
        self.position = 0

    def __call__(self, method: str, path: str, *codes: int, **kwargs: Any) -> Any:
        r = self.http.request(method, path, **kwargs)
        assert r.status_code in (codes or (200, 201)), (method, path, r.status_code, r.text)
        if "x-position" in r.headers:
            self.position = max(self.position, int(r.headers["x-position"]))
        return r.json() if r.content else None

    def member(self, prefix: str, role: str = "member") -> Member:
        name = unique_name(prefix)
        self("POST", "/api/users", json={"name": name, "password": PASSWORD})
        if role != "member":
            self("PUT", f"/api/users/{name}/role", json={"role": role}, headers=OPERATOR)
        answer = self("POST", "/api/sessions", json={"name": name, "password": PASSWORD})
        return Member(name, answer["token"])


def seed(stack: Stack) -> Board:
    """Sections, members, a moderator, a long thread with quotes across several pages (an
    edited, a liked and a deleted post, a link in a post), an unanswered thread, a locked
    one, a post held for review, a suspension and a ban."""
    board = Board(word=unique_name("enigma").lower(), year=time.gmtime().tm_year)
    api = Api(stack.url)
    board.section, board.other_section = unique_slug(), unique_slug()
    for slug, title in ((board.section, "History"), (board.other_section, "Science")):
        api("POST", "/api/forums", json={"slug": slug, "title": title}, headers=OPERATOR)
    board.member = ann = api.member("ann")
    board.moderator = mod = api.member("mod", "moderator")
    started = api("POST", f"/api/forums/{board.section}/threads", headers=ann.auth,
                  json={"title": "Cipher bureaus between the wars",
                        "body": f"Who broke what, and when? The [b]{board.word}[/b] story."})
    thread = board.long_thread = started["thread_id"]
    board.first_post = started["post_id"]
    last_id, last_author = started["post_id"], ann.name
    for n in range(2, 13):
        quote = (f"[quote={last_author} post={last_id}]Point {n - 1} stands.[/quote]\n"
                 if n % 3 == 0 else "")
        body = f"{quote}Reply {n}: the {board.word} machine again, see [i]Rejewski[/i]."
        if n % 2:
            answer = api("POST", f"/api/threads/{thread}/posts", headers=ann.auth,
                         json={"body": body})
            last_author = ann.name
        else:
            last_author = f"guest{n}"
            answer = api("POST", f"/api/threads/{thread}/posts",
                         json={"body": body, "guest_name": last_author})
        last_id = answer["post_id"]
        if n == 3:  # an edited post, a liked one, a deleted one
            board.edited_post = last_id
            api("PATCH", f"/api/posts/{last_id}", headers=ann.auth,
                json={"body": body + "\nSee [url=https://example.org/]the archive[/url]."})
            api("POST", f"/api/posts/{last_id}/likes", headers=mod.auth)
        elif n == 4:
            api("DELETE", f"/api/posts/{last_id}", 200, 204, headers=mod.auth)
    board.long_pages = -(-12 // stack.settings.per_page)
    board.unanswered_thread = api(
        "POST", f"/api/forums/{board.other_section}/threads",
        json={"title": "Why is the sky blue?", "body": "Nobody has answered yet.",
              "guest_name": "newt"})["thread_id"]
    locked = board.locked_thread = api(
        "POST", f"/api/forums/{board.section}/threads", headers=ann.auth,
        json={"title": "Closed topic", "body": "Locked by a moderator."})["thread_id"]
    api("POST", f"/api/threads/{locked}/posts", json={"body": "A last word.", "guest_name": "gus"})
    api("POST", f"/api/threads/{locked}/lock", headers=mod.auth)
    # Held for review (a guest's link): the moderation queue is not empty.
    api("POST", f"/api/threads/{thread}/posts", 202,
        json={"body": "Buy now at https://spam.example/", "guest_name": "spammer"})
    spam = api.member("spam")
    api("POST", f"/api/users/{spam.name}/suspension", json={"reason": "spam"}, headers=mod.auth)
    api("POST", "/api/bans", json={"cidr": "203.0.113.0/24", "reason": "spam"},
        headers=mod.auth)
    board.position = api.position
    _caught_up(api.http, board)
    api.http.close()
    return board


def _caught_up(http: httpx.Client, board: Board) -> None:
    """Wait until the read models, search included, hold the last write."""
    deadline = time.monotonic() + 90
    wait = {"X-Min-Position": str(board.position)}
    while True:
        r = http.get(f"/api/threads/{board.long_thread}", headers=wait)
        found = http.get("/api/search", params={"q": board.word}, headers=wait)
        if r.status_code == 200 and found.status_code == 200 and found.json()["total"]:
            return
        assert time.monotonic() < deadline, (r.text, found.text)
        time.sleep(0.2)


# -- the browser ----------------------------------------------------------------------------

@dataclass
class Watch:
    violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def viewer_page(browser: Any, stack: Stack, board: Board, viewer: str, watch: Watch,
                      width: int = 1280) -> AsyncIterator[Any]:
    """A fresh context signed in as ``viewer`` through the login form, watched for CSP
    violations and script errors."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(WAIT_MS)
    await context.expose_binding("reportViolation",
                                 lambda _source, text: watch.violations.append(text))
    await context.add_init_script(REPORT_VIOLATIONS)
    page = await context.new_page()
    page.on("pageerror", lambda error: watch.script_errors.append(str(error)))
    page.on("console", lambda m: watch.violations.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    try:
        if viewer != "guest":
            member = board.member if viewer == "member" else board.moderator
            await page.goto(f"{stack.url}/login")
            await page.locator("input[name=name]").fill(member.name)
            await page.locator("input[name=password]").fill(PASSWORD)
            await page.get_by_role("button", name="Login").click()
            await page.wait_for_url(f"{stack.url}/")
        yield page
    finally:
        await context.close()


WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
               && getComputedStyle(e).visibility !== 'hidden')
  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')).slice(0, 5)"""


async def too_wide(page: Any, width: int) -> list[str]:
    """Nothing sticks out past the right edge of the screen (a phone would scroll the
    whole page sideways)."""
    wider = await page.evaluate(WIDER_THAN_THE_SCREEN)
    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
    return [f"{scroll} px wide on a {width} px screen: {wider}"] if scroll > width else []


REFERENCE_TITLE = "Historic Polish-Japanese intelligence cooperation"


async def load_demo(stack: Stack) -> int:
    """The demo data ``forum dev`` loads; the log's head after it."""
    from events.postgres import create_pool
    from service.devstack import _load_demo

    await _load_demo(stack.settings)
    pool = await create_pool(stack.settings.database_url, min_size=1, max_size=1)
    try:
        return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    finally:
        await pool.close()


def find_thread(stack: Stack, title: str, position: int) -> int | None:
    """The id of the thread titled ``title`` in any section, once the views hold
    ``position``."""
    wait = {"X-Min-Position": str(position)}
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=stack.url, timeout=20) as http:
        while True:
            r = http.get("/api/forums", headers=wait)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
        for forum in r.json()["forums"]:
            page, pages = 1, 1
            while page <= pages:
                r = http.get(f"/api/forums/{forum['slug']}/threads",
                             params={"page": page}, headers=wait)
                assert r.status_code == 200, r.text
                listing = r.json()
                for thread in listing["threads"]:
                    if thread["title"] == title:
                        return int(thread["id"])
                page, pages = page + 1, listing["pages"]
    return None
