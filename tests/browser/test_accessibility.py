"""Accessibility of every kind of page, checked by axe-core in headless Chromium against
real ``forum serve`` and ``forum worker`` processes, and screenshots of a thread page at a
desktop and a phone width for people to look at.

axe-core comes from the ``axe-playwright-python`` package (its bundled ``axe.min.js``, in
the ``dev`` extra). It is put into the page by the test only, with ``page.evaluate``: the
browser's debugging protocol runs it, so the page's Content-Security-Policy (no inline
script) neither blocks it nor has to allow anything for it, and the pages themselves never
load it. The CSP watch below would report it if axe tripped the policy while it runs.

To check a new kind of page, add a ``Visit`` to ``visits()``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest

from service.settings import Settings
from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, ROOT, Stack

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000
WIDTHS = (1280, 390)  # a desktop and a phone
PER_PAGE = 5  # the long thread spans several pages with a dozen posts
PASSWORD = "a good password"
# Violations of these impacts fail the test; lesser ones are printed.
FAILING_IMPACTS = frozenset({"serious", "critical"})
# axe rules that fail the test whatever impact axe gives them: the structure the board
# promises (a skip link, one h1 and headings in order, landmarks, labelled fields).
ALWAYS_FAILING = frozenset({
    "bypass", "skip-link", "page-has-heading-one", "heading-order", "landmark-one-main",
    "region", "label", "landmark-unique", "duplicate-id-aria", "empty-heading",
})
# The reference thread, once the demo data has it; until then a seeded thread stands in.
REFERENCE_TITLE = "Historic Polish-Japanese intelligence cooperation"
SCREENSHOTS = ROOT / "screenshots"  # ignored by git (.gitignore)

REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.reportViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
                         + ' on ' + document.location.pathname);
});
"""


def axe_source() -> str:
    try:
        from axe_playwright_python.base import AXE_SCRIPT
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install -e '.[dev]')")
    return str(AXE_SCRIPT)


@pytest.fixture
def stack_settings(stack_settings: Settings) -> Settings:
    """The shared stack with short pages, so a dozen posts make a thread of several."""
    return msgspec.structs.replace(stack_settings, per_page=PER_PAGE)


# -- the board the pages show ---------------------------------------------------------------

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
            api("PATCH", f"/api/posts/{last_id}", headers=ann.auth,
                json={"body": body + "\nSee [url=https://example.org/]the archive[/url]."})
            api("POST", f"/api/posts/{last_id}/likes", headers=mod.auth)
        elif n == 4:
            api("DELETE", f"/api/posts/{last_id}", 200, 204, headers=mod.auth)
    board.long_pages = -(-12 // PER_PAGE)
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


# -- the pages to check ---------------------------------------------------------------------

Act = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Visit:
    """A page as one viewer sees it: ``viewer`` is "guest", "member" or "moderator";
    ``act``, when given, runs after the page loads (e.g. submits a form) and axe checks
    the page it leads to."""
    label: str
    path: str
    viewer: str = "guest"
    act: Act | None = None


async def _refused_reply(page: Any) -> None:
    """A guest sends an empty reply: the thread page comes back with the form's error."""
    await page.locator("#reply-body").fill("")
    await page.get_by_role("button", name="Post reply").click()
    await page.wait_for_load_state()
    await page.locator(".error").first.wait_for()


def visits(board: Board) -> list[Visit]:
    """Every kind of page, with its state: add new pages here."""
    t, s = board.long_thread, board.section
    return [
        Visit("index", "/"),
        Visit("section", f"/forums/{s}"),
        Visit("thread, first page", f"/threads/{t}"),
        Visit("thread, middle page with quotes", f"/threads/{t}?page=2"),
        Visit("thread, last page", f"/threads/{t}?page={board.long_pages}"),
        Visit("thread, a refused reply", f"/threads/{t}?page={board.long_pages}",
              act=_refused_reply),
        Visit("locked thread", f"/threads/{board.locked_thread}"),
        Visit("unanswered", "/unanswered"),
        Visit("section archive", f"/forums/{s}/archive"),
        Visit("archive of a year", f"/forums/{s}/archive/{board.year}"),
        Visit("search with results", f"/search?q={board.word}"),
        Visit("search with nothing found", "/search?q=zzzqqqxxx"),
        Visit("login", "/login"),
        Visit("register", "/register"),
        Visit("404", "/threads/987654321"),
        Visit("thread as a member, with the reply box",
              f"/threads/{t}?page={board.long_pages}", "member"),
        Visit("section as a member", f"/forums/{s}", "member"),
        Visit("thread as a moderator", f"/threads/{t}", "moderator"),
        Visit("moderation", "/moderation", "moderator"),
    ]


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


async def run_axe(page: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now: every rule axe runs by default
    (WCAG 2.x A and AA, and its best practices) and WCAG 2.2's target size."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(source)
    result = await page.evaluate("""() => axe.run(document, {
      resultTypes: ['violations'],
      rules: {'target-size': {enabled: true}},  // WCAG 2.2 AA 2.5.8, off by axe's default
    })""")
    return list(result["violations"])


def failing(violation: dict[str, Any]) -> bool:
    return violation["impact"] in FAILING_IMPACTS or violation["id"] in ALWAYS_FAILING


def describe(label: str, violation: dict[str, Any]) -> str:
    nodes = "; ".join(
        f"{' '.join(n['target'][-1:]) if isinstance(n['target'][-1], str) else n['target']}"
        f" ({n.get('failureSummary', '').splitlines()[-1].strip()})"
        for n in violation["nodes"][:4])
    return f"{label}: {violation['id']} [{violation['impact']}] {violation['help']}: {nodes}"


FIRST_FOCUSABLE = """() => {
  const all = document.querySelectorAll('a[href], button, input:not([type=hidden]), select, '
                                        + 'textarea, [tabindex]:not([tabindex="-1"])');
  const e = [...all].find(x => !x.disabled);
  if (!e) return null;
  e.focus();
  const r = e.getBoundingClientRect();
  return {text: e.textContent.trim(), href: e.getAttribute('href') || '',
          shown: r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight};
}"""


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.name || e.id || e.outerHTML.slice(0, 60))"""


async def structure(page: Any) -> list[str]:
    """What the board promises beyond axe's rules: one h1; every field labelled; a "Skip
    to content" link to the main element is the first focusable element and shows when
    focused; on a page opened without a fragment, the first Tab lands on it."""
    problems = []
    if (h1 := await page.locator("h1").count()) != 1:
        problems.append(f"{h1} h1 elements")
    # axe takes a placeholder or a title for a label; the board gives each field a real one.
    if unlabelled := await page.evaluate(UNLABELLED):
        problems.append(f"fields without a label: {unlabelled}")
    if "#" not in page.url:  # a fragment moves where sequential focus starts
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement.textContent.trim()") != (
                "Skip to content"):
            problems.append("the first Tab does not reach the skip link")
    first = await page.evaluate(FIRST_FOCUSABLE)
    if not first or first["text"] != "Skip to content" or not first["href"].startswith("#"):
        return [*problems, f"the first focusable element is {first}, not the skip link"]
    if await page.locator(f"main{first['href']}").count() != 1:
        problems.append(f"the skip link's target {first['href']} is not the main element")
    if not first["shown"]:
        problems.append("the skip link does not show when focused")
    return problems


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


async def test_no_page_has_a_serious_accessibility_violation(stack: Stack, browser: Any) -> None:
    source = axe_source()
    board = seed(stack)
    watch = Watch()
    failures: list[str] = []
    lesser: list[str] = []
    checked = 0
    by_viewer: dict[str, list[Visit]] = {}
    for visit in visits(board):
        by_viewer.setdefault(visit.viewer, []).append(visit)
    for width in WIDTHS:
        for viewer, group in by_viewer.items():
            async with viewer_page(browser, stack, board, viewer, watch, width) as page:
                for visit in group:
                    label = f"{visit.label} ({visit.path} as {viewer}, {width} px)"
                    await page.goto(f"{stack.url}{visit.path}")
                    if visit.act is not None:
                        await visit.act(page)
                    for violation in await run_axe(page, source):
                        (failures if failing(violation) else lesser).append(
                            describe(label, violation))
                    failures.extend(f"{label}: {p}" for p in await structure(page))
                    failures.extend(f"{label}: {p}" for p in await too_wide(page, width))
                    checked += 1
    print("\n".join(["axe, not failing:", *lesser]) if lesser else "axe: nothing else found")
    assert checked == len(visits(board)) * len(WIDTHS)
    assert not failures, "\n".join(failures)
    assert not watch.violations, watch.violations
    assert not watch.script_errors, watch.script_errors


# -- screenshots ------------------------------------------------------------------------------

async def _load_demo(stack: Stack) -> int:
    """The demo data ``forum dev`` loads; the log's head after it."""
    from events.postgres import create_pool
    from service.devstack import _load_demo

    await _load_demo(stack.settings)
    pool = await create_pool(stack.settings.database_url, min_size=1, max_size=1)
    try:
        return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    finally:
        await pool.close()


def _find_thread(stack: Stack, title: str, position: int) -> int | None:
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


async def test_screenshots_of_a_thread_at_desktop_and_phone_widths(stack: Stack, browser: Any
                                                                 ) -> None:
    """Full-page screenshots of the reference thread (the seeded one until the demo data
    has it), at 1280 and 390 px wide, under screenshots/; on the phone nothing is wider
    than the screen."""
    thread = _find_thread(stack, REFERENCE_TITLE, await _load_demo(stack))
    if thread is None:
        thread = seed(stack).long_thread
    path = f"/threads/{thread}"
    SCREENSHOTS.mkdir(exist_ok=True)
    watch = Watch()
    for width in (1280, 390):
        async with viewer_page(browser, stack, Board(), "guest", watch, width) as page:
            await page.goto(f"{stack.url}{path}")
            shot = SCREENSHOTS / f"thread-{width}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert not await too_wide(page, width)
    assert not watch.violations, watch.violations
    assert not watch.script_errors, watch.script_errors


def test_the_screenshots_folder_is_ignored_by_git() -> None:
    assert "/screenshots/" in (ROOT / ".gitignore").read_text().splitlines()
    assert ROOT / "screenshots" == SCREENSHOTS
