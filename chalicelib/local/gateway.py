"""The local API Gateway: HTTP on 127.0.0.1, each request an API Gateway event for the app.

The same routes answer on the HTTPS port with mutual TLS (:mod:`chalicelib.local.mtls`),
where a verified client certificate reaches the handler as API Gateway's
``requestContext.identity.clientCert``.

It also serves what API Gateway and the IdP would in AWS but the app does
not: the local OIDC issuer (discovery and JWKS) and, in local mode only,
Swagger UI. Handler calls run one at a time on worker threads (moto is not
thread-safe) so the event loop stays free, e.g. to answer the app's own JWKS
fetch while it verifies a token.

Given a :class:`~chalicelib.local.live.LocalConnections`, it is also the app's websocket API
on the same port, as API Gateway's would be: an upgrade is the app's ``$connect``, which
decides whether the socket opens; each message is a ``$default``; closing is
``$disconnect``. What the functions post to a connection through the management API
reaches its socket (:mod:`chalicelib.local.live`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict

from chalicelib.local import live, oidc, swagger
from chalicelib.local.config import OIDC_PREFIX, LocalConfig
from chalicelib.local.events import HttpRequest, Invocation, build_event, to_http_response
from chalicelib.local.mtls import client_cert_context, peer_certificate
from chalicelib.local.routing import Match, RouteTable

#: API Gateway's own limit on a request payload.
MAX_REQUEST_BYTES = 10 * 1024 * 1024


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    aws_request_id: str
    function_name: str = "ampora-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ampora-local"
    log_group_name: str = "/aws/lambda/ampora-local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Local calls have no deadline; report Lambda's maximum."""
        return 900_000


class Worker:
    """Runs blocking calls on worker threads, one at a time (moto is not thread-safe)."""

    def __init__(self, threads: int = 4) -> None:
        self.lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lambda")

    def _locked(self, call: Callable[[], Any]) -> Any:
        with self.lock:
            return call()

    async def run(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` on a worker thread under the lock, without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._locked, call)

    def shutdown(self) -> None:
        """Finish the calls in flight and stop the threads."""
        self._pool.shutdown(wait=True)


class Gateway:
    """Routes HTTP requests to the Chalice app as API Gateway proxy events."""

    def __init__(self, config: LocalConfig, chalice_app: Any, key: oidc.SigningKey,
                 worker: Worker, on_call: Callable[[], None] = lambda: None, *,
                 connections: live.LocalConnections | None = None,
                 websocket_path: str | None = None) -> None:
        self.config = config
        self.chalice_app = chalice_app
        self.key = key
        self.worker = worker
        self.on_call = on_call
        self.routes = RouteTable({path: methods.keys()
                                  for path, methods in chalice_app.routes.items()})
        self.hub = None if connections is None else live.Hub(chalice_app, connections)
        self.websocket_path = websocket_path
        self._sockets: set[web.WebSocketResponse] = set()
        self._closing: set[asyncio.Future[None]] = set()

    def web_app(self) -> web.Application:
        """The aiohttp application: OIDC issuer, Swagger UI, then everything else to the app."""
        application = web.Application(client_max_size=MAX_REQUEST_BYTES)
        application.router.add_get(f"{OIDC_PREFIX}/.well-known/openid-configuration",
                                    self.discovery)
        application.router.add_get(f"{OIDC_PREFIX}/jwks.json", self.jwks)
        assets = swagger.assets_dir()
        if assets is not None:
            application.router.add_get("/swagger", self.swagger_page)
            application.router.add_get("/swagger/", self.swagger_page)
            application.router.add_static(swagger.ASSETS_PREFIX, assets)
        if self.hub is not None and self.websocket_path and self.chalice_app.websocket_handlers:
            application.router.add_get(self.websocket_path, self.websocket)
            application.on_shutdown.append(self._close_sockets)
            application.on_cleanup.append(self._disconnected)
        application.router.add_route("*", "/{tail:.*}", self.proxy)
        return application

    async def discovery(self, _: web.Request) -> web.Response:
        """The local issuer's OpenID Provider metadata."""
        return web.json_response(oidc.discovery_document(self.config.authority))

    async def jwks(self, _: web.Request) -> web.Response:
        """The local issuer's public keys."""
        return web.json_response(oidc.jwks(self.key))

    async def swagger_page(self, _: web.Request) -> web.Response:
        """Swagger UI over ``/api/openapi.json``."""
        return web.Response(text=swagger.page(), content_type="text/html")

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Any other request: route it as API Gateway would and invoke the app."""
        incoming = await _incoming(request)
        request_id = str(uuid.uuid4())
        match = self.routes.resolve(incoming.path)
        if match is None:
            result = await self._problem(incoming.path, "not-found",
                                         f"no route matches {incoming.path}")
        elif incoming.method not in match.methods:
            allow = ", ".join(sorted(match.methods))
            result = await self._problem(
                incoming.path, "method-not-allowed",
                f"{incoming.method} is not allowed on {match.template}; allowed: {allow}",
                headers={"Allow": allow})
        else:
            result = await self._invoke(incoming, match, request_id,
                                        peer_certificate(request.transport))
        return _web_response(result, request_id)

    async def _invoke(self, incoming: HttpRequest, match: Match, request_id: str,
                      tls: tuple[bool, bytes | None] = (False, None)) -> dict[str, Any]:
        secure, client_der = tls
        port = self.config.mtls_port if secure else self.config.port
        invocation = Invocation(
            request_id=request_id, epoch_ms=time.time_ns() // 1_000_000,
            host=f"127.0.0.1:{port}", port=port, scheme="https" if secure else "http",
            client_cert=client_cert_context(client_der) if client_der else None,
            binary_types=tuple(self.chalice_app.api.binary_types))
        event = build_event(incoming, match, invocation)
        context = LambdaContext(aws_request_id=str(uuid.uuid4()))
        result: dict[str, Any] = await self._call(lambda: self.chalice_app(event, context))
        return result

    async def _call(self, call: Callable[[], Any]) -> Any:
        """Run a handler call on the worker (under its lock), then note a possible change."""
        try:
            return await self.worker.run(call)
        finally:
            self.on_call()

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """A websocket client: opened if ``$connect`` answers 2xx (else refused with its
        answer), each message a ``$default``, ``$disconnect`` once it is closed."""
        assert self.hub is not None
        hub = self.hub
        socket = web.WebSocketResponse(max_msg_size=live.MAX_MESSAGE_BYTES)
        if not socket.can_prepare(request).ok:
            return web.Response(status=426, headers={"Upgrade": "websocket"},
                                text="a websocket endpoint: connect with Upgrade: websocket\n")
        client = live.Socket(await _incoming(request), host=f"127.0.0.1:{self.config.port}",
                             port=self.config.port)
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[str | None] = asyncio.Queue()

        def deliver(frame: str | None) -> None:  # from any thread; None closes
            loop.call_soon_threadsafe(outbox.put_nowait, frame)

        request_id = live.new_id()
        answer = await self._call(
            lambda: hub.connect(client, deliver, lambda: deliver(None), request_id))
        if not live.accepted(answer):
            return _web_response(answer, request_id)
        self._sockets.add(socket)
        writer: asyncio.Task[None] | None = None
        try:
            await socket.prepare(request)
            writer = asyncio.create_task(_send_frames(socket, outbox))
            async for message in socket:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    error = await self._call(partial(hub.message, client, message.data))
                    if error is not None:
                        outbox.put_nowait(error)
        finally:
            self._sockets.discard(socket)
            # the handler is cancelled if the client vanishes (or the server cancels handlers):
            # its $disconnect runs all the same, as on API Gateway
            closing = asyncio.ensure_future(
                self._closed(hub, client, socket.close_code, writer))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            await asyncio.shield(closing)
        return socket

    async def _closed(self, hub: live.Hub, client: live.Socket, code: int | None,
                      writer: asyncio.Task[None] | None) -> None:
        """A socket closed: ``$disconnect``, then the frames posted before it are sent."""
        await self._call(lambda: hub.disconnect(client, code))
        if writer is not None:
            await writer

    async def _close_sockets(self, _: web.Application) -> None:
        """At shutdown: close every socket (each then gets its ``$disconnect``)."""
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _disconnected(self, _: web.Application) -> None:
        """At cleanup: wait for the sockets' ``$disconnect``."""
        await asyncio.gather(*self._closing)

    async def _problem(self, path: str, slug: str, detail: str,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
        from chalicelib.core.http import problem_response
        from chalicelib.core.problems import AmporaError

        error = AmporaError(detail, slug=slug, headers=headers)
        return dict(problem_response(error, instance=path).to_dict())


async def _incoming(request: web.Request) -> HttpRequest:
    """The gateway's view of an aiohttp request (raw header names, wire order)."""
    raw_path = request.raw_path.split("?", 1)[0]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    return HttpRequest(method=request.method, path=raw_path, query=list(request.query.items()),
                       headers=headers, body=await request.read(),
                       source_ip=request.remote or "127.0.0.1")


async def _send_frames(socket: web.WebSocketResponse, outbox: asyncio.Queue[str | None]
                       ) -> None:
    """Send what is posted to a connection, in order, until it is closed (None)."""
    while (frame := await outbox.get()) is not None:
        try:
            await socket.send_str(frame)
        except ConnectionError:
            break
    await socket.close()


def _web_response(result: dict[str, Any], request_id: str) -> web.Response:
    reply = to_http_response(result)
    headers = CIMultiDict(reply.headers)
    headers["x-amzn-RequestId"] = request_id
    return web.Response(status=reply.status, body=reply.body, headers=headers)
