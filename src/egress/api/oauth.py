"""The OAuth 2.0 endpoints (``/oauth/*``, the RFC 8414 metadata, the JWKS) and seed 001's
``POST /api/v3/token``. Public routes: they are how a caller gets a credential.

Only HTTP lives here — turning a request into ``services.oauth.OAuthRequest`` and Authlib's
``(status, body, headers)`` back into a response, and the sign-in page with its CSRF cookie
and hidden field (``services.sign_in_forms``); the protocol is Authlib's, the storage, the
audit and the failed sign-in limit ``services.oauth``'s. ``/oauth/token`` answers errors in
the shape RFC 6749 prescribes (``{"error", "error_description"}``), which OAuth client
libraries parse; every other route answers problem JSON.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from egress.api.errors import PROBLEM
from egress.api.openapi import PROBLEM_REF
from egress.api.wiring import ServicesDep, SourceAddress
from egress.domain.errors import BadRequest, Busy, Forbidden, Unauthenticated
from egress.services.oauth import Answer, OAuthRequest
from egress.services.sign_in_forms import (
    BROWSER_COOKIE,
    FORM_FIELD,
    FORM_TTL_S,
    new_browser_id,
)

router = APIRouter(tags=["oauth"])
# What these routes read and answer, which FastAPI cannot see: they parse the form themselves.
_TEXT = {"type": "string"}
_FORM = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "grant_type": {
                        "enum": ["authorization_code", "client_credentials", "refresh_token"]
                    },
                    **{
                        name: _TEXT
                        for name in (
                            "client_id",
                            "client_secret",
                            "code",
                            "code_verifier",
                            "redirect_uri",
                            "refresh_token",
                            "scope",
                        )
                    },
                },
            }
        }
    }
}
_OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": _TEXT, "error_description": _TEXT},
            "required": ["error"],
        }
    }
}
_MALFORMED = {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}
_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "RFC 6749 §5.2 (a grant or code not valid), or a malformed form",
        "content": {**_OAUTH_ERROR, **_MALFORMED},
    },
    401: {"description": "the client is not known or not authenticated", "content": _OAUTH_ERROR},
    429: {"description": "too many failed sign-ins from this address", "content": _MALFORMED},
}
_HTML = {"text/html": {"schema": _TEXT}}
_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _HTML},
    302: {"description": "back to the client's redirect URI, with a code or an error"},
    400: {"description": "the request cannot be signed into", "content": {**_HTML, **_MALFORMED}},
    401: {"description": "the email or password is not right", "content": _HTML},
    403: {"description": "the form's CSRF field or cookie is missing or wrong", "content": _HTML},
    429: {"description": "too many failed sign-ins from this address", "content": _HTML},
}
# The sign-in page must never be framed (clickjacking) nor cached (it carries the request).
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}


async def _oauth_request(request: Request, source_address: str | None) -> OAuthRequest:
    params = list(request.query_params.multi_items())
    if request.method == "POST":
        try:
            body = (await request.body()).decode()
        except UnicodeDecodeError as exc:
            raise BadRequest.at(("body",), "must be UTF-8 form data") from exc
        params += parse_qsl(body, keep_blank_values=True)
    seen = [k for k, _ in params]
    if repeated := sorted({k for k in seen if seen.count(k) > 1}):  # RFC 6749 §3.1, §3.2
        raise BadRequest.at((repeated[0],), "must not be given more than once")
    headers = (
        {"Authorization": request.headers["authorization"]}
        if ("authorization" in request.headers)
        else {}
    )
    try:  # Authlib decodes Basic credentials as UTF-8 without catching the error
        extract_basic_authorization(headers)
    except UnicodeDecodeError as exc:
        raise BadRequest.at(
            ("header", "authorization"), "HTTP Basic credentials must be UTF-8 'id:secret'"
        ) from exc
    try:
        return OAuthRequest(request.method, str(request.url), headers, params, source_address)
    except InsecureTransportError as exc:  # plain http to a non-loopback address
        raise BadRequest.at(
            ("url",),
            "OAuth needs https (plain http only on loopback; behind a TLS proxy, "
            "run with forwarded headers trusted)",
        ) from exc


def _response(answer: Answer) -> Response:
    status, body, headers = answer
    if isinstance(body, dict):
        return JSONResponse(body, status_code=status, headers=dict(headers))
    return Response(body or b"", status_code=status, headers=dict(headers))


_METADATA = {
    "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    "scopes_supported": ["api"],
}


@router.get("/.well-known/oauth-authorization-server")
def metadata(request: Request) -> dict[str, Any]:
    """RFC 8414: where the endpoints are and what they support."""
    base = str(request.base_url).rstrip("/")
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}/oauth/jwks.json",
        **_METADATA,
    }


@router.get("/oauth/jwks.json")
def jwks(s: ServicesDep) -> dict[str, Any]:
    """The public keys access tokens are signed with (the current one and older ones)."""
    return s.oauth.access_tokens.jwks()


@router.post("/oauth/token", responses=_TOKEN_RESPONSES, openapi_extra={"requestBody": _FORM})
async def token(request: Request, s: ServicesDep, addr: SourceAddress) -> Response:
    """``grant_type`` = ``client_credentials``, ``authorization_code`` (with ``code_verifier``)
    or ``refresh_token``; form-encoded, client credentials by HTTP Basic or in the form. Every
    request is a sign-in on the audit trail; an address with too many failed ones gets 429."""
    return _response(s.oauth.token(await _oauth_request(request, addr)))


@router.post(
    "/api/v3/token",
    responses={401: {"description": "no HTTP Basic credentials, or not an OAuth client's"}},
    openapi_extra={"requestBody": _FORM},
)
async def seed_token(request: Request, s: ServicesDep, addr: SourceAddress) -> dict[str, Any]:
    """Seed 001: HTTP Basic with an OAuth client's id and secret → an access token."""
    if not request.headers.get("authorization", "").lower().startswith("basic "):
        raise Unauthenticated("HTTP Basic credentials of an OAuth client are required")
    oauth = await _oauth_request(request, addr)
    oauth.payload.data["grant_type"] = "client_credentials"  # whatever the body says
    oauth.payload.datalist["grant_type"] = ["client_credentials"]
    status, body, _ = s.oauth.token(oauth)
    if status != 200:
        reason = body.get("error", "invalid_client")
        why = f" ({body['error_description']})" if body.get("error_description") else ""
        raise Unauthenticated(f"the client credentials were not accepted: {reason}{why}")
    return {k: body[k] for k in ("access_token", "token_type", "expires_in")}


def _page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
        "max-width:26rem;margin:4rem auto}}label,input,button{{display:block;margin:.4rem 0}}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, headers={**_PAGE_HEADERS, **(headers or {})})


def _error_page(answer: Answer) -> Response:
    status, body, _ = answer
    if status in (301, 302, 303, 307):  # Authlib redirects errors to a verified redirect URI
        return _response(answer)
    detail = json.loads(body) if isinstance(body, str) else body
    message = detail.get("error_description") or detail.get("error") or "invalid request"
    return _page("Sign-in is not possible", f"<p>{html.escape(str(message))}</p>", status)


def _refused_page(error: Forbidden | Busy) -> HTMLResponse:
    if isinstance(error, Busy):
        return _page(
            "Too many sign-in attempts",
            f"<p>{html.escape(error.detail)}</p><p>Try again in {error.retry_after_s} seconds.</p>",
            429,
            {"Retry-After": str(error.retry_after_s)},
        )
    return _page("Sign-in is not possible", f"<p>{html.escape(error.detail)}</p>", 403)


@router.get("/oauth/authorize", response_class=HTMLResponse, responses=_PAGE_RESPONSES)
async def authorize_page(request: Request, s: ServicesDep, addr: SourceAddress) -> Response:
    """The sign-in and consent page of the authorization code flow."""
    oauth = await _oauth_request(request, addr)
    try:
        client = s.oauth.consent(oauth)
    except OAuth2Error as error:
        return _error_page(s.oauth.error_answer(oauth, error))
    browser = request.cookies.get(BROWSER_COOKIE) or new_browser_id()
    csrf = s.oauth.forms.issue(browser, request.query_params.multi_items())
    form = (
        f"<p><b>{html.escape(client.name)}</b> asks to act for you in this workspace with at "
        f"most the <b>{html.escape(client.role)}</b> role.</p>"
        "<form method='post'>"
        f"<input type='hidden' name='{FORM_FIELD}' value='{html.escape(csrf)}'>"
        "<label>Email <input name='email' type='email' autocomplete='username' required></label>"
        "<label>Password <input name='password' type='password' "
        "autocomplete='current-password' required></label>"
        "<button name='decision' value='allow'>Sign in and allow</button>"
        "<button name='decision' value='deny' formnovalidate>Deny</button></form>"
    )
    page = _page("Sign in to Egress", form)
    page.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=FORM_TTL_S,
        path="/oauth",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return page


@router.post("/oauth/authorize", response_class=HTMLResponse, responses=_PAGE_RESPONSES)
async def authorize(request: Request, s: ServicesDep, addr: SourceAddress) -> Response:
    """The consent form (with the page's CSRF field and cookie, else 403): allowed with a
    right password → redirect with a code; denied → redirect with ``access_denied``; a wrong
    password shows the page again; too many failed sign-ins from the address → 429."""
    oauth = await _oauth_request(request, addr)
    try:
        s.oauth.consent(oauth)
    except OAuth2Error as error:
        return _error_page(s.oauth.error_answer(oauth, error))
    form = oauth.form
    user = None
    try:
        s.oauth.forms.check(
            form.get(FORM_FIELD),
            request.cookies.get(BROWSER_COOKIE),
            request.query_params.multi_items(),
        )
        if form.get("decision") == "allow":
            user = s.oauth.sign_in(oauth, form.get("email", ""), form.get("password", ""))
    except (Forbidden, Busy) as error:
        return _refused_page(error)
    if form.get("decision") == "allow" and user is None:
        return _page(
            "Sign in to Egress",
            "<p>The email or password is not right.</p><p><a href=''>Try again</a></p>",
            401,
        )
    return _response(s.oauth.authorize(oauth, user))
