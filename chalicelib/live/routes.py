"""The live-updates hub's handlers: API Gateway websocket routes ``$connect``, ``$default``
and ``$disconnect``, and the events stream's fan-out function.

Each handler calls one service function. Frames for a client are posted back through the
management API at the endpoint the event came through. Chalice deploys websocket handlers
only when they are registered on the app itself, so ``app.py`` registers
:func:`connect`, :func:`message` and :func:`disconnect`; the fan-out is this blueprint's.
"""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Response
from chalice.app import WebsocketEvent

from chalicelib.core.lazy import LazyModule
from chalicelib.core.problems import AmporaError, to_problem
from chalicelib.core.settings import settings

bp = Blueprint(__name__)
service = LazyModule("chalicelib.live.service")
sender = LazyModule("chalicelib.live.sender")
#: The fan-out function's name (infra maps the events table's stream to it).
FAN_OUT = "live-fan-out"
#: Where clients connect (``wss://<host>/hubs/live-updates``).
HUB_PATH = "/hubs/live-updates"


def _endpoint(event: WebsocketEvent) -> str:
    """Where the management API for this connection answers: the API's own execute-api host
    (a custom domain does not serve ``@connections``), or the local stack."""
    if event.domain_name.startswith(("127.0.0.1", "localhost")):
        return f"http://{event.domain_name}/{event.stage}"
    api_id = event.to_dict()["requestContext"]["apiId"]
    return f"https://{api_id}.execute-api.{settings().region}.amazonaws.com/{event.stage}"


def connect(event: WebsocketEvent) -> Response | None:
    """Admit a connection whose ``access_token`` query parameter authenticates; refuse (with
    the problem's status) any other."""
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    source_ip = (raw["requestContext"].get("identity") or {}).get("sourceIp", "")
    try:
        service.connect(event.connection_id, query.get("access_token"), _endpoint(event),
                        source_ip)
    except AmporaError as exc:
        body = to_problem(exc, instance=HUB_PATH, docs_url=settings().docs_url)
        return Response(body=json.dumps(body), status_code=exc.status,
                        headers={"Content-Type": "application/problem+json"})
    return None


def message(event: WebsocketEvent) -> None:
    """Answer a client message with its frames."""
    for frame in service.receive(event.connection_id, event.to_dict().get("body")):
        sender.post(_endpoint(event), event.connection_id, frame)


def disconnect(event: WebsocketEvent) -> None:
    """Forget the connection."""
    service.disconnect(event.connection_id)


@bp.lambda_function(name=FAN_OUT)
def fan_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send a batch of the events table's stream to the connections that follow them."""
    stats = service.fan_out(service.envelopes_of(event.get("Records") or []))
    return dict(stats.to_wire())
