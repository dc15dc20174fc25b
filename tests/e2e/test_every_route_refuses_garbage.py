"""Every JSON route, fed wrong types, missing fields, huge and hostile input: a 4xx
problem+json with a detail — never a 500 — and nothing appended to the log."""

from __future__ import annotations

import pytest

from tests.conftest import OPERATOR

HOSTILE_BODIES: list[object] = [
    None, [], "text", 12, {}, {"unknown": 1},
    {"body": 5}, {"body": ""}, {"body": None}, {"body": ["x"]},
    {"title": 1, "body": 2}, {"slug": "<script>", "title": ""},
    {"name": 1, "password": 2}, {"name": "", "password": ""},
    {"forum": 1}, {"role": ["moderator"]},
    {"cidr": "10.0.0.0/33", "reason": "x"}, {"cidr": "::/0", "reason": ""},
    {"cidr": "10.0.0.0/8", "reason": "x", "until": "1999-01-01T00:00:00Z"},
    {"body": "[quote=x post=999999999999]no[/quote]", "guest_name": "g"},
    {"body": "x", "guest_name": "\u0000\u0001"},
    {"body": "x", "guest_name": "a" * 10_000},
    {"title": "t", "body": "b" * 50_001, "guest_name": "g"},
    {"title": "\u200b", "body": "\u2060\ufeff", "guest_name": "\u3164"},
    {"body": "x", "guest_name": "\u043eperator"}, {"body": "x", "guest_name": "p\u0430ypal"},
]

RAW_BODIES: list[bytes] = [b"{", b"\xff\xfe", b"[" * 5000, b'{"body": "\\ud800"}', b"null"]


async def _routes(client) -> list[tuple[str, str]]:
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    started = await client.post("/api/forums/s/threads",
                                json={"title": "T", "body": "b", "guest_name": "gus"})
    thread, post = started.json()["thread_id"], started.json()["post_id"]
    await client.post("/api/users", json={"name": "Ann", "password": "long enough"})
    held = (await client.post(f"/api/threads/{thread}/posts", json={
        "body": "https://spam.example", "guest_name": "sp"})).json()["held_id"]
    return [
        ("POST", "/api/users"), ("POST", "/api/sessions"), ("POST", "/api/forums"),
        ("POST", "/api/forums/s/threads"), ("POST", "/api/forums/nope/threads"),
        ("POST", f"/api/threads/{thread}/posts"), ("POST", "/api/threads/999999/posts"),
        ("POST", f"/api/threads/{thread}/bump"), ("POST", f"/api/threads/{thread}/lock"),
        ("POST", f"/api/threads/{thread}/unlock"), ("POST", f"/api/threads/{thread}/move"),
        ("PATCH", f"/api/posts/{post}"), ("DELETE", f"/api/posts/{post}"),
        ("POST", f"/api/posts/{post}/likes"), ("DELETE", f"/api/posts/{post}/likes"),
        ("PUT", "/api/users/Ann/role"), ("POST", "/api/users/Ann/suspension"),
        ("DELETE", "/api/users/Ann/suspension"), ("DELETE", "/api/sessions"),
        ("DELETE", "/api/users/Ann/sessions"), ("DELETE", "/api/users/Ann"),
        ("POST", "/api/bans"), ("DELETE", "/api/bans/1"), ("DELETE", "/api/bans/0"),
        ("POST", f"/api/held/{held}/approve"), ("POST", f"/api/held/{held}/reject"),
        ("POST", "/api/held/999999/approve"), ("POST", "/api/held/0/reject"),
    ]


def _is_problem(response) -> bool:
    return (400 <= response.status_code < 500
            and response.headers["content-type"].startswith("application/problem+json")
            and bool(response.json().get("detail")))


@pytest.mark.parametrize(("auth", "guest_token"), [
    (None, None), ("Bearer garbage", None), ("Bearer " + "x" * 5000, None), ("Basic a", None),
    (None, "garbage"), (None, "x" * 5000), (None, "=" * 43),
])
async def test_every_write_route_refuses_garbage_without_appending(client, pool, auth,
                                                                    guest_token):
    routes = await _routes(client)
    before = await pool.fetchval("SELECT count(*) FROM events")
    headers = {"Authorization": auth} if auth else {}
    if guest_token:
        headers["X-Guest-Token"] = guest_token
    for method, path in routes:
        for body in HOSTILE_BODIES:
            answer = await client.request(method, path, json=body, headers=headers)
            assert _is_problem(answer), (method, path, body, answer.status_code, answer.text)
        for raw in RAW_BODIES:
            answer = await client.request(method, path, content=raw,
                                          headers={**headers, "content-type": "application/json"})
            assert _is_problem(answer), (method, path, raw[:20], answer.status_code, answer.text)
    assert await pool.fetchval("SELECT count(*) FROM events") == before


@pytest.mark.parametrize("path", [
    "/api/threads/0", "/api/threads/-1", "/api/threads/99999999999999999999999",
    "/api/threads/1?page=0", "/api/threads/1?page=abc", "/api/threads/1?per_page=1000",
    "/api/posts/0", "/api/posts/abc", "/api/users/%00", "/api/users/" + "x" * 3000,
    "/api/forums/%3Cscript%3E/threads", "/api/forums/s/archive/0", "/api/forums/s/archive/x",
    "/api/unanswered?page=-5", "/api/events", "/api/events?after=-1",
    "/api/events?limit=100000", "/api/bans?page=0", "/api/bans?page=x", "/api/bans?page=2",
    "/api/suspensions", "/api/suspensions?page=0",
    "/api/held", "/api/held?page=0", "/api/held?page=abc",
])
async def test_every_read_route_answers_bad_input_with_a_problem(client, project, path):
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await project()
    answer = await client.get(path, headers={"X-Min-Position": "notanumber"}
                              if "threads/1?" in path else {})
    assert _is_problem(answer), (path, answer.status_code, answer.text)


@pytest.mark.parametrize("path", [
    "/posts/0", "/posts/-1", "/posts/abc", "/posts/99999999999999999999999", "/posts/%00",
    "/users/%00", "/users/" + "x" * 3000, "/users/%20", "/users/a%0Ab", "/users/nobody",
    "/archives?after=x", "/archives?after=" + "9" * 40,  # ignored, as on every page: 200
    "/nope", "/static/nope.css",
    "/favicon.ico/x", "/robots.txt/x", "/threads/1/reply", "/forums/%3Cscript%3E",
])
async def test_every_page_route_answers_bad_input_with_an_html_page(client, project, path):
    """Issue 18: pages answer people in HTML (4xx), never raw JSON nor a 500."""
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await project()
    answer = await client.get(path, follow_redirects=False)
    ignored = path.startswith("/archives?")
    assert (200 if ignored else 400) <= answer.status_code < 500, (path, answer.status_code)
    assert answer.headers["content-type"].startswith("text/html"), (path, answer.text[:200])
    assert "<h1>" in answer.text


# -- the pages' controls (service/web/post_controls.py): an HTML page, never a 500 --------

_PAGE_FORMS: list[dict[str, str] | bytes] = [
    {}, {"body": ""}, {"body": "b" * 50_001}, {"body": "\u0000\ud7ff"}, {"forum": "<script>"},
    {"forum": "x" * 5000}, {"forum": ""}, b"\xff\xfe=\x00", b"body=%ZZ&forum=%00",
]


async def test_every_control_page_refuses_garbage_without_appending(client, pool, project):
    from tests.forms import any_token

    routes = await _routes(client)
    thread = next(int(p.split("/")[3]) for m, p in routes if p.endswith("/lock"))
    post = next(int(p.split("/")[3]) for m, p in routes if m == "PATCH")
    await client.post("/api/users", json={"name": "Bea", "password": "long enough"})
    bea = (await client.post("/api/sessions", json={"name": "Bea",
                                                   "password": "long enough"})).json()["token"]
    await project()
    before = await pool.fetchval("SELECT count(*) FROM events")
    ids = [str(thread), "0", "99999999999999999999", "-1"]
    paths = [("GET", f"/posts/{i}/{what}") for i in ids[1:] for what in
             ("edit", "delete", "revisions")]
    paths += [("POST", f"/posts/{i}/{what}") for i in (str(post), *ids[1:])
              for what in ("edit", "delete", "like", "unlike")]
    paths += [("POST", f"/threads/{i}/{what}") for i in ids for what in
              ("lock", "unlock", "move")]
    for cookie in (None, "garbage", "x" * 5000, bea):
        client.cookies.delete("forum_token")
        token = await any_token(client)
        if cookie:
            client.cookies.set("forum_token", cookie)
        for method, path in paths:
            if cookie == bea and path.endswith("like"):  # a member may like gus's post
                continue
            for form in _PAGE_FORMS if method == "POST" else [None]:
                if isinstance(form, bytes):
                    answer = await client.request(method, path, content=form, headers={
                        "content-type": "application/x-www-form-urlencoded",
                        "x-csrftoken": token}, follow_redirects=False)
                elif form is None:
                    answer = await client.get(path, follow_redirects=False)
                else:
                    answer = await client.request(method, path, data={
                        **form, "_csrf_token": token}, follow_redirects=False)
                redirect = (method == "GET" and answer.status_code == 303 and cookie != bea
                            and answer.headers["location"].startswith("/login?next="))
                assert redirect or 400 <= answer.status_code < 500, (
                    cookie and cookie[:10], method, path, form, answer.status_code)
                assert redirect or answer.headers["content-type"].startswith("text/html"), path
    client.cookies.delete("forum_token")
    assert await pool.fetchval("SELECT count(*) FROM events") == before


# -- the form pages (issue 18): HTML error pages, never a 5xx ----------------------------

def _is_error_page(response) -> bool:
    """A 4xx page: the error page, or the form's page again saying why."""
    return (400 <= response.status_code < 500
            and response.headers["content-type"].startswith("text/html")
            and ("Error " in response.text or 'role="alert"' in response.text))


@pytest.mark.parametrize("path", [
    "/threads/0/reply", "/threads/-1/reply", "/threads/99999999999999999999999/reply",
    "/threads/abc/reply", "/threads/%00/reply", "/threads/1.atom/reply",
    "/threads/1/reply?page=0", "/threads/1/reply?page=abc", "/threads/1/reply?page=99",
    "/threads/1/reply?page=" + "9" * 50, "/threads/999999/reply?quote=1",
    "/forums/%3Cscript%3E/new", "/forums/nope/new", "/forums/" + "x" * 3000 + "/new",
])
async def test_the_form_pages_answer_bad_input_with_an_html_error(client, project, path):
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    started = await client.post("/api/forums/s/threads",
                                json={"title": "T", "body": "b", "guest_name": "gus"})
    assert started.json()["thread_id"] == 1
    await project()
    answer = await client.get(path)
    assert _is_error_page(answer), (path, answer.status_code, answer.text[:300])


async def test_the_draft_keeping_sign_ins_refuse_garbage_without_appending(client, project,
                                                                          pool):
    from tests.forms import any_token

    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await client.post("/api/forums/s/threads",
                      json={"title": "T", "body": "b", "guest_name": "gus"})
    await project()
    headers = {"x-csrftoken": await any_token(client)}
    before = await pool.fetchval("SELECT count(*) FROM events")
    for path in ("/threads/1/sign-in", "/forums/s/sign-in", "/threads/999999/sign-in",
                 "/forums/nope/sign-in"):
        for body in HOSTILE_BODIES:
            answer = await client.post(path, json=body, headers=headers)
            assert _is_error_page(answer), (path, body, answer.status_code, answer.text[:300])
        for raw in [*RAW_BODIES, b"name=%ff%fe&password=&page=-1&body=%00",
                    b"name=" + b"a" * 60_000, b"page=99999999999999999999&name=x&password=y"]:
            answer = await client.post(path, content=raw, headers={
                **headers, "content-type": "application/x-www-form-urlencoded"})
            assert _is_error_page(answer), (path, raw[:30], answer.status_code,
                                            answer.text[:300])
    for path in ("/threads/0/sign-in", "/threads/abc/sign-in", "/threads/-1/sign-in"):
        answer = await client.post(path, data={"name": "x", "password": "y"}, headers=headers)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert await pool.fetchval("SELECT count(*) FROM events") == before
