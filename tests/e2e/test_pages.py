from tests.conftest import OPERATOR


async def test_scratch(client, project):
    r = await client.post("/api/forums", json={"slug": "history", "title": "History"},
                          headers=OPERATOR)
    r = await client.post("/api/forums/history/threads",
                          json={"title": "Rome", "body": "hi [b]x[/b]", "guest_name": "ann"})
    tid = r.json()['thread_id']; pid = r.json()['post_id']
    r = await client.post(f"/api/threads/{tid}/posts",
                          json={"body": f"[quote=ann post={pid}]hi[/quote]yo", "guest_name": "bob"})
    print(r.json())
    await project()
    print((await client.get(f"/api/threads/{tid}")).text)
    print((await client.get(f"/api/forums/history/threads")).text)
    print((await client.get(f"/api/forums")).text)
    print((await client.get(f"/api/forums/history/archive")).text)
    print((await client.get(f"/api/unanswered")).text)
