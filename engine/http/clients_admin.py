"""The admin API of the hosted pages' clients (/admin/clients...): parse, call engine/client_admin.py, render.

A client of config.yaml is listed and read here like the others (`source: config`) but changed
only in config.yaml: PUT and DELETE answer 409 `client_in_config`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from engine import formats
from engine.clients import Client
from engine.errors import InvalidRequest, NotFound
from engine.http import schema
from engine.http.admin import admin_services
from engine.http.bodies import read_json
from engine.http.json_schema import described, ecma_pattern
from engine.http.render import json_response

MAX_REDIRECT_URIS = 16  # all of them listed in the audit trail's client events (at most 20 items, each cut at 200 characters)
MAX_NAME_LENGTH = 256  # as the API's context.client_name, which the pages fill from it

_URI_SCHEMA = {"type": "string", "maxLength": formats.MAX_REDIRECT_URI_LENGTH, "pattern": "^https?://",
               "description": f"matched exactly; {formats.REDIRECT_URI_RULE.removeprefix('each ')}"}


@described({"type": "array", "minItems": 1, "maxItems": MAX_REDIRECT_URIS, "items": _URI_SCHEMA})
def redirect_uris(value: Any, path: str) -> list[str]:
    """The rule config.yaml's clients follow (engine.formats.is_redirect_uri); never echoes a URI."""
    if type(value) is not list or not 0 < len(value) <= MAX_REDIRECT_URIS:
        raise InvalidRequest(f"must be a list of 1 to {MAX_REDIRECT_URIS} URLs", field=path)
    for index, uri in enumerate(value):
        if type(uri) is not str or not formats.is_redirect_uri(uri):
            raise InvalidRequest(formats.REDIRECT_URI_RULE.replace("each must", "must", 1), field=f"{path}[{index}]")
    return list(dict.fromkeys(value))  # one entry each: they are matched exactly


PUT_CLIENT = schema.obj({"name": schema.text(MAX_NAME_LENGTH), "redirect_uris": redirect_uris,
                         "public": schema.boolean}, frozenset({"name", "redirect_uris"}))

# This route's body by route name (engine/http/routes.py), as schema.BODIES: the API document reads it.
BODIES = {"admin_put_client": PUT_CLIENT}

_CLIENT_ID_RULE = f"must be a client id ({ecma_pattern(formats.CLIENT_ID)})"


def client_plain(client: Client) -> dict[str, Any]:
    return {"client_id": client.client_id, "name": client.name, "redirect_uris": list(client.redirect_uris),
            "public": client.public, "source": client.source.value}


def _known_id(request: Request) -> str:
    """An id no client can have names nothing: 404 before any lookup."""
    client_id: str = request.path_params["client_id"]
    if formats.CLIENT_ID.fullmatch(client_id) is None:
        raise NotFound("no such client")
    return client_id


async def list_clients(request: Request) -> Response:
    clients = await admin_services(request).client_admin.list_clients()
    return json_response({"clients": [client_plain(client) for client in clients]})


async def get_client(request: Request) -> Response:
    services = admin_services(request)
    return json_response(client_plain(await services.client_admin.get_client(_known_id(request))))


async def put_client(request: Request) -> Response:
    """201 when created, 200 when replaced."""
    services = admin_services(request)
    client_id: str = request.path_params["client_id"]
    if formats.CLIENT_ID.fullmatch(client_id) is None:  # a new id is chosen here: say what it must be
        raise InvalidRequest(_CLIENT_ID_RULE, field="client_id")
    body = schema.parse(PUT_CLIENT, await read_json(request, services.settings.http.max_body_bytes))
    client, created = await services.client_admin.put_client(client_id, body["name"], body["redirect_uris"],
                                                             body.get("public", False))
    return json_response(client_plain(client), 201 if created else 200)


async def delete_client(request: Request) -> Response:
    services = admin_services(request)
    await services.client_admin.delete_client(_known_id(request))
    return Response(status_code=204)
