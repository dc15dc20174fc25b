"""Sign in, sign out and register, as HTML forms."""

from __future__ import annotations

from dataclasses import dataclass, field
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

@dataclass(frozen=True)
class SignInRefused:
    """Why a sign-in form was refused, as the page says it, and with what status."""
    reason: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)


async def attempt_sign_in(services: Services, throttle: Throttle, name: str, password: str
                          ) -> str | SignInRefused:
    """A sign-in form's work, wherever the form is (``/login``, or a refused post's page,
    which keeps the draft): the new session's token, or why not. Throttled per address
    and per name, failures counted, as the API's sign-in."""
    try:
        await throttle.sign_in(name)
        found = await services.handlers.sign_in(name, password)
    except d.TooSoonError as refused:
        return SignInRefused(_reason(refused), 429, {"Retry-After": str(refused.retry_after)})
    except d.NotAuthenticatedError:
        await throttle.sign_in_failed(name)
        return SignInRefused("Wrong name or password.", 400)
    except d.ForbiddenError as refused:
        return SignInRefused(_reason(refused), 403)
    await throttle.signed_in(name)
    return await services.auth.open_session(found.name)


class MemberPages(Controller):
    include_in_schema = False
    exception_handlers = {Exception: page_error}
    before_request = staticmethod(resolve_page_actor)

    @get("/login")
    async def login_form(self, request: AnyRequest,
                         next_: Annotated[str | None, Parameter(query="next", required=False)]
                         = None) -> Response[bytes]:
        return render(request, "login.html.j2", {
            "page_title": "Login", "form": {"name": "", "next": _safe_next(next_)},
            "error": None,
        })

    @post("/login", status_code=303, opt={"sign_in": True})
    async def login(self, request: AnyRequest, services: Services, throttle: Throttle
                    ) -> Response[Any]:
        form = await _form(request)
        name = form.get("name", "").strip()
        signed_in = await attempt_sign_in(services, throttle, name, form.get("password", ""))
        if isinstance(signed_in, SignInRefused):
            return render(request, "login.html.j2", {
                "page_title": "Login", "error": signed_in.reason,
                "form": {"name": name, "next": _safe_next(form.get("next"))},
            }, signed_in.status, signed_in.headers)
        return Redirect(_safe_next(form.get("next")), status_code=303,
                        cookies=[_login_cookie(request, signed_in)])

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
    async def register_form(self, request: AnyRequest) -> Response[bytes]:
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


