"""The live-updates hub through its websocket routes, as API Gateway calls them (the local
stack's Hub), with events reaching clients from the events table's stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.api import Api


@dataclass
class Client:
    """One websocket client: the frames it received, whether it was closed."""

    socket: Any
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def events(self) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if "specversion" in frame]

    def controls(self) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if "specversion" not in frame]


class Hub:
    """Connect clients, send their messages, and pump the events stream to them."""

    def __init__(self, api: Api, hub: Any, stream: Any) -> None:
        self.api, self.hub, self.stream = api, hub, stream

    def connect(self, token: str | None = None, *, role: str = "Viewer",
                tenant: str = "acme") -> tuple[Client | None, dict[str, Any]]:
        from chalicelib.local.events import HttpRequest
        from chalicelib.local.live import Socket

        if token is None:
            token = self.api.idp.token(role, tenant=tenant, sub="watcher")
        query = [] if token == "" else [("access_token", token)]
        socket = Socket(HttpRequest("GET", "/hubs/live-updates", query=query), "127.0.0.1:8000",
                        8000)
        client = Client(socket)

        def close() -> None:
            client.closed = True

        answer = self.hub.connect(socket, lambda text: client.frames.append(json.loads(text)),
                                  close)
        return (client if 200 <= int(answer.get("statusCode", 200)) < 300 else None), answer

    def send(self, client: Client, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        assert self.hub.message(client.socket, text) is None

    def pump(self) -> int:
        return int(self.stream.poll_once())


@pytest.fixture
def hub(api: Api) -> Iterator[Hub]:
    import app
    from chalicelib.live import sender
    from chalicelib.local.live import Hub as LocalHub
    from chalicelib.local.live import LocalConnections, events_stream

    sender.forget()
    with LocalConnections() as connections:
        stream = events_stream(app.app)
        stream.start()
        yield Hub(api, LocalHub(app.app, connections), stream)
        stream.stop()
    sender.forget()


def subscribe(hub: Hub, client: Client, events: list[str], **extra: Any) -> dict[str, Any]:
    hub.send(client, {"type": "subscribe", "events": events, **extra})
    return client.controls()[-1]


def connections() -> list[Any]:
    from chalicelib.live.models import ConnectionItem

    return list(ConnectionItem.scan())


def test_a_subscriber_receives_its_tenants_events_as_cloudevents(api: Api, hub: Hub) -> None:
    client, _ = hub.connect()
    assert client is not None
    ack = subscribe(hub, client, ["group.*"])
    assert ack == {"type": "ack", "of": "subscribe",
                   "subscription": {"events": ["group.*"], "filter": {}}}
    created = api.post("/api/groups", {"name": "web"})
    api.post("/api/groups", {"name": "other"}, tenant="globex")
    assert hub.pump() >= 1
    [event] = [e for e in client.events() if e["data"]["name"] == "web"]
    assert all(e["tenant"] == "acme" for e in client.events())
    assert event["type"] == "group.created" and event["specversion"] == "1.0"
    assert event["subject"] == f"groups/{created.json['id']}"
    assert event["data"]["name"] == "web" and event["source"] and event["time"]
    assert event["sequence"] and event["id"]


def test_no_token_or_a_bad_token_is_refused_and_nothing_is_stored(hub: Hub) -> None:
    for token in ("", "not-a-token", "amp-pat.AAAA.BBBB"):
        client, answer = hub.connect(token)
        assert client is None and answer["statusCode"] == 401, answer
    assert connections() == []


def test_a_token_limited_to_some_endpoints_cannot_connect(api: Api, hub: Hub) -> None:
    pat = api.post("/api/api-tokens", {"name": "ci", "role": "Viewer",
                                       "allowedEndpoints": ["GET /api/agents"]}).json["token"]
    client, answer = hub.connect(pat)
    assert client is None and answer["statusCode"] == 403
    assert connections() == []


def test_malformed_messages_get_an_error_frame_and_the_connection_stays(hub: Hub) -> None:
    client, _ = hub.connect()
    assert client is not None
    for bad in ("not json", {"type": "dance"}, {"type": "subscribe", "events": ["a.**"]},
                {"type": "subscribe", "events": ["a"], "since": "yesterday"}):
        hub.send(client, bad)
        frame = client.controls()[-1]
        assert frame["type"] == "error" and frame["code"] == "bad-message" and frame["message"]
    hub.send(client, {"type": "ping"})
    assert client.controls()[-1] == {"type": "pong"}
    assert not client.closed and len(connections()) == 1


def test_filters_and_unsubscribe(api: Api, hub: Hub) -> None:
    client, _ = hub.connect()
    assert client is not None
    web = api.post("/api/groups", {"name": "web"}).json["id"]
    hub.pump()
    subscribe(hub, client, ["group.*"], filter={"subject": f"groups/{web}"})
    api.call("PATCH", f"/api/groups/{web}", {"description": "front"})
    api.post("/api/groups", {"name": "db"})
    hub.pump()
    assert [e["type"] for e in client.events()] == ["group.updated"]
    hub.send(client, {"type": "unsubscribe"})
    assert client.controls()[-1]["subscription"] == {"events": [], "filter": {}}
    api.call("PATCH", f"/api/groups/{web}", {"description": "back"})
    hub.pump()
    assert len(client.events()) == 1


def test_personal_access_token_events_reach_admins_only(api: Api, hub: Hub) -> None:
    viewer, _ = hub.connect(role="Viewer")
    admin, _ = hub.connect(role="Admin")
    assert viewer is not None and admin is not None
    for client in (viewer, admin):
        subscribe(hub, client, ["*"])
    api.post("/api/api-tokens", {"name": "ci", "role": "Viewer"})
    hub.pump()
    assert [e["type"] for e in admin.events()] == ["api-token.created"]
    assert viewer.events() == []


def test_since_replays_what_was_missed_and_too_old_asks_for_a_resync(api: Api, hub: Hub,
                                                                     clock: Any) -> None:
    client, _ = hub.connect()
    assert client is not None
    subscribe(hub, client, ["group.*"])
    api.post("/api/groups", {"name": "first"})
    hub.pump()
    seen = client.events()[-1]["sequence"]
    known = {e["id"] for e in client.events()}
    # When the client is away while more happens
    hub.hub.disconnect(client.socket, 1000)
    clock.advance(seconds=5)
    api.post("/api/groups", {"name": "second"})
    clock.advance(seconds=1)
    api.post("/api/groups", {"name": "third"})
    hub.pump()
    back, _ = hub.connect()
    assert back is not None
    subscribe(hub, back, ["group.*"], since=seen)
    # Then it gets what it missed, in order, after the ack (a replay starts a little before
    # 'since', so a client skips the ids it already has), never the event it named
    assert [e["data"]["name"] for e in back.events()
            if e["type"] == "group.created" and e["id"] not in known] == ["second", "third"]
    assert seen not in [e["sequence"] for e in back.events()]
    assert back.frames[0]["type"] == "ack"
    # And asking for events older than the retention window is an error telling it to re-read
    clock.advance(days=30)
    subscribe(hub, back, ["group.*"], since=seen)
    assert back.controls()[-1]["code"] == "resync"


def test_gone_connections_are_forgotten_at_fan_out(api: Api, hub: Hub) -> None:
    client, _ = hub.connect()
    assert client is not None
    subscribe(hub, client, ["group.*"])
    hub.hub.connections.close(client.socket.connection_id)  # the socket died unannounced
    api.post("/api/groups", {"name": "web"})
    hub.pump()
    assert connections() == []


def test_revoking_a_personal_access_token_closes_its_connections(api: Api, hub: Hub) -> None:
    created = api.post("/api/api-tokens", {"name": "watcher", "role": "Viewer"}).json
    client, _ = hub.connect(created["token"])
    assert client is not None and len(connections()) == 1
    assert api.post(f"/api/api-tokens/{created['id']}/revoke").status == 200
    assert client.closed and connections() == []
    again, answer = hub.connect(created["token"])
    assert again is None and answer["statusCode"] == 401


def test_an_event_too_large_for_a_message_is_sent_by_reference(hub: Hub,
                                                               monkeypatch: Any) -> None:
    from chalicelib.live import protocol

    monkeypatch.setattr(protocol, "MAX_EVENT_BYTES", 200)
    client, _ = hub.connect()
    assert client is not None
    subscribe(hub, client, ["group.*"])
    web = hub.api.post("/api/groups", {"name": "web", "description": "x" * 300}).json["id"]
    hub.pump()
    [event] = [e for e in client.events() if e["subject"] == f"groups/{web}"]
    assert "data" not in event and event["dataref"] == f"/api/groups/{web}"


def test_disconnect_forgets_the_connection(hub: Hub) -> None:
    client, _ = hub.connect()
    assert client is not None and len(connections()) == 1
    hub.hub.disconnect(client.socket, 1000)
    assert connections() == []
