"""Load that runs beside a test: a loop on a daemon thread, started and stopped by
``running()``. Readers and writers of the end-to-end invariant tests build on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Self

import httpx


class Background:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self._thread.join(timeout=30)


def open_thread(url: str, slug: str, title: str, guest: str) -> tuple[int, int]:
    """A new section ``slug`` with one thread by ``guest``, through the API: the thread's
    id and the position of its first post."""
    from tests.conftest import OPERATOR

    with httpx.Client(base_url=url, timeout=15) as http:
        r = http.post("/api/forums", json={"slug": slug, "title": slug.title()},
                      headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = http.post(f"/api/forums/{slug}/threads",
                      json={"title": title, "body": "first", "guest_name": guest})
        assert r.status_code == 201, r.text
        return int(r.json()["thread_id"]), int(r.json()["position"])


class ReplyWriter(Background):
    """Replies to one thread until stopped, recording each acknowledged write's position.
    Reply ``n`` is ``f"{text} {n}"`` by ``guests[n % len(guests)]``."""

    def __init__(self, url: str, thread_id: int, *, text: str = "reply",
                 guests: Sequence[str] = ("writer",), pause: float = 0.0) -> None:
        super().__init__()
        self.url = url
        self.thread_id = thread_id
        self.text = text
        self.guests = tuple(guests)
        self.pause = pause
        self.positions: list[int] = []
        self.errors: list[str] = []

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                r = http.post(f"/api/threads/{self.thread_id}/posts",
                              json={"body": f"{self.text} {n}",
                                    "guest_name": self.guests[n % len(self.guests)]})
                if r.status_code == 201:
                    self.positions.append(r.json()["position"])
                else:
                    self.errors.append(f"{r.status_code} {r.text[:300]}")
                if self.pause:
                    time.sleep(self.pause)
