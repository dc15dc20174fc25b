"""Sign in, sign out and register, as HTML forms."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect

from service import commands as c
from service.domain import errors as d
from service.lifespan import Services
from service.limits import Throttle
from service.web.rendering import (
    COOKIE,
    AnyRequest,
    _form,
    _login_cookie,
    _meta,
    _page_identity,
    _reason,
    _refusal_status,
    _safe_next,
    page_error,
    render,
    resolve_page_actor,
)

# -- members ------------------------------------------------------------------------------

class MemberPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/login")
    async def login_form(self, request: AnyRequest,
                         next_: Annotated[str | None, Parameter(query="next", required=False)]
                         = None) -> Response[str]:
        return render(request, "login.html.j2", {
            "page_title": "Login", "form": {"name": "", "next": _safe_next(next_)},
            "error": None,
        })

    @post("/login", status_code=303, opt={"sign_in": True})
    async def login(self, request: AnyRequest, services: Services, throttle: Throttle
                    ) -> Response[Any]:
        form = await _form(request)
        name, password = form.get("name", "").strip(), form.get("password", "")
        try:
            await throttle.sign_in(name)
            found = await services.handlers.sign_in(name, password)
        except d.TooSoonError as refused:
            return render(request, "login.html.j2", {
                "page_title": "Login", "error": _reason(refused),
                "form": {"name": name, "next": _safe_next(form.get("next"))},
            }, 429, {"Retry-After": str(refused.retry_after)})
        except (d.NotAuthenticatedError, d.ForbiddenError) as refused:
            wrong = isinstance(refused, d.NotAuthenticatedError)
            if wrong:
                await throttle.sign_in_failed(name)
            return render(request, "login.html.j2", {
                "page_title": "Login",
                "error": "Wrong name or password." if wrong else _reason(refused),
                "form": {"name": name, "next": _safe_next(form.get("next"))},
            }, 400 if wrong else 403)
        await throttle.signed_in(name)
        token = await services.auth.open_session(found.name)
        return Redirect(_safe_next(form.get("next")), status_code=303,
                        cookies=[_login_cookie(request, token)])

    @post("/logout", status_code=303, opt={"ban_exempt": True})
    async def logout(self, request: AnyRequest, services: Services) -> Response[Any]:
        """Revokes the page's session (not merely forgets the cookie) and clears it."""
        identity = _page_identity(request)
        if identity is not None and identity.session is not None:
            await services.auth.sessions.revoke_hash(identity.session.token_hash)
        return Redirect("/", status_code=303,
                        cookies=[Cookie(key=COOKIE, value="", path="/", max_age=0,
                                        httponly=True, samesite="lax")])

    @get("/register")
    async def register_form(self, request: AnyRequest) -> Response[str]:
        return render(request, "register.html.j2", {
            "page_title": "Register", "form": {"name": ""}, "error": None,
        })

    @post("/register", status_code=303, opt={"sign_in": True})
    async def register(self, request: AnyRequest, services: Services, throttle: Throttle
                       ) -> Response[Any]:
        form = await _form(request)
        name, password = form.get("name", ""), form.get("password", "")
        try:
            await throttle("register", None)
            result = await services.handlers.register(
                c.Register(name=name, password=password), _meta(request)
            )
        except d.DomainError as refused:
            return render(request, "register.html.j2", {
                "page_title": "Register", "form": {"name": name}, "error": _reason(refused),
            }, _refusal_status(refused))
        token = await services.auth.open_session(result.name)
        return Redirect("/", status_code=303,
                        cookies=[_login_cookie(request, token)])


