"""Accessibility of every kind of page, checked by axe-core in headless Chromium against
real ``forum serve`` and ``forum worker`` processes, at a desktop and a phone width.

axe-core comes from the ``axe-playwright-python`` package (its bundled ``axe.min.js``, in
the ``dev`` extra). It is put into the page by the test only, with ``page.evaluate``: the
browser's debugging protocol runs it, so the page's Content-Security-Policy (no inline
script) neither blocks it nor has to allow anything for it, and the pages themselves never
load it. The CSP watch (tests/browser/board.py) would report it if axe tripped the policy.

To check a new kind of page, add a ``Visit`` to ``visits()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from service.settings import Settings
from tests.browser.board import Board, Watch, seed, too_wide, viewer_page
from tests.conftest import Stack

pytestmark = pytest.mark.e2e

WIDTHS = (1280, 390)  # a desktop and a phone
PER_PAGE = 5  # the long thread spans several pages with a dozen posts
# Violations of these impacts fail the test; lesser ones are printed.
FAILING_IMPACTS = frozenset({"serious", "critical"})
# axe rules that fail the test whatever impact axe gives them: the structure the board
# promises (a skip link, one h1 and headings in order, landmarks, labelled fields).
ALWAYS_FAILING = frozenset({
    "bypass", "skip-link", "page-has-heading-one", "heading-order", "landmark-one-main",
    "region", "label", "landmark-unique", "duplicate-id-aria", "empty-heading",
})


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


# -- the pages to check ---------------------------------------------------------------------

Act = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Visit:
    """A page as one viewer sees it: ``viewer`` is "guest", "member" or "moderator";
    ``act``, when given, runs after the page loads (e.g. submits a form) and axe checks
    the page it leads to. An ``optional`` page is skipped (and named in the output) while
    its path does not answer HTML: pages another branch adds join once it is merged."""
    label: str
    path: str
    viewer: str = "guest"
    act: Act | None = None
    optional: bool = False


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
        Visit("member profile", f"/users/{board.member.name}"),
        Visit("permalink of a post", f"/posts/{board.first_post}"),
        Visit("404 of an unknown path", "/no/such/page"),
        Visit("archives of the board", "/archives"),
        Visit("revision history of a post", f"/posts/{board.edited_post}/revisions"),
        Visit("editing one's own post", f"/posts/{board.edited_post}/edit", "member"),
        Visit("deleting one's own post", f"/posts/{board.edited_post}/delete", "member"),
    ]


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


async def test_no_page_has_a_serious_accessibility_violation(stack: Stack, browser: Any) -> None:
    source = axe_source()
    board = seed(stack)
    watch = Watch()
    failures: list[str] = []
    lesser: list[str] = []
    skipped: list[str] = []
    checked = 0
    by_viewer: dict[str, list[Visit]] = {}
    for visit in visits(board):
        by_viewer.setdefault(visit.viewer, []).append(visit)
    for width in WIDTHS:
        for viewer, group in by_viewer.items():
            async with viewer_page(browser, stack, board, viewer, watch, width) as page:
                for visit in group:
                    label = f"{visit.label} ({visit.path} as {viewer}, {width} px)"
                    answer = await page.goto(f"{stack.url}{visit.path}")
                    if visit.optional and not answer.headers.get(
                            "content-type", "").startswith("text/html"):
                        skipped.append(label)
                        continue
                    if visit.act is not None:
                        await visit.act(page)
                    for violation in await run_axe(page, source):
                        (failures if failing(violation) else lesser).append(
                            describe(label, violation))
                    failures.extend(f"{label}: {p}" for p in await structure(page))
                    failures.extend(f"{label}: {p}" for p in await too_wide(page, width))
                    checked += 1
    print("\n".join(["axe, not failing:", *lesser]) if lesser else "axe: nothing else found")
    print("\n".join(["not HTML yet, skipped:", *skipped]) if skipped else "nothing skipped")
    assert checked + len(skipped) == len(visits(board)) * len(WIDTHS)
    assert checked >= sum(not v.optional for v in visits(board)) * len(WIDTHS)
    assert not failures, "\n".join(failures)
    assert not watch.violations, watch.violations
    assert not watch.script_errors, watch.script_errors


async def test_the_checks_would_see_a_bad_page(browser: Any) -> None:
    """The control for "no violations": a page with faint text, unlabelled fields, two h1s
    and no skip link fails the checks above."""
    source = axe_source()
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.set_content("""<!doctype html><html lang="en"><head><title>Bad</title></head>
<body><main><h1>One</h1><h1>Two</h1><p style="color:#aaa">faint text</p>
<form><input name="q" placeholder="Search"><input name="n"></form>
<a href="/">Home</a></main></body></html>""")
        found = {v["id"] for v in await run_axe(page, source) if failing(v)}
        assert {"color-contrast", "label"} <= found, found
        problems = " ".join(await structure(page))
        assert "2 h1 elements" in problems and "not the skip link" in problems, problems
        # axe takes a placeholder for a label ("q"); the board's own check does not.
        assert "fields without a label: ['q', 'n']" in problems, problems
    finally:
        await context.close()
