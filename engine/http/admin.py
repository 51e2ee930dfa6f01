"""The admin API: users and their factors, behind `Authorization: Bearer <admin.token>` (admin_only).

Query parameters are parsed strictly: only the ones a route knows, each at most once, integers
as ASCII digits in a stated range; anything else is 400 `invalid_request` naming the parameter.
Path ids that the engine could not have handed out are 404 before any lookup.
"""

from __future__ import annotations

import hmac
import re
import functools
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine import audit, formats
from engine.errors import InvalidRequest, NotFound, Unauthorized
from engine.http import schema
from engine.http.auth import presented_bearer
from engine.http.bodies import read_json
from engine.http.render import json_response
from engine.services import Services
from engine.stores.directory import FactorRecord, RememberedBrowser, UserRecord

MAX_PAGE = 1000
MAX_OFFSET = 1_000_000_000
# Not int(): it also takes "+5", " 5", "5_000" and the digits of every script ("\u0661\u0662" is 12).
_DIGITS = re.compile(r"[0-9]{1,10}")


def admin_only(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """The admin token check, declared once for every /admin route in engine/http/routes.py."""
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        services: Services = request.app.state.services
        expected = services.settings.admin.token.encode()
        presented = presented_bearer(request)
        # An empty admin.token disables the admin API rather than accepting an empty bearer.
        if not expected or presented is None or not hmac.compare_digest(presented, expected):
            raise Unauthorized("a valid admin token is required (Authorization: Bearer <admin.token>)")
        # Whatever this request changes is audited as coming from its peer (engine/audit.py).
        with audit.admin_request(request.client.host if request.client else None):
            return await endpoint(request)
    return guarded


def admin_services(request: Request, query: Collection[str] = ()) -> Services:
    """The services, once the query holds only `query`, once each (the token is checked by admin_only)."""
    services: Services = request.app.state.services
    seen = set()
    for key, _ in request.query_params.multi_items():
        # A parameter given twice is ambiguous: a proxy may read the first, the engine the last.
        if key not in query or key in seen:
            raise InvalidRequest("must be given once" if key in seen else "is not a known query parameter",
                                 field=key if len(key) <= 64 and formats.is_identifier(key) else "query")
        seen.add(key)
    return services


@dataclass(frozen=True, slots=True)
class QueryInteger:
    """An integer query parameter: ASCII digits from `low` to `high`, `default` when absent."""

    name: str
    default: int
    low: int
    high: int

    def read(self, request: Request) -> int:
        return _query_int(request, self.name, self.default, self.low, self.high)


LIMIT = QueryInteger("limit", 100, 1, MAX_PAGE)
OFFSET = QueryInteger("offset", 0, 0, MAX_OFFSET)
# Each route's query parameters by route name (engine/http/routes.py): the API document reads them.
QUERIES: dict[str, tuple[QueryInteger, ...]] = {"admin_list_users": (LIMIT, OFFSET)}


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None or not low <= int(raw) <= high:
        raise InvalidRequest(f"must be an integer from {low} to {high}", field=name)
    return int(raw)


def _path_id(request: Request, name: str, what: str) -> str:
    """An id from the path; one the engine cannot have made (usr_/fac_ + base64url) names nothing."""
    value: str = request.path_params[name]
    if formats.OPAQUE_ID.fullmatch(value) is None:
        raise NotFound(f"no such {what}")
    return value


def user_plain(user: UserRecord) -> dict[str, Any]:
    return {
        "user_id": user.user_id, "username": user.username, "email": user.email,
        "email_verified": user.email_verified, "name": user.name, "phone_number": user.phone_number,
        "app_metadata": dict(user.app_metadata), "user_metadata": dict(user.user_metadata),
        "created_at": user.created_at.isoformat(), "last_login": user.last_login.isoformat() if user.last_login else None,
        "logins_count": user.logins_count, "preferred_factor": user.preferred_factor,
    }


def factor_plain(factor: FactorRecord) -> dict[str, Any]:
    return {"id": factor.factor_id, "type": factor.type, "status": factor.status, "phone": factor.phone_number,
            "created_at": factor.created_at.isoformat(),
            "confirmed_at": factor.confirmed_at.isoformat() if factor.confirmed_at else None,
            "last_used_at": factor.last_used_at.isoformat() if factor.last_used_at else None}


def remembered_plain(browser: RememberedBrowser) -> dict[str, Any]:
    """Never the token: the directory does not hold it."""
    return {"id": browser.browser_id, "device_id": browser.device_id, "user_agent": browser.user_agent,
            "client_id": browser.client_id, "created_at": browser.created_at.isoformat(),
            "expires_at": browser.expires_at.isoformat(),
            "last_used_at": browser.last_used_at.isoformat() if browser.last_used_at else None}


async def create_user(request: Request) -> Response:
    services = admin_services(request)
    body = schema.parse(schema.NEW_USER, await read_json(request, services.settings.http.max_body_bytes))
    password = body.pop("password")
    return json_response(user_plain(await services.users.create_user(body, password)), 201)


async def list_users(request: Request) -> Response:
    services = admin_services(request, query=[parameter.name for parameter in QUERIES["admin_list_users"]])
    limit, offset = LIMIT.read(request), OFFSET.read(request)
    users = await services.users.list_users(limit, offset)
    return json_response({"users": [user_plain(user) for user in users], "limit": limit, "offset": offset})


async def get_user(request: Request) -> Response:
    services = admin_services(request)
    return json_response(user_plain(await services.users.get_user(_path_id(request, "user_id", "user"))))


async def update_user(request: Request) -> Response:
    services = admin_services(request)
    body = schema.parse(schema.USER_CHANGES, await read_json(request, services.settings.http.max_body_bytes))
    user = await services.users.update_user(_path_id(request, "user_id", "user"), body)
    return json_response(user_plain(user))


async def delete_user(request: Request) -> Response:
    services = admin_services(request)
    await services.users.delete_user(_path_id(request, "user_id", "user"))
    return Response(status_code=204)


async def list_factors(request: Request) -> Response:
    services = admin_services(request)
    listing = await services.users.list_factors(_path_id(request, "user_id", "user"))
    return json_response({"factors": [factor_plain(f) for f in listing.factors],
                          "recovery_codes_left": listing.recovery_codes_left})


async def add_factor(request: Request) -> Response:
    """Pre-enroll a phone, or import an existing TOTP secret (migrations): active at once."""
    services = admin_services(request)
    body = schema.parse(schema.NEW_FACTOR, await read_json(request, services.settings.http.max_body_bytes))
    user_id = _path_id(request, "user_id", "user")
    factor = await services.users.add_factor(user_id, "otp" if body["type"] == "totp" else body["type"],
                                             body.get("phone_number"), body.get("secret"))
    return json_response(factor_plain(factor), 201)


async def delete_factor(request: Request) -> Response:
    services = admin_services(request)
    user_id = _path_id(request, "user_id", "user")
    await services.users.delete_factor(user_id, _path_id(request, "factor_id", "factor"))
    return Response(status_code=204)


async def reset_mfa(request: Request) -> Response:
    services = admin_services(request)
    user = await services.users.reset_mfa(_path_id(request, "user_id", "user"))
    return json_response({"status": "reset", "user_id": user.user_id})


async def list_remembered_browsers(request: Request) -> Response:
    services = admin_services(request)
    browsers = await services.users.list_remembered_browsers(_path_id(request, "user_id", "user"))
    return json_response({"remembered_browsers": [remembered_plain(browser) for browser in browsers]})


async def forget_remembered_browsers(request: Request) -> Response:
    services = admin_services(request)
    await services.users.forget_remembered_browsers(_path_id(request, "user_id", "user"))
    return Response(status_code=204)


async def forget_remembered_browser(request: Request) -> Response:
    services = admin_services(request)
    user_id = _path_id(request, "user_id", "user")
    await services.users.forget_remembered_browser(user_id, _path_id(request, "browser_id", "remembered browser"))
    return Response(status_code=204)
