"""The board in a real browser (headless Chromium) against real ``forum serve`` and
``forum worker`` processes: people click through the forms, a forged cross-site form is
refused, and no page trips the Content-Security-Policy."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.builders import unique_name, unique_slug
from tests.conftest import OPERATOR, Stack

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000

# Runs in every document before the page's own scripts (injected by the browser's
# debugging protocol, so the page's CSP does not apply to it): reports each violation.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.reportViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
                         + ' on ' + document.location.pathname);
});
"""


@dataclass
class Watch:
    """What went wrong in the browser: CSP violations (the event and the console's
    "Refused to ..." messages) and uncaught script errors, with the pages visited."""
    violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def watched(browser: Any) -> AsyncIterator[tuple[Any, Watch]]:
    """A fresh browser context and page; fails the test if any page it visited violated
    the Content-Security-Policy or threw a script error."""
    watch = Watch()
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    await context.expose_binding("reportViolation",
                                 lambda _source, text: watch.violations.append(text))
    await context.add_init_script(REPORT_VIOLATIONS)
    page = await context.new_page()

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            watch.violations.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: watch.script_errors.append(str(error)))
    page.on("load", lambda loaded: watch.visited.append(loaded.url))
    yield page, watch
    await context.close()
    assert watch.visited, "no page was loaded"
    assert not watch.violations, (watch.violations, watch.visited)
    assert not watch.script_errors, (watch.script_errors, watch.visited)


def api(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, timeout=10)


def start_thread(stack: Stack, title: str, body: str, author: str = "ann"
                 ) -> tuple[str, int, int, int]:
    """(section slug, thread id, first post id, log position) of a new thread."""
    slug = unique_slug()
    with api(stack) as http:
        r = http.post("/api/forums", json={"slug": slug, "title": "History"}, headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = http.post(f"/api/forums/{slug}/threads",
                      json={"title": title, "body": body, "guest_name": author})
        assert r.status_code == 201, r.text
        answer = r.json()
    position = int(r.headers["x-position"])
    thread_posts(stack, answer["thread_id"], position)  # the worker has projected it
    return slug, answer["thread_id"], answer["post_id"], position


def thread_posts(stack: Stack, thread_id: int, after: int) -> list[dict[str, Any]]:
    """The thread's posts once the read model holds position ``after`` (a worker that
    has just started, on a busy machine, may take a while)."""
    deadline = time.monotonic() + 60
    with api(stack) as http:
        while True:
            r = http.get(f"/api/threads/{thread_id}", headers={"X-Min-Position": str(after)})
            if r.status_code != 503 or time.monotonic() > deadline:
                break
        assert r.status_code == 200, r.text
        return list(r.json()["posts"])


async def account(page: Any) -> str:
    return " ".join((await page.locator(".account span").inner_text()).split())


# -- a guest ----------------------------------------------------------------------------

async def test_a_guest_quotes_the_first_post_and_replies_through_the_form(stack, watched):
    page, watch = watched
    slug, thread_id, first, position = start_thread(stack, "The fall of Rome",
                                                    "Veni, vidi, vici.")
    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    assert await account(page) == "Account: Guest"
    assert await page.locator("h1").inner_text() == "The fall of Rome"

    await page.locator(f"#p{first} a.quote-link").click()
    await page.wait_for_url(re.compile(rf"quote={first}"))
    box = page.locator("#reply-body")
    quoted = f"[quote=ann post={first}]Veni, vidi, vici.[/quote]"
    assert (await box.input_value()).startswith(quoted)

    await page.locator("input[name=guest_name]").fill("carol")
    await box.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.type("Agreed, ")
    # The toolbar's script (a static file, allowed by the CSP) wraps the cursor in tags.
    await page.get_by_role("button", name="Bold").click()
    await page.keyboard.type("really")
    assert (await box.input_value()).endswith("Agreed, [b]really[/b]")

    await page.get_by_role("button", name="Post reply").click()
    await page.wait_for_url(re.compile(rf"/threads/{thread_id}\?page=1&after=\d+#p\d+$"))
    reply_id = page.url.rsplit("#p", 1)[1]
    reply = page.locator(f"#p{reply_id}")
    assert "carol" in await reply.locator(".author").inner_text()
    quote = reply.locator("blockquote.quote")
    assert "Veni, vidi, vici." in await quote.inner_text()
    assert "ann wrote" in await quote.inner_text()
    assert await reply.locator(".body strong").inner_text() == "really"
    assert "posts: 2" in await page.locator("p.meta").inner_text()

    # The other pages a guest sees, for the CSP watch.
    for path in ("/", "/unanswered", f"/forums/{slug}", f"/forums/{slug}/archive",
                 "/login", "/register", "/threads/987654321"):
        await page.goto(f"{stack.url}{path}")
        assert await page.locator("h1").count() == 1, path
    assert len(watch.visited) >= 9


async def test_the_csp_is_enforced_and_this_watch_would_see_a_violation(stack, watched):
    """The control for every other test's "no violations": an inline script injected
    into a page is blocked, and the watch reports it."""
    page, watch = watched
    await page.goto(f"{stack.url}/login")
    await page.evaluate("""() => {
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.body.appendChild(s);
    }""")
    await page.wait_for_function("() => true")
    assert await page.evaluate("() => window.inlineRan === undefined")
    for _ in range(50):
        if watch.violations:
            break
        await page.wait_for_timeout(100)
    assert any("script-src" in v for v in watch.violations), watch.violations
    watch.violations.clear()


# -- a member -----------------------------------------------------------------------------

async def test_a_member_registers_signs_in_posts_and_signs_out_through_the_forms(stack, watched):
    page, _ = watched
    slug, thread_id, _, position = start_thread(stack, "Members welcome", "hello")
    name, password = unique_name("mem"), "a good password"

    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    await page.get_by_role("link", name="Register").click()
    await page.locator("input[name=name]").fill(name)
    await page.locator("input[name=password]").fill(password)
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_url(f"{stack.url}/")
    assert await account(page) == f"Account: {name}"

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{stack.url}/")
    assert await account(page) == "Account: Guest"

    await page.goto(f"{stack.url}/forums/{slug}")
    await page.locator(".account").get_by_role("link", name="Login").click()
    await page.locator("input[name=name]").fill(name)
    await page.locator("input[name=password]").fill(password)
    await page.get_by_role("button", name="Login").click()
    await page.wait_for_url(f"{stack.url}/forums/{slug}")  # back where they came from
    assert await account(page) == f"Account: {name}"
    assert await page.locator("input[name=guest_name]").count() == 0

    await page.locator("input[name=title]").fill("My first thread")
    await page.locator("textarea[name=body]").fill("Written by a member.")
    await page.get_by_role("button", name="Start thread").click()
    await page.wait_for_url(re.compile(r"/threads/\d+\?after=\d+#p\d+$"))
    assert await page.locator("h1").inner_text() == "My first thread"
    first = page.locator("article.post").first
    assert f"OP {name}" in " ".join((await first.locator(".name").inner_text()).split())
    assert "member" in await first.locator(".role").inner_text()

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{stack.url}/")
    assert await account(page) == "Account: Guest"


# -- another site ---------------------------------------------------------------------------

class _Attacker(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, type[_Attacker]]]:
    """Another origin (its own port): serves whatever page a test gives it."""
    handler = type("Attacker", (_Attacker,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


async def test_a_forged_form_on_another_site_cannot_post_to_the_board(stack, watched,
                                                                attacker_site):
    page, _ = watched
    evil, handler = attacker_site
    _, thread_id, _, position = start_thread(stack, "Target", "original post")
    # The victim has been on the board (so the browser holds its cookies) ...
    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    assert await page.locator("#reply-body").count() == 1, await page.content()
    # ... then opens a page elsewhere whose form posts to the board's reply form, with a
    # token field the attacker could only guess.
    handler.page = f"""<!doctype html><title>Win a prize</title>
<form method="post" action="{stack.url}/threads/{thread_id}/reply">
  <input type="hidden" name="body" value="forged by another site">
  <input type="hidden" name="guest_name" value="mallory">
  <input type="hidden" name="_csrf_token" value="{'0' * 128}">
  <button type="submit">Claim</button>
</form>""".encode()
    await page.goto(f"{evil}/prize.html")
    async with page.expect_response(lambda r: r.url.startswith(
            f"{stack.url}/threads/{thread_id}/reply")) as answer:
        await page.get_by_role("button", name="Claim").click()
    assert (await answer.value).status == 403
    await page.wait_for_load_state()
    assert "Error 403" in await page.locator("main").inner_text()

    # Anonymous pages carry one public token for everyone: the attacker can read it, and
    # a form planted elsewhere carrying it is still refused (the browser's Origin).
    with api(stack) as http:
        shown = http.get(f"/threads/{thread_id}").text
    public = re.search(r'name="_csrf_token" value="(p[0-9a-f]+)"', shown)
    assert public, "the anonymous thread page carries no public token"
    handler.page = handler.page.replace(b"0" * 128, public.group(1).encode())
    await page.goto(f"{evil}/prize2.html")
    async with page.expect_response(lambda r: r.url.startswith(
            f"{stack.url}/threads/{thread_id}/reply")) as answer:
        await page.get_by_role("button", name="Claim").click()
    assert (await answer.value).status == 403
    await page.wait_for_load_state()
    assert "another site" in await page.locator("main").inner_text()

    # Nothing was written: a reply made afterwards is the thread's second post.
    with api(stack) as http:
        r = http.post(f"/api/threads/{thread_id}/posts",
                      json={"body": "a real reply", "guest_name": "gus"})
        assert r.status_code == 201, r.text
        after = int(r.headers["x-position"])
    bodies = [p["body"] for p in thread_posts(stack, thread_id, after)]
    assert bodies == ["original post", "a real reply"]


# -- a refused guest keeps the draft ----------------------------------------------------------

async def test_a_guest_refused_a_members_name_signs_in_and_finds_the_draft(stack, watched):
    """Issue 18: a guest types a member's name, is refused, signs in from the refusal,
    and ends on the thread with the draft in the reply box, then posts it."""
    page, _ = watched
    _, thread_id, _, position = start_thread(stack, "Drafts", "first post")
    name, password = unique_name("mem"), "a good password"
    with api(stack) as http:
        r = http.post("/api/users", json={"name": name, "password": password})
        assert r.status_code == 201, r.text
    draft = "A long reply.\nWith a second line, & <markup>, written with care."

    await page.goto(f"{stack.url}/threads/{thread_id}?after={position}")
    await page.locator("input[name=guest_name]").fill(name)
    await page.locator("#reply-body").fill(draft)
    await page.get_by_role("button", name="Post reply").click()
    await page.wait_for_load_state()
    assert "belongs to a member" in await page.locator("#reply .error").inner_text()
    assert await page.locator("#reply-body").input_value() == draft

    sign_in = page.locator("#sign-in form")
    assert await sign_in.locator("input[name=name]").input_value() == name
    await sign_in.locator("input[name=password]").fill(password)
    await sign_in.get_by_role("button", name="Sign in and keep my reply").click()
    await page.wait_for_load_state()
    assert await account(page) == f"Account: {name}"
    assert await page.locator("h1").inner_text() == "Drafts"
    assert await page.locator("#reply-body").input_value() == draft
    assert await page.locator("input[name=guest_name]").count() == 0

    await page.get_by_role("button", name="Post reply").click()
    await page.wait_for_url(re.compile(rf"/threads/{thread_id}\?page=1&after=\d+#p\d+$"))
    reply_id = page.url.rsplit("#p", 1)[1]
    reply = page.locator(f"#p{reply_id}")
    assert name in await reply.locator(".author").inner_text()
    assert "member" in await reply.locator(".role").inner_text()
    assert "written with care." in await reply.locator(".body").inner_text()
