"""The OpenAPI document at /api/schema tells the truth: real body schemas, problem+json
errors, security schemes and parameter constraints; and the two small refusals the
document promises (an X-Min-Position beyond the log's head, a malformed slug)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import OPERATOR

METHODS = ("get", "put", "post", "patch", "delete")
PROBLEM = "application/problem+json"


async def _document(client) -> dict:
    answer = await client.get("/api/schema/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _resolve(document: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


async def test_every_operation_declares_its_success_body_as_a_real_schema(client):
    document = await _document(client)
    operations = list(_operations(document))
    assert len(operations) >= 26
    for path, method, operation in operations:
        successes = {code: r for code, r in operation["responses"].items()
                     if code.startswith("2")}
        assert successes, (path, method)
        for code, response in successes.items():
            if code == "204":  # No Content: nothing to describe
                assert "content" not in response, (path, method)
                continue
            content = response["content"]
            if path == "/metrics":
                assert list(content) == ["text/plain"]
                continue
            schema = _resolve(document, content["application/json"]["schema"])
            assert schema.get("type") == "object" and schema["properties"], (path, code)
            assert response["description"], (path, code)
    thread_page = _resolve(document, document["paths"]["/api/threads/{thread_id}"]["get"]
                           ["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(thread_page["required"]) == {"thread", "posts", "page", "pages", "per_page"}
    post = document["components"]["schemas"]["Post"]
    assert {"id", "number", "author", "body", "html", "quotes", "likes",
            "edited_at", "deleted"} <= set(post["required"])
    # Writes answer the position they reached; guests' writes may carry a guest token.
    reply = document["paths"]["/api/threads/{thread_id}/posts"]["post"]["responses"]
    posted = _resolve(document, reply["201"]["content"]["application/json"]["schema"])
    assert "position" in posted["required"] and "guest_token" in posted["properties"]
    assert "guest_token" not in posted["required"]
    held = _resolve(document, reply["202"]["content"]["application/json"]["schema"])
    assert {"held", "held_id", "thread_id", "position"} <= set(held["required"])


async def test_every_error_is_problem_json_and_retry_statuses_carry_retry_after(client):
    document = await _document(client)
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    for path, method, operation in _operations(document):
        errors = {code: r for code, r in operation["responses"].items()
                  if code[0] in "45"}
        assert {"400", "431", "503"} <= set(errors), (path, method)
        for code, response in errors.items():
            if path in ("/ready", "/ready/writes") and code == "503":  # the report itself
                assert "application/json" in response["content"]
            else:
                assert list(response["content"]) == [PROBLEM], (path, method, code)
                assert response["content"][PROBLEM]["schema"]["$ref"].endswith("/Problem")
            if code in ("429", "503"):
                assert response["headers"]["Retry-After"]["required"] is True
    # A write with a body can be too large or unacceptable.
    writes = [(path, op) for path, method, op in _operations(document)
              if method != "get" and "requestBody" in op]
    assert all({"413", "422"} <= set(op["responses"]) for _, op in writes), [
        path for path, op in writes if not {"413", "422"} <= set(op["responses"])]


async def test_security_schemes_are_declared_and_every_operation_lists_what_it_accepts(
        client):
    document = await _document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["member"] == {**schemes["member"], "type": "http", "scheme": "bearer"}
    assert schemes["operator"]["type"] == "http" and schemes["operator"]["scheme"] == "bearer"
    assert (schemes["guest"]["type"], schemes["guest"]["in"], schemes["guest"]["name"]) == (
        "apiKey", "header", "X-Guest-Token")
    accepted = {}
    for path, method, operation in _operations(document):
        assert operation["security"], (path, method)
        accepted[operation["operationId"]] = [next(iter(r), None)
                                              for r in operation["security"]]
    assert accepted["getThread"] == [None]
    assert accepted["readLog"] == ["operator"] and accepted["changeRole"] == ["operator"]
    assert set(accepted["postReply"]) == {"member", "guest", "operator", None}
    assert set(accepted["editPost"]) == {"member", "operator"}


async def test_parameters_and_bodies_document_their_constraints(client):
    document = await _document(client)

    def parameter(path: str, method: str, name: str) -> dict:
        found = [p for p in document["paths"][path][method]["parameters"]
                 if p["name"] == name]
        return found[0]["schema"]

    slug = parameter("/api/forums/{slug}/threads", "get", "slug")
    assert slug["pattern"] == "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
    name = parameter("/api/users/{name}", "get", "name")
    assert (name["minLength"], name["maxLength"]) == (1, 32)
    thread_id = parameter("/api/threads/{thread_id}", "get", "thread_id")
    assert (thread_id["minimum"], thread_id["maximum"]) == (1, (1 << 63) - 1)
    assert parameter("/api/threads/{thread_id}", "get", "page")["minimum"] == 1
    schemas = document["components"]["schemas"]
    start = schemas["StartThread"]
    assert start["properties"]["title"]["maxLength"] == 200
    assert start["properties"]["body"]["maxLength"] == 50_000
    assert start["additionalProperties"] is False  # unknown fields are refused
    bump = document["paths"]["/api/threads/{thread_id}/bump"]["post"]["requestBody"]
    assert bump["required"] is False
    q = parameter("/api/search", "get", "q")
    assert (q["minLength"], q["maxLength"]) == (1, 200)
    assert parameter("/api/search", "get", "forum")["pattern"] == slug["pattern"]
    assert parameter("/api/search", "get", "page")["minimum"] == 1


async def test_search_declares_its_answer(client):
    document = await _document(client)
    operation = document["paths"]["/api/search"]["get"]
    assert operation["operationId"] == "search" and operation["security"] == [{}]
    assert {"404", "422", "503"} <= set(operation["responses"])
    found = _resolve(document, operation["responses"]["200"]["content"]["application/json"]
                     ["schema"])
    assert set(found["required"]) == {"results", "page", "pages", "total", "per_page"}
    hit = document["components"]["schemas"]["Found"]
    assert set(hit["required"]) == {"thread", "post_id", "number", "author", "guest",
                                    "created_at", "snippet"}
    thread = document["components"]["schemas"]["FoundThread"]
    assert set(thread["required"]) == {"id", "title", "forum"}


WAITING = {"getThread", "listUnanswered", "getUser", "listForums", "listThreads",
           "archiveYears", "archiveYear", "getPost", "listHeld", "search"}


async def test_every_read_that_waits_names_x_min_position_and_refuses_a_malformed_one(
        client, project):
    """The routes read the header themselves (service/deps.py ``min_position``), not as a
    Litestar parameter: the document must still name it, and a bad value is still 400."""
    document = await _document(client)
    documented = {operation["operationId"] for _, _, operation in _operations(document)
                  if any(p["name"] == "X-Min-Position" and p["in"] == "header"
                         and p["schema"]["type"] == "integer"
                         for p in operation.get("parameters", []))}
    assert documented == WAITING
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await project()
    for path in ("/api/forums", "/api/forums/s/threads", "/api/unanswered",
                 "/api/search?q=s", "/api/forums/s/archive"):
        for bad in ("notanumber", "1.5", "", "1_000", "+5", "9" * 20, "\u0663".encode()):
            answer = await client.get(path, headers={"X-Min-Position": bad})
            assert answer.status_code == 400, (path, bad, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM)
            assert "X-Min-Position" in answer.json()["detail"]
        assert (await client.get(path, headers={"X-Min-Position": "-3"})).status_code == 200


async def test_an_x_min_position_beyond_the_log_head_is_400_at_once(client, project):
    created = await client.post("/api/forums", json={"slug": "s", "title": "S"},
                                headers=OPERATOR)
    position = created.json()["position"]
    await project()
    for path in ("/api/forums", "/api/forums/s/threads", "/api/unanswered",
                 "/api/search?q=s"):
        began = time.monotonic()
        answer = await client.get(path, headers={"X-Min-Position": str(position + 10**9)})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert "beyond the log's head" in answer.json()["detail"]
        assert time.monotonic() - began < 1.0
        reached = await client.get(path, headers={"X-Min-Position": str(position)})
        assert reached.status_code == 200, (path, reached.text)


async def test_a_written_but_unprojected_position_still_waits_then_503s(client, project):
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await project()
    started = await client.post("/api/forums/s/threads",
                                json={"title": "T", "body": "b", "guest_name": "gus"})
    began = time.monotonic()
    answer = await client.get("/api/forums/s/threads",
                              headers={"X-Min-Position": str(started.json()["position"])})
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"]
    assert time.monotonic() - began >= 1.5


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/forums/s:threads/threads"),  # once: another section's sorted set, a 503
    ("GET", "/api/forums/s:threads/archive"),
    ("GET", "/api/forums/A:B/threads"),
    ("GET", "/api/forums/Upper/threads"),
    ("GET", "/api/forums/-s/archive"),
    ("GET", "/api/forums/" + "a" * 65 + "/threads"),
    ("GET", "/api/forums/s:years/archive/2024"),
    ("POST", "/api/forums/S/threads"),
    ("GET", "/forums/s:threads"),
    ("GET", "/forums/s:threads/archive"),
])
async def test_a_malformed_slug_in_any_path_is_404(client, project, method, path):
    await client.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
    await client.post("/api/forums/s/threads",
                      json={"title": "T", "body": "b", "guest_name": "gus"})
    await project()
    answer = await client.request(method, path, json={"title": "T", "body": "b",
                                                      "guest_name": "gus"}
                                  if method == "POST" else None)
    assert answer.status_code == 404, (path, answer.status_code, answer.text)
    if path.startswith("/api/"):
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["detail"].startswith("no section")
