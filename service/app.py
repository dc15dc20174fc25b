"""The app factory: routes, dependencies, error mapping, lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from service.addresses import trusted_networks
from service.api.bans import BanController
from service.api.data_rights import DataRightsController
from service.api.health import HealthController
from service.api.held import HeldController
from service.api.log import EventLogController
from service.api.members import MemberController
from service.api.openapi import components, finish
from service.api.posts import PostController
from service.api.search import SearchController
from service.api.sections import SectionController
from service.api.suspensions import SuspensionController
from service.api.threads import ThreadController, UnansweredController
from service.deps import provide_actor, provide_meta
from service.edge import Edge
from service.guests import provide_guest_pass
from service.headers import security_headers
from service.lifespan import lifespan
from service.limits import provide_throttle
from service.logs import configure_logging
from service.metrics import Metrics
from service.settings import Settings
from service.web.csrf import FormGuard, load_secret
from service.web.error_pages import any_error
from service.web.feeds import public_base
from service.web.pages import PAGE_CONTROLLERS
from service.web.rendering import template_config


@asynccontextmanager
async def frozen_heap(app: Litestar) -> AsyncIterator[None]:
    """The last lifespan step of a served app: what lives as long as the process (modules,
    templates, the OpenAPI document, the services just started) is moved out of the
    garbage collector's sight (``gc.freeze``), so that its full collections walk only what
    requests make. Walking half a million start-up objects again and again took a tenth
    of the CPU of a kept JSON page (bench/results/2026-12-03-read-edge.md). Not done in
    tests, which make many apps in one process: what they drop must stay collectable."""
    gc.collect()
    gc.freeze()
    yield


def served_app() -> Litestar:
    """The app as ``forum serve`` runs it (service/cli.py): ``create_app`` from the
    environment, with ``frozen_heap``."""
    return create_app(freeze_heap=True)


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> Litestar:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    public_base(settings.public_url)  # a malformed address is refused here, at start-up
    metrics = Metrics()
    app = Litestar(
        route_handlers=[
            SectionController, ThreadController, UnansweredController, PostController,
            MemberController, SuspensionController, EventLogController, HealthController,
            BanController, HeldController, DataRightsController, SearchController,
            *PAGE_CONTROLLERS,
        ],
        dependencies={
            # Read from the app made below once its lifespan has put them there; a
            # provider without parameters costs Litestar no parsing per request.
            "services": Provide(lambda: app.state.services, sync_to_thread=False),
            "actor": Provide(provide_actor),
            "meta": Provide(provide_meta),
            "throttle": Provide(provide_throttle),
            "guest_pass": Provide(provide_guest_pass),
            "metrics": Provide(lambda: metrics, sync_to_thread=False),
        },
        lifespan=[lifespan(settings, metrics), load_secret,
                  *([frozen_heap] if freeze_heap else [])],
        # problem+json for /api and the probes, an HTML page for people's paths
        exception_handlers={Exception: any_error},  # type: ignore[dict-item]
        # The edge first: the address, the correlation id, the metrics, bans and 304s
        # for everything inside it, the CSRF guard's refusals included.
        middleware=[DefineMiddleware(Edge, trusted=trusted_networks(settings.trusted_proxies),
                                     metrics=metrics), FormGuard],
        before_send=[security_headers],
        request_max_body_size=settings.max_body_bytes,
        template_config=template_config(),
        # The schema as JSON only: Litestar's UI pages load their scripts from CDNs, and
        # nothing on this site loads from another origin.
        openapi_config=OpenAPIConfig(
            title="forum", version="0.1.0", path="/api/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
            components=components(),
        ),
        debug=False,
    )
    finish(app)  # the document is built once here (~10 ms) and served as finished
    return app
