"""The physical limit of a read: a minimal Litestar app that answers the same routes with
the same bytes, held in memory (no Redis, no dependencies, no middleware).

bench/read.py fetches the real pages from ``forum serve``, writes them to a folder with an
``index.json`` (route key -> file), and starts this app with uvicorn exactly as
``forum serve`` runs the service (same loop, HTTP parser, worker count):

    BENCH_PAGES_DIR=... python -m uvicorn bench.baseline_app:create_app --factory ...
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from litestar import Litestar, MediaType, Response, get


def _load() -> dict[str, tuple[bytes, dict[str, str]]]:
    folder = Path(os.environ["BENCH_PAGES_DIR"])
    index = json.loads((folder / "index.json").read_text())
    return {key: ((folder / entry["file"]).read_bytes(), entry["headers"])
            for key, entry in index.items()}


def create_app() -> Litestar:
    pages = _load()

    def answer(key: str) -> Response[bytes]:
        body, headers = pages[key]
        return Response(content=body, media_type=MediaType.JSON, headers=headers)

    @get("/api/threads/{thread_id:int}")
    async def thread_page(thread_id: int, page: int = 1) -> Response[bytes]:
        return answer(f"thread:{thread_id}:{page}")

    @get("/api/forums/{slug:str}/threads")
    async def section_threads(slug: str, page: int = 1) -> Response[bytes]:
        return answer(f"forum:{slug}:{page}")

    @get("/health")
    async def health() -> Response[bytes]:
        return Response(content=b'{"status":"ok"}', media_type=MediaType.JSON)

    return Litestar(route_handlers=[thread_page, section_threads, health], debug=False)
