"""The dashboard's own HTTP routes, served beside Streamlit's: sign in and sign out.

Only an HTTP response can set a cookie that scripts cannot read, so signing in is a plain
form POST rather than a Streamlit widget:

- ``POST /auth/login`` (``username``, ``secret``): checks them, opens a session and answers
  303 to ``/`` with ``mlwatch_session`` set ``HttpOnly; SameSite=Strict; Path=/``, and
  ``Secure`` when the request came over HTTPS; the session the browser had before, if
  any, ends. A refusal answers the form again, with why.
- ``POST /auth/logout``: ends the session and deletes the cookie; 303 to ``/``.
- ``GET /auth/login``: the same form on a page of its own.

A POST whose ``Origin`` names another host is refused, so no other site can sign a
browser in (or out) behind its back.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dashboard.access import authenticate
from dashboard.signins import SESSION_COOKIE, SESSION_SECONDS, SignIns
from monitor.config import Settings
from monitor.errors import AuthError

LOGIN_PATH = "/auth/login"
LOGOUT_PATH = "/auth/logout"
HOME = "/"
# The pages answered here hold no script at all; this keeps it so.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_FIELD = "display:block;width:100%;box-sizing:border-box;margin:0.25rem 0 1rem;padding:0.5rem;font-size:1rem"
_BUTTON = "padding:0.5rem 1rem;font-size:1rem;border-radius:0.5rem;border:1px solid #d0d0d8;cursor:pointer"


def login_form(error: str = "") -> str:
    """The sign-in form (posting to ``/auth/login``), for the Streamlit login page and ours."""
    problem = f'<p role="alert" style="color:#b00020">{html.escape(error)}</p>' if error else ""
    return (
        f'<form method="post" action="{LOGIN_PATH}" style="max-width:28rem">{problem}'
        f'<label for="mlwatch-username">User name</label>'
        f'<input id="mlwatch-username" name="username" autocomplete="username" style="{_FIELD}">'
        f'<label for="mlwatch-secret">Password or API token</label>'
        f'<input id="mlwatch-secret" name="secret" type="password" autocomplete="current-password" style="{_FIELD}">'
        f'<button type="submit" style="{_BUTTON};background:#ff4b4b;color:white;border:0">Log in</button></form>'
    )


def logout_form() -> str:
    """The log-out button (a form posting to ``/auth/logout``), for the sidebar."""
    return f'<form method="post" action="{LOGOUT_PATH}"><button type="submit" style="{_BUTTON}">Log out</button></form>'


class AuthRoutes:
    """``/auth/login`` and ``/auth/logout`` over the sessions ``signins`` gives (made on first use)."""

    def __init__(self, signins: Callable[[], SignIns], settings: Callable[[], Settings]) -> None:
        self.signins = signins
        self.settings = settings

    @property
    def routes(self) -> list[BaseRoute]:
        """The Starlette routes, to mount beside Streamlit's."""
        return [
            Route(LOGIN_PATH, self.login_page, methods=["GET"]),
            Route(LOGIN_PATH, self.log_in, methods=["POST"]),
            Route(LOGOUT_PATH, self.log_out, methods=["POST"]),
        ]

    async def login_page(self, request: Request) -> Response:
        """The sign-in form on a page of its own."""
        return _page()

    async def log_in(self, request: Request) -> Response:
        """Check the form's user name and password (or token); on success set the session cookie."""
        if not _same_origin(request):
            return _page("Not signed in: the form was sent from another site", status=403)
        form = await request.form()
        username, secret = str(form.get("username") or ""), str(form.get("secret") or "")
        try:
            cookie = await run_in_threadpool(self._sign_in, username, secret, request.cookies.get(SESSION_COOKIE))
        except AuthError as exc:
            return _page(f"Not signed in: {exc}", status=exc.status)
        response = RedirectResponse(HOME, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def log_out(self, request: Request) -> Response:
        """End this browser's session, and delete its cookie."""
        if not _same_origin(request):
            return _page("Not signed out: the form was sent from another site", status=403)
        await run_in_threadpool(self.signins().sign_out, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(HOME, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _sign_in(self, username: str, secret: str, previous: str | None) -> str:
        signins = self.signins()
        cookie = signins.sign_in(authenticate(self.settings(), signins.store, username, secret))
        signins.sign_out(previous)  # a new sign-in never keeps the browser's old session alive beside it
        return cookie


def _page(error: str = "", *, status: int = 200) -> HTMLResponse:
    body = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mlwatch: log in</title></head>"
        "<body style='font-family:sans-serif;margin:3rem'><h1>mlwatch</h1>"
        f"{login_form(error)}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")
