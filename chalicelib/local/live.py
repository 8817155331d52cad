"""The local stack's live-updates hub: API Gateway's websocket API, its ``@connections``
management API, and the events table's stream driving the fan-out function, on moto.

* Websocket routes: a :class:`Socket` builds the API Gateway websocket events of its
  ``$connect``, ``$default`` and ``$disconnect``, and a :class:`Hub` invokes the app's
  function for each as Lambda would (the handler string Chalice deploys it under). The local
  gateway (:mod:`chalicelib.local.gateway`) serves the sockets; tests use a hub directly.
* ``@connections``: :class:`LocalConnections` holds the open connections, each a callable
  that delivers a text frame and one that closes it (a socket on the gateway's loop, or a
  test's list). Installed, it makes moto answer the management API at the local endpoint
  (``http://127.0.0.1:<port>/<stage>``, which moto would not intercept at all):
  ``PostToConnection`` delivers, ``DeleteConnection`` closes, ``GetConnection`` describes,
  and a connection that is not open is ``GoneException`` (410), as on AWS.
* The stream: a :class:`StreamPoller` reads a table's DynamoDB stream from where it stood
  when it started (``LATEST``) and invokes a function with batches of up to 100 records, in
  order, in Lambda's DynamoDB event shape, as an event source mapping does.

Product code never imports this module: it calls boto3, and this module decides what answers.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import logging
import os
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import ParseResult, unquote, urlparse

import boto3
from botocore.config import Config

from chalicelib.local.events import (
    HttpRequest,
    Invocation,
    gateway_headers,
    request_time,
    single_and_multi,
)
from chalicelib.local.patches import Installed, Patches
from chalicelib.local.stepfunctions import Handler, LambdaContext
from chalicelib.local.tables import encode_item

#: API Gateway's largest websocket message (a client's, or one posted to a connection).
MAX_MESSAGE_BYTES = 128 * 1024
#: What an event source mapping passes a function at most at once (DynamoDB's default).
BATCH_SIZE = 100
#: Retries of a failing batch before it is skipped (infra/live.py maps the stream so).
RETRY_ATTEMPTS = 3
#: The body API Gateway answers with when a route's function fails.
INTERNAL_ERROR = "Internal server error"
#: moto's account, where the functions run.
DEFAULT_ACCOUNT = "123456789012"
ROUTE_EVENT_TYPES = {"$connect": "CONNECT", "$default": "MESSAGE", "$disconnect": "DISCONNECT"}
log = logging.getLogger("ampora.local.live")

_ID_ALPHABET = string.ascii_letters + string.digits
#: A management API call the local stack answers: loopback host, ``/<stage>/@connections/<id>``.
_LOCAL_MANAGEMENT_URL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/[^?]+/@connections/")


def new_id() -> str:
    """An id in API Gateway's style (connection, request and message ids): ``SvgzldKXIAMCKsA=``."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def epoch_ms() -> int:
    """Now, in milliseconds since the epoch (API Gateway's ``connectedAt`` and request times)."""
    return time.time_ns() // 1_000_000


def lambda_handler(handler_string: str) -> Handler:
    """What the Lambda runtime runs for a handler string ``package.module.attribute``."""
    module, _, name = handler_string.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


def _context(function_name: str, region: str | None = None,
             account: str = DEFAULT_ACCOUNT) -> LambdaContext:
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
        or "us-east-1"
    return LambdaContext(function_name,
                         f"arn:aws:lambda:{region}:{account}:function:{function_name}")


def function_handler(app: Any, name: str) -> Handler:
    """The function a Chalice app deploys as ``@lambda_function(name=name)``."""
    for function in app.pure_lambda_functions:
        if function.name == name:
            return lambda_handler(function.handler_string)
    raise KeyError(f"the app has no Lambda function named {name!r}")


def events_stream(app: Any) -> StreamPoller:
    """The events table's stream mapped to the live-updates fan-out function, as infra maps
    them (not started)."""
    from chalicelib.core.events import EventRecord
    from chalicelib.live.routes import FAN_OUT

    return StreamPoller(EventRecord.Meta.table_name, function_handler(app, FAN_OUT), FAN_OUT)


def accepted(answer: Mapping[str, Any]) -> bool:
    """Whether a ``$connect`` function's answer lets the connection open (a 2xx status)."""
    return 200 <= int(answer.get("statusCode", 200)) < 300


@dataclass(frozen=True)
class Socket:
    """One websocket connection as API Gateway describes it to each route's function.

    ``upgrade`` is the client's upgrade request; ``host`` is ``127.0.0.1:<port>``, the
    ``domainName`` the functions build the management API's endpoint from.
    """

    upgrade: HttpRequest
    host: str
    port: int
    connection_id: str = field(default_factory=new_id)
    connected_at: int = field(default_factory=epoch_ms)
    stage: str = "local"
    api_id: str = "local"

    @property
    def user_agent(self) -> str:
        """The client's ``User-Agent`` (empty if it sent none)."""
        return next((value for name, value in self.upgrade.headers
                     if name.lower() == "user-agent"), "")

    def connect_event(self, request_id: str, at_ms: int) -> dict[str, Any]:
        """The ``$connect`` event: the upgrade request's headers and query string."""
        invocation = Invocation(request_id=request_id, epoch_ms=at_ms, stage=self.stage,
                                host=self.host, port=self.port, api_id=self.api_id)
        headers, multi_headers = single_and_multi(gateway_headers(self.upgrade, invocation))
        query, multi_query = single_and_multi(self.upgrade.query)
        return {"headers": headers, "multiValueHeaders": multi_headers,
                "queryStringParameters": query, "multiValueQueryStringParameters": multi_query,
                **self._common("$connect", request_id, at_ms)}

    def message_event(self, data: str | bytes, request_id: str, at_ms: int) -> dict[str, Any]:
        """The ``$default`` event of one message (a binary one base64-encoded)."""
        event = self._common("$default", request_id, at_ms, messageId=new_id())
        if isinstance(data, bytes):
            event.update(body=base64.b64encode(data).decode("ascii"), isBase64Encoded=True)
        else:
            event["body"] = data
        return event

    def disconnect_event(self, code: int | None, request_id: str, at_ms: int
                         ) -> dict[str, Any]:
        """The ``$disconnect`` event, with the close frame's status (None: the client sent
        none)."""
        headers = {"Host": self.host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
        reason = "" if code is not None else "Client-side close frame status not set"
        return {"headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
                **self._common("$disconnect", request_id, at_ms,
                               disconnectStatusCode=1005 if code is None else code,
                               disconnectReason=reason)}

    def _common(self, route_key: str, request_id: str, at_ms: int,
                **context: Any) -> dict[str, Any]:
        return {
            "requestContext": {
                "routeKey": route_key, "eventType": ROUTE_EVENT_TYPES[route_key],
                "extendedRequestId": request_id, "requestTime": request_time(at_ms),
                "messageDirection": "IN", "stage": self.stage, "connectedAt": self.connected_at,
                "requestTimeEpoch": at_ms,
                "identity": {"sourceIp": self.upgrade.source_ip, "userAgent": self.user_agent},
                "requestId": request_id, "domainName": self.host,
                "connectionId": self.connection_id, "apiId": self.api_id, **context,
            },
            "isBase64Encoded": False,
        }


class Hub:
    """A Chalice app's websocket routes run as API Gateway runs them, its connections held by
    a :class:`LocalConnections`. Call each method under the stack's lock (moto is not
    thread-safe); ``deliver`` and ``close`` may then be called from any thread."""

    def __init__(self, app: Any, connections: LocalConnections) -> None:
        self.app = app
        self.connections = connections

    def connect(self, socket: Socket, deliver: Callable[[str], None],
                close: Callable[[], None], request_id: str | None = None) -> dict[str, Any]:
        """``$connect``: the function's answer. A 2xx opens the connection (frames posted to
        it reach ``deliver``, deleting it calls ``close``); a failed function is a 500."""
        answer = self._invoke("$connect", socket.connect_event(request_id or new_id(),
                                                               epoch_ms()))
        if answer is None:
            return {"statusCode": 500, "body": json.dumps({"message": INTERNAL_ERROR})}
        if accepted(answer):
            self.connections.open(socket.connection_id, deliver, close,
                                  source_ip=socket.upgrade.source_ip,
                                  user_agent=socket.user_agent)
        return answer

    def message(self, socket: Socket, data: str | bytes) -> str | None:
        """``$default`` for one client message: None, or the frame API Gateway sends back
        when the function failed (the function's answer is not sent: no route response)."""
        request_id = new_id()
        if self._invoke("$default", socket.message_event(data, request_id, epoch_ms())) is None:
            return json.dumps({"message": INTERNAL_ERROR, "connectionId": socket.connection_id,
                               "requestId": request_id})
        return None

    def disconnect(self, socket: Socket, code: int | None) -> None:
        """The socket closed (``code``: its close status, None if it sent none): it is gone for
        posts, then ``$disconnect``."""
        self.connections.close(socket.connection_id)
        self._invoke("$disconnect", socket.disconnect_event(code, new_id(), epoch_ms()))

    def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any] | None:
        """The route's function's answer (a route the app lacks answers 200), or None if it
        failed (logged)."""
        config = self.app.websocket_handlers.get(route_key)
        if config is None:
            return {"statusCode": 200}
        try:
            answer = lambda_handler(config.handler_string)(event, _context(config.name))
        except Exception:
            log.exception("the %s function failed", route_key)
            return None
        return dict(answer) if isinstance(answer, dict) else {"statusCode": 200}


@dataclass
class _Open:
    deliver: Callable[[str], None]
    close: Callable[[], None]
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)


_management_patches: Patches[LocalConnections] = Patches(lambda: _patch_management_api())


def _installed() -> LocalConnections | None:
    return _management_patches.owner


class LocalConnections(Installed):
    """The open websocket connections, by connection id, as the management API reaches them.

    Thread-safe: functions post from worker threads. ``deliver`` and ``close`` are called on
    the poster's thread; a socket's hand them to its own event loop. Install it (or use it as
    a context manager) inside an active moto mock; one instance is installed at a time.
    """

    patches = _management_patches

    def __init__(self, region: str | None = None) -> None:
        self.region = region or boto3.session.Session().region_name or "us-east-1"
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def open(self, connection_id: str, deliver: Callable[[str], None],
             close: Callable[[], None], *, source_ip: str = "127.0.0.1",
             user_agent: str = "") -> None:
        """A connection opened: frames posted to it go to ``deliver``; deleting it calls
        ``close``."""
        with self._lock:
            self._open[connection_id] = _Open(deliver, close, source_ip, user_agent)

    def close(self, connection_id: str) -> bool:
        """Close a connection and forget it (posts to it are gone from now on); whether it
        was open."""
        with self._lock:
            found = self._open.pop(connection_id, None)
        if found is None:
            return False
        found.close()
        return True

    def post(self, connection_id: str, text: str) -> bool:
        """Deliver a text frame; whether the connection is open."""
        with self._lock:
            found = self._open.get(connection_id)
        if found is None:
            return False
        found.deliver(text)
        return True

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        """``GetConnection``'s answer (None: not open)."""
        with self._lock:
            found = self._open.get(connection_id)
        if found is None:
            return None
        return {"connected_at": found.connected_at, "source_ip": found.source_ip,
                "user_agent": found.user_agent}

    def __contains__(self, connection_id: object) -> bool:
        with self._lock:
            return connection_id in self._open


def _patch_management_api() -> None:
    """The management API at a loopback endpoint reaches moto, whose backend answers from the
    installed :class:`LocalConnections`."""
    from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend, Connection
    from moto.core import botocore_stubber
    from moto.core.exceptions import JsonRESTError

    class GoneException(JsonRESTError):
        code = 410

        def __init__(self, connection_id: str) -> None:
            super().__init__("GoneException", f"connection {connection_id} is gone")

    class PayloadTooLargeException(JsonRESTError):
        code = 413

        def __init__(self, size: int) -> None:
            super().__init__("PayloadTooLargeException",
                             f"{size} bytes is over the {MAX_MESSAGE_BYTES} byte limit")

    def equivalent_url(url: str) -> tuple[ParseResult, bool]:
        found = _installed()
        if found is None or not _LOCAL_MANAGEMENT_URL.match(url):
            return aws_url(url)
        host = f"local.execute-api.{found.region}.amazonaws.com"
        return urlparse(url)._replace(scheme="https", netloc=host), True

    def registry() -> LocalConnections:
        found = _installed()
        if found is None:
            raise RuntimeError("no LocalConnections is installed")
        return found

    def post_to_connection(self: Any, data: bytes, connection_id: str) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeException(len(data))
        text = bytes(data).decode("utf-8", errors="replace")
        if not registry().post(unquote(connection_id), text):
            raise GoneException(unquote(connection_id))

    def delete_connection(self: Any, connection_id: str) -> None:
        if not registry().close(unquote(connection_id)):
            raise GoneException(unquote(connection_id))

    def get_connection(self: Any, connection_id: str) -> Any:
        found = registry().describe(unquote(connection_id))
        if found is None:
            raise GoneException(unquote(connection_id))
        connection = Connection()
        connection.connected_at = found["connected_at"]
        connection.source_ip = found["source_ip"]
        connection.user_agent = found["user_agent"]
        return connection

    aws_url = _management_patches.replace(botocore_stubber, "get_equivalent_url_in_aws_domain",
                                          equivalent_url)
    for name, method in (("post_to_connection", post_to_connection),
                         ("delete_connection", delete_connection),
                         ("get_connection", get_connection)):
        _management_patches.replace(ApiGatewayManagementApiBackend, name, method)


# The stream ---------------------------------------------------------------------------------

_stream_patches: Patches[None] = Patches(lambda: _patch_streams())
_polling_lock = threading.Lock()
#: Records added to each table's stream (the poller reads the stream only after a change).
_stream_writes: Counter[str] = Counter()
_polling = 0


def _patch_streams() -> None:
    """Count the records added to each stream; a cancelled transaction leaves none behind.

    DynamoDB streams record only committed writes. moto writes a transaction's items one
    by one, then undoes them if it is cancelled: by restoring a copy of each table (its stream
    with it), or item by item (:mod:`chalicelib.local.transactions`, whose undo adds records
    of its own). Either way the stream is cut back to where it stood before the transaction.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    def add(self: Any, old: Any, new: Any) -> None:
        add_record(self, old, new)
        _stream_writes[self.table.name] += 1

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        lengths = {name: len(table.stream_shard.items) for name, table in self.tables.items()
                   if table.stream_shard is not None}
        try:
            transact(self, transact_items)
        except Exception:
            for name, length in lengths.items():
                shard = getattr(self.tables.get(name), "stream_shard", None)
                if shard is not None:
                    del shard.items[length:]
            raise

    add_record = _stream_patches.replace(StreamShard, "add", add)
    transact = _stream_patches.replace(DynamoDBBackend, "transact_write_items",
                                       transact_write_items)


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A stream record as ``GetRecords`` gives it (through boto3), as Lambda's DynamoDB
    event carries it: images in DynamoDB JSON with binary values in base64, the creation time
    in epoch seconds, the region and the stream's ARN."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    for image in ("Keys", "NewImage", "OldImage"):
        if image in dynamodb:
            dynamodb[image] = encode_item(dynamodb[image])
    return {"eventID": record["eventID"], "eventName": record["eventName"],
            "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": stream_arn.split(":")[3], "dynamodb": dynamodb,
            "eventSourceARN": stream_arn}


class StreamPoller:
    """A Lambda event source mapping from a table's DynamoDB stream to a function.

    :meth:`start` (or entering it as a context manager) begins at ``LATEST``: what the
    stream holds then is never delivered.
    Each :meth:`poll_once` (under the caller's lock: moto is not thread-safe) invokes the
    function with every record added since, in batches of up to :data:`BATCH_SIZE`, in order,
    as ``{"Records": [...]}``. A batch whose function fails is invoked again at the next poll,
    and skipped (logged) after :data:`RETRY_ATTEMPTS` retries, as infra maps the stream (which
    also splits a failing batch in two first: locally it is retried and skipped whole).
    """

    def __init__(self, table_name: str, function: Handler, function_name: str, *,
                 batch_size: int = BATCH_SIZE, region: str | None = None) -> None:
        self.table_name = table_name
        self.function = function
        self.function_name = function_name
        self.batch_size = batch_size
        self.region = region or boto3.session.Session().region_name or "us-east-1"
        self.stream_arn = ""
        self._streams: Any = None
        self._shard = ""
        self._after: str | None = None  # the last sequence number consumed
        self._seen = -1
        self._failed = 0

    def __enter__(self) -> StreamPoller:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Follow the stream from its end as it is now."""
        global _polling
        dynamodb = boto3.client("dynamodb", region_name=self.region)
        table = dynamodb.describe_table(TableName=self.table_name)["Table"]
        if "LatestStreamArn" not in table:
            raise ValueError(f"table {self.table_name} has no stream")
        self.stream_arn = table["LatestStreamArn"]
        # botocore addresses DynamoDB Streams by account (``<account>.streams-ddb...``) when a
        # call names a stream ARN; moto 5.2.5 answers only at the regional endpoint
        self._streams = boto3.client("dynamodbstreams", region_name=self.region,
                                     config=Config(account_id_endpoint_mode="disabled"))
        shards = self._streams.describe_stream(
            StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        self._shard = shards[0]["ShardId"]
        with _polling_lock:
            if not _stream_patches.active:
                _patch_streams()
            _polling += 1
        for batch in self._batches():
            self._after = batch[-1]["dynamodb"]["SequenceNumber"]
        self._seen = _stream_writes[self.table_name]

    def stop(self) -> None:
        """Stop following (moto's streams behave as moto's again once no poller runs)."""
        global _polling
        if self._streams is None:
            return
        self._streams = None
        with _polling_lock:
            _polling -= 1
            if _polling == 0:
                _stream_patches.restore()

    def pending(self) -> bool:
        """Whether a poll may find something: records were added, or a batch failed."""
        return self._failed > 0 or _stream_writes[self.table_name] != self._seen

    def poll_once(self) -> int:
        """Invoke the function with what was added since the last poll; how many records it
        was given successfully."""
        if not self.pending():
            return 0
        self._seen = _stream_writes[self.table_name]
        delivered = 0
        for batch in self._batches():
            if self._invoke(batch):
                delivered += len(batch)
            elif self._failed:
                return delivered  # the same batch again at the next poll
            self._after = batch[-1]["dynamodb"]["SequenceNumber"]
        return delivered

    async def follow(self, run: Callable[[Callable[[], int]], Awaitable[int]], interval: float,
                     after: Callable[[], None] = lambda: None) -> None:
        """Poll every ``interval`` seconds through ``run`` (the stack's locked worker) when
        something may be pending, calling ``after`` after each poll."""
        while True:
            await asyncio.sleep(interval)
            if not self.pending():
                continue
            try:
                await run(self.poll_once)
            except Exception:
                log.exception("could not read the stream of %s", self.table_name)
            finally:
                after()

    def _batches(self) -> Iterable[list[dict[str, Any]]]:
        streams = self._streams
        position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if self._after is not None:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": self._after}
        iterator = streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=self._shard,
                                              **position)["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            if not page["Records"]:
                return
            yield page["Records"]
            iterator = page.get("NextShardIterator")

    def _invoke(self, batch: list[dict[str, Any]]) -> bool:
        """Whether the function took the batch; if not, it is retried while ``_failed``."""
        event = {"Records": [lambda_record(record, self.stream_arn) for record in batch]}
        context = _context(self.function_name, self.region, self.stream_arn.split(":")[4])
        try:
            self.function(event, context)
        except Exception:
            self._failed += 1
            skipped = self._failed > RETRY_ATTEMPTS
            log.exception("%s failed on %d stream record(s) (attempt %d)%s", self.function_name,
                          len(batch), self._failed, "; skipping them" if skipped else "")
            if skipped:
                self._failed = 0
            return False
        self._failed = 0
        return True
