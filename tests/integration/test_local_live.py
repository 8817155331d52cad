"""The local stack's live-updates hub: the events table's stream fanned out through the app's
real websocket handlers to connections of the local management API, and sockets over aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chalicelib.core.events import EventRecord
from chalicelib.live.routes import HUB_PATH
from chalicelib.local.events import HttpRequest
from chalicelib.local.live import Hub, LocalConnections, Socket, StreamPoller, events_stream
from tests.support.api import Api

PORT = 8000
HOST = f"127.0.0.1:{PORT}"
ENDPOINT = f"http://{HOST}/local"
EVENTS = EventRecord.Meta.table_name
#: Long enough never to be reached by a working test; only there so a broken one cannot hang.
DEADLINE_SECONDS = 10.0


@pytest.fixture
def connections(aws: None) -> Iterator[LocalConnections]:
    """The management API answered by the connections tests open."""
    from chalicelib.live import sender

    sender.forget()
    with LocalConnections() as local:
        yield local


@pytest.fixture
def hub(connections: LocalConnections) -> Hub:
    """The app's websocket routes, run as API Gateway runs them."""
    import app

    return Hub(app.app, connections)


@pytest.fixture
def stream(aws: None) -> Iterator[StreamPoller]:
    """The events table's stream mapped to the fan-out function, from now on."""
    import app

    with events_stream(app.app) as poller:
        yield poller


@dataclass
class Client:
    """A connection whose frames are kept in a list."""

    socket: Socket
    frames: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def connection_id(self) -> str:
        """API Gateway's id for it."""
        return self.socket.connection_id

    def close(self) -> None:
        """What deleting the connection does."""
        self.closed = True

    def received(self) -> list[dict[str, Any]]:
        """The frames, parsed."""
        return [json.loads(frame) for frame in self.frames]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        """The events received of one type."""
        return [frame for frame in self.received() if frame.get("type") == event_type
                and "specversion" in frame]


def connect(hub: Hub, token: str | None) -> tuple[dict[str, Any], Client]:
    """``$connect`` with ``?access_token=``: the function's answer and the client."""
    query = [("access_token", token)] if token else []
    upgrade = HttpRequest("GET", HUB_PATH, query=query, headers=[("Host", HOST)])
    client = Client(Socket(upgrade, host=HOST, port=PORT))
    answer = hub.connect(client.socket, client.frames.append, client.close)
    return answer, client


def connected(hub: Hub, token: str) -> Client:
    """A client the hub admitted."""
    answer, client = connect(hub, token)
    assert answer["statusCode"] == 200, answer
    return client


def subscribe(hub: Hub, client: Client, *events: str) -> dict[str, Any]:
    """Send a subscribe message; the ack."""
    before = len(client.frames)
    error = hub.message(client.socket, json.dumps({"type": "subscribe", "events": list(events)}))
    assert error is None, error
    ack = client.received()[before]
    assert ack["type"] == "ack", ack
    return ack


def stored(connection_id: str) -> bool:
    """Whether the connections table still holds the connection."""
    from chalicelib.live.models import ConnectionItem

    try:
        ConnectionItem.get(connection_id, consistent_read=True)
    except ConnectionItem.DoesNotExist:
        return False
    return True


def management_api() -> Any:
    """The management API client, as the handlers build it."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT)


# --- the stream through the real handlers ----------------------------------------------------

def test_a_new_event_reaches_the_connections_that_follow_it(
        api: Api, hub: Hub, stream: StreamPoller) -> None:
    # Given one connection following groups and one following rollouts
    groups = connected(hub, api.idp.token("Viewer"))
    rollouts = connected(hub, api.idp.token("Admin", sub="bob"))
    assert subscribe(hub, groups, "group.*")["subscription"]["events"] == ["group.*"]
    subscribe(hub, rollouts, "rollout.*")

    # When a group is created
    created = api.post("/api/groups", {"name": "Edge"})
    assert created.status == 201, created.body
    delivered = stream.poll_once()

    # Then its event reaches the group follower only, as a CloudEvents envelope, once
    assert delivered >= 1
    [event] = [e for e in groups.events("group.created") if e["data"]["name"] == "Edge"]
    assert event["specversion"] == "1.0"
    assert event["subject"] == f"groups/{created.json['id']}"
    assert event["tenant"] == "acme"
    assert [frame["type"] for frame in rollouts.received()] == ["ack"]
    assert stream.poll_once() == 0


def test_the_stream_is_followed_from_where_it_stood_when_it_started(
        api: Api, hub: Hub) -> None:
    import app

    # Given a group created before the stream is followed
    assert api.post("/api/groups", {"name": "Before"}).status == 201
    with events_stream(app.app) as poller:
        client = connected(hub, api.idp.token("Admin"))
        subscribe(hub, client, "group.*")

        # When another is created after
        assert api.post("/api/groups", {"name": "After"}).status == 201
        poller.poll_once()

    # Then only the later one is sent
    names = [event["data"]["name"] for event in client.events("group.created")]
    assert names == ["After"]


@pytest.mark.parametrize("rollback", ["moto", "by item"])
def test_a_cancelled_transaction_sends_no_event(
        api: Api, hub: Hub, stream: StreamPoller, rollback: str) -> None:
    from chalicelib.local import transactions

    undo = transactions.install() if rollback == "by item" else (lambda: None)
    try:
        # Given a follower of groups, and a group named Edge
        client = connected(hub, api.idp.token("Admin"))
        subscribe(hub, client, "group.*")
        assert api.post("/api/groups", {"name": "Edge"}).status == 201
        stream.poll_once()
        before = len(client.events("group.created"))

        # When a second group named Edge is refused (its transaction wrote its event, then was
        # cancelled), then a third group is created
        assert api.post("/api/groups", {"name": "Edge"}).status == 409
        assert api.post("/api/groups", {"name": "Core"}).status == 201
        stream.poll_once()

        # Then only the third one's event is sent
        later = client.events("group.created")[before:]
        assert [event["data"]["name"] for event in later] == ["Core"]
    finally:
        undo()


def test_the_function_is_given_lambdas_dynamodb_event(api: Api) -> None:
    # Given the events stream mapped to a function that keeps what it is given
    given: list[dict[str, Any]] = []
    with StreamPoller(EVENTS, lambda event, context: given.append(event), "keep") as poller:
        # When an event is written
        assert api.post("/api/groups", {"name": "Edge"}).status == 201
        poller.poll_once()

    # Then the function got Lambda's DynamoDB Streams event
    records = [record for event in given for record in event["Records"]]
    assert records
    for record in records:
        assert record["eventName"] == "INSERT"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventVersion"] == "1.1"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"].startswith("arn:aws:dynamodb:us-east-1:")
        assert "/stream/" in record["eventSourceARN"]
        image = record["dynamodb"]["NewImage"]
        assert set(record["dynamodb"]["Keys"]) == {"tenant", "sequence"}
        assert json.loads(image["envelope"]["S"])["type"] == "group.created"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        json.dumps(record)  # as a Lambda event, all of it is JSON


def test_a_failing_function_gets_the_batch_again_then_it_is_skipped(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    from chalicelib.local.live import RETRY_ATTEMPTS

    # Given the events stream mapped to a function that always fails
    calls: list[int] = []

    def failing(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        raise RuntimeError("broken")

    with StreamPoller(EVENTS, failing, "broken") as poller:
        # When an event is written, and the stream polled more often than it is retried
        assert api.post("/api/groups", {"name": "Edge"}).status == 201
        polls = [poller.poll_once() for _ in range(RETRY_ATTEMPTS + 3)]

    # Then the batch was retried, then skipped: none was taken, nothing is left pending
    assert polls == [0] * (RETRY_ATTEMPTS + 3)
    assert len(calls) == RETRY_ATTEMPTS + 1
    assert not poller.pending()
    assert "skipping them" in caplog.text


# --- the management API ----------------------------------------------------------------------

def test_posting_to_an_unknown_connection_is_gone(connections: LocalConnections) -> None:
    from chalicelib.live import sender

    client = management_api()
    with pytest.raises(client.exceptions.GoneException) as raised:
        client.post_to_connection(ConnectionId="nobody=", Data=b"{}")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId="nobody=")
    assert sender.post(ENDPOINT, "nobody=", "{}") == "gone"


def test_a_post_is_delivered_and_deleting_closes_the_connection(
        connections: LocalConnections) -> None:
    from chalicelib.live import sender

    # Given an open connection
    frames: list[str] = []
    closed: list[bool] = []
    connections.open("abc=", frames.append, lambda: closed.append(True), source_ip="10.0.0.7")
    client = management_api()

    # When it is posted to, described, then deleted
    assert sender.post(ENDPOINT, "abc=", '{"type":"pong"}') == "sent"
    described = client.get_connection(ConnectionId="abc=")
    sender.close(ENDPOINT, "abc=")

    # Then it got the frame, then was closed, and is gone since
    assert frames == ['{"type":"pong"}']
    assert described["Identity"]["SourceIp"] == "10.0.0.7"
    assert closed == [True]
    assert "abc=" not in connections
    assert sender.post(ENDPOINT, "abc=", "{}") == "gone"
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId="abc=")


def test_a_message_over_the_limit_is_refused(connections: LocalConnections) -> None:
    connections.open("abc=", lambda frame: None, lambda: None)
    client = management_api()
    with pytest.raises(client.exceptions.PayloadTooLargeException):
        client.post_to_connection(ConnectionId="abc=", Data=b"x" * (128 * 1024 + 1))


def test_revoking_a_token_closes_its_connections(api: Api, hub: Hub) -> None:
    # Given a connection opened with a personal access token
    created = api.post("/api/api-tokens", {"name": "ci", "role": "Operator"})
    assert created.status == 201, created.body
    client = connected(hub, created.json["token"])

    # When the token is revoked
    assert api.post(f"/api/api-tokens/{created.json['id']}/revoke").status == 200

    # Then its connection is closed and forgotten
    assert client.closed
    assert client.connection_id not in hub.connections
    assert not stored(client.connection_id)


def test_a_connection_without_a_token_is_refused_and_nothing_is_kept(
        api: Api, hub: Hub) -> None:
    answer, client = connect(hub, None)

    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["status"] == 401
    assert client.connection_id not in hub.connections
    assert not stored(client.connection_id)


def test_a_connection_found_gone_by_the_fan_out_is_forgotten(
        api: Api, hub: Hub, stream: StreamPoller) -> None:
    # Given a follower whose socket went away without a $disconnect
    client = connected(hub, api.idp.token("Admin"))
    subscribe(hub, client, "group.*")
    hub.connections.close(client.connection_id)

    # When an event it follows is fanned out
    assert api.post("/api/groups", {"name": "Edge"}).status == 201
    stream.poll_once()

    # Then the connection is forgotten
    assert not stored(client.connection_id)


# --- over aiohttp ----------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def next_frame(ws: ClientConnection, *, events: bool = False) -> dict[str, Any]:
    """The next frame the server sends, parsed: the next event, or else the next control
    frame (events before it are skipped)."""
    while True:
        frame = dict(json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_SECONDS)))
        if ("specversion" in frame) == events:
            return frame


def test_a_websocket_over_the_local_gateway(api: Api, connections: LocalConnections,
                                            stream: StreamPoller, tmp_path: Path) -> None:
    from aiohttp.test_utils import TestServer

    import app
    from chalicelib.local import oidc
    from chalicelib.local.config import LocalConfig
    from chalicelib.local.gateway import Gateway, Worker

    config = LocalConfig(home=tmp_path, port=free_port())
    worker = Worker()
    gateway = Gateway(config, app.app, oidc.load_signing_key(tmp_path), worker,
                      connections=connections, websocket_path=HUB_PATH)
    url = f"ws://127.0.0.1:{config.port}{HUB_PATH}"
    admin = api.idp.token("Admin")

    async def scenario() -> None:
        server = TestServer(gateway.web_app(), host="127.0.0.1", port=config.port)
        await server.start_server()
        try:
            # A client with a token is admitted, subscribes and is acknowledged
            async with ws_connect(f"{url}?access_token={admin}") as ws:
                await ws.send(json.dumps({"type": "subscribe", "events": ["group.*"]}))
                ack = await next_frame(ws)
                assert ack == {"type": "ack", "of": "subscribe",
                               "subscription": {"events": ["group.*"], "filter": {}}}

                # and is sent what happens next, once the stream is read
                assert (await worker.run(lambda: api.post(
                    "/api/groups", {"name": "Edge"}))).status == 201
                assert await worker.run(stream.poll_once) >= 1
                while (event := await next_frame(ws, events=True))["data"]["name"] != "Edge":
                    pass
                assert event["type"] == "group.created"

                # a bad message is answered, and the connection stays open
                await ws.send("not json")
                assert (await next_frame(ws))["type"] == "error"
                await ws.send(json.dumps({"type": "ping"}))
                assert (await next_frame(ws))["type"] == "pong"

            # A client without a token is refused with 401 before the upgrade
            with pytest.raises(InvalidStatus) as refused:
                async with ws_connect(url):
                    pass
            assert refused.value.response.status_code == 401
            assert json.loads(refused.value.response.body or b"{}")["status"] == 401

            # A connection whose token is revoked is closed by the server
            created = await worker.run(lambda: api.post(
                "/api/api-tokens", {"name": "ci", "role": "Operator"}))
            async with ws_connect(f"{url}?access_token={created.json['token']}") as ws:
                await worker.run(lambda: api.post(
                    f"/api/api-tokens/{created.json['id']}/revoke"))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), DEADLINE_SECONDS)
        finally:
            await server.close()

    try:
        asyncio.run(scenario())
    finally:
        worker.shutdown()
    # every socket got its $disconnect: none is left open or stored
    from chalicelib.live.models import ConnectionItem

    assert list(ConnectionItem.scan()) == []
