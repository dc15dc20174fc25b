
import httpx

from tests.conftest import OPERATOR


async def test_api_in_process_starts_a_thread_and_projects_it(client, project):
    r = await client.post("/api/forums", json={"slug": "history", "title": "History"},
                          headers=OPERATOR)
    assert r.status_code == 201, r.text
    r = await client.post("/api/forums/history/threads",
                          json={"title": "Rome", "body": "hi", "guest_name": "ann"})
    assert r.status_code == 201, r.text
    await project()
    resp = await client.get(f"/api/threads/{r.json()['thread_id']}")
    page = resp.json()
    assert resp.status_code == 200, resp.text
    assert page["posts"][0]["author"]["op"] is True


def test_real_processes_serve_what_was_written(stack):
    with httpx.Client(base_url=stack.url) as http:
        r = http.post("/api/forums", json={"slug": "s", "title": "S"}, headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = http.post("/api/forums/s/threads", json={"title": "T", "body": "b", "guest_name": "g"})
        position = r.json()["position"]
        page = http.get(f"/api/threads/{r.json()['thread_id']}",
                        headers={"X-Min-Position": str(position)})
        assert page.status_code == 200, page.text
        assert page.json()["thread"]["title"] == "T"
