"""The app factory: routes, dependencies, error mapping, lifespan."""

from __future__ import annotations

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
from service.deps import provide_actor, provide_meta, provide_services
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


def create_app(settings: Settings | None = None) -> Litestar:
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
            "services": Provide(provide_services, sync_to_thread=False),
            "actor": Provide(provide_actor),
            "meta": Provide(provide_meta),
            "throttle": Provide(provide_throttle),
            "guest_pass": Provide(provide_guest_pass),
            "metrics": Provide(lambda: metrics, sync_to_thread=False),
        },
        lifespan=[lifespan(settings, metrics), load_secret],
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
