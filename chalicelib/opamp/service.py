"""The OpAMP endpoint's use case: authenticate the agent, record its message, answer it.

Every request is one ``AgentToServer``; every answer one ``ServerToAgent`` (or,
when no protobuf answer can be addressed, an ``application/problem+json``).
Authentication is a bootstrap token (``Authorization: Bearer``), redeemed by the
enrollment room, or a client certificate Ampora issued, identified by the
certificates room and checked against the agent item (serial, revocation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.agents import service as agents
from chalicelib.agents.capabilities import ACCEPTS_OPAMP_CONNECTION_SETTINGS, has
from chalicelib.core.deps import deps
from chalicelib.core.lazy import LazyModule
from chalicelib.core.observability import logger
from chalicelib.core.problems import (
    AmporaError,
    BadRequest,
    InvalidToken,
    ServiceUnavailable,
    Unauthorized,
)
from chalicelib.core.settings import settings
from chalicelib.opamp import codec

_enrollment = LazyModule("chalicelib.enrollment.service")
_certificates = LazyModule("chalicelib.certificates.service")

PROTOBUF = "application/x-protobuf"
#: Seconds an agent is asked to wait when Ampora cannot serve it right now.
RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True)
class AgentRequest:
    """What the endpoint needs from the HTTP request."""

    body: bytes
    authorization: str | None = None
    client_cert_pem: str | None = None


@dataclass
class Answer:
    """A protobuf answer (a problem is raised as an :class:`AmporaError` instead)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": PROTOBUF})


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <bootstrap token>' or a client certificate",
                           error="invalid_request")
    return token.strip()


def _credential(request: AgentRequest, agent_id: str) -> tuple[str, Any]:
    """The agent's tenant and verified credential."""
    if request.client_cert_pem:
        tenant, certified_id, serial = _certificates.identify(request.client_cert_pem)
        if certified_id != agent_id:
            raise InvalidToken("the client certificate names another agent")
        return tenant, agents.ClientCertificate(serial=serial)
    token = _bearer(request.authorization)
    if token is None:
        raise Unauthorized("an agent must present a bootstrap token or a client certificate")
    tenant, token_id = _enrollment.identify(token)

    def redeem() -> agents.Enrollment:
        grant = _enrollment.redeem(token, agent_id)
        return agents.Enrollment(token_id=grant.token_id, group_id=grant.group_id,
                                 labels=dict(grant.labels), expires_at=grant.expires_at)

    return tenant, agents.BootstrapToken(token_id=token_id, redeem=redeem)


def _require_credentials(request: AgentRequest) -> None:
    if not request.client_cert_pem and _bearer(request.authorization) is None:
        raise Unauthorized("an agent must present a bootstrap token or a client certificate")


def _read(body: bytes) -> codec.Message | Answer:
    """The message, or the error answer for a body that cannot be one."""
    limit = settings().max_body_bytes
    if len(body) > limit:
        uid = codec.peek_instance_uid(body[:4096])
        detail = f"the message exceeds {limit} bytes"
        if uid is None:
            raise AmporaError(detail, slug="payload-too-large")
        return Answer(codec.answer_error(uid, detail))
    try:
        message = codec.read(body)
    except codec.Unreadable as exc:
        uid = codec.peek_instance_uid(body)
        if uid is None:
            raise BadRequest("the body is not an OpAMP AgentToServer message") from exc
        return Answer(codec.answer_error(uid, "the body is not a valid AgentToServer message"))
    if not message.instance_uid:
        raise BadRequest("the AgentToServer message has no instance_uid")
    if len(message.instance_uid) != codec.UID_BYTES:
        return Answer(codec.answer_error(message.instance_uid, "instance_uid must be 16 bytes"))
    return message


def _offer(issued: Any, interval: int) -> codec.Offer:
    return codec.Offer(heartbeat_interval_seconds=interval, cert_pem=issued.cert_pem,
                       ca_pem=issued.ca_pem, private_key_pem=issued.private_key_pem or b"")


def _certificate_offer(tenant: str, agent_id: str, csr: bytes, checked: agents.CheckIn
                       ) -> codec.Offer | str:
    """The offer of a freshly signed certificate, or why the CSR was refused."""
    try:
        issued = _certificates.sign_csr(tenant, agent_id, csr,
                                        presented=checked.presented_serial)
    except AmporaError as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return exc.detail
    return _offer(issued, checked.interval)


def _renewal_offer(tenant: str, agent_id: str, checked: agents.CheckIn) -> codec.Offer | None:
    """A new certificate and key when the agent's leaf is due and it can take one.

    Only for an agent that talks with its leaf and accepts OpAMP connection settings; costs
    nothing (no I/O) when the leaf is not due.
    """
    not_after = checked.presented_not_after
    if (not_after is None
            or not has(checked.capabilities, ACCEPTS_OPAMP_CONNECTION_SETTINGS)
            or not _certificates.needs_renewal(not_after, deps().clock.now())):
        return None
    issued = _certificates.issue_with_key(tenant, agent_id, presented=checked.presented_serial)
    return _offer(issued, checked.interval)


def _remote_config(content: Any) -> codec.RemoteConfig | None:
    if content is None:
        return None
    return codec.RemoteConfig(file_name=content.file_name, content_type=content.content_type,
                              body=content.body, config_hash=content.config_hash)


def _process(request: AgentRequest, message: codec.Message) -> Answer:
    uid = message.instance_uid
    agent_id = uid.hex()
    tenant, credential = _credential(request, agent_id)
    checked = agents.check_in(tenant, agent_id, message.observation, credential)
    offer: codec.Offer | None = None
    if checked.offer_settings:
        offer = codec.Offer(heartbeat_interval_seconds=checked.interval)
    if message.csr is not None:
        signed = _certificate_offer(tenant, agent_id, message.csr, checked)
        if isinstance(signed, str):
            return Answer(codec.answer_error(uid, f"certificate request refused: {signed}"))
        offer = signed
    else:
        offer = _renewal_offer(tenant, agent_id, checked) or offer
    return Answer(codec.answer(uid, full_state=checked.full_state, offer=offer,
                               remote_config=_remote_config(checked.remote_config)))


def _new_identity(message: codec.Message) -> Answer:
    new_uid = bytes.fromhex(deps().new_id())
    return Answer(codec.answer(message.instance_uid, new_instance_uid=new_uid))


def serve(request: AgentRequest) -> Answer:
    """Answer one agent request; raises an :class:`AmporaError` when a problem must answer."""
    _require_credentials(request)
    message = _read(request.body)
    if isinstance(message, Answer):
        return message
    if message.flags & codec.REQUEST_INSTANCE_UID:
        return _new_identity(message)
    try:
        return _process(request, message)
    except AmporaError as error:
        if isinstance(error, ServiceUnavailable):
            return Answer(codec.answer_error(message.instance_uid, error.detail,
                                             retry_after_seconds=RETRY_AFTER_SECONDS))
        raise
    except Exception:  # noqa: BLE001 - an agent gets "retry later", never a stack trace
        logger.exception("OpAMP message could not be processed")
        return Answer(codec.answer_error(message.instance_uid, "Ampora could not process the "
                                         "message; retry later",
                                         retry_after_seconds=RETRY_AFTER_SECONDS))


__all__ = ["AgentRequest", "Answer", "serve"]
