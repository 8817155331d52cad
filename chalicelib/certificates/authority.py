"""The tenants' certificate authorities: made on first use, kept in Secrets Manager, cached.

Each tenant's CA (EC P-256 key and self-signed certificate) is one secret,
``ampora/<stage>/ca/<tenant>``. Creation is conditional (CreateSecret fails if the
name exists), so two first uses racing in two processes end with one CA: the
loser reads the winner's. The key is never logged and never leaves this module
except to sign.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.certificates import x509 as pki
from chalicelib.core.deps import deps
from chalicelib.core.observability import logger
from chalicelib.core.problems import ServiceUnavailable
from chalicelib.core.settings import settings

SECRET_FORMAT = 1
#: Told of every CA this process learns: (tenant, CA certificate PEM, created here?).
Listener = Callable[[str, bytes, bool], None]
_listeners: list[Listener] = []


@dataclass(frozen=True)
class Authority:
    """One tenant's CA: its certificate (public) and its key (never returned by any API)."""

    tenant: str
    cert: Any
    cert_pem: bytes
    key: Any = field(repr=False)


def secret_prefix(stage: str) -> str:
    """The name prefix of every CA secret of a stage."""
    return f"ampora/{stage}/ca/"


def secret_name(stage: str, tenant: str) -> str:
    """The Secrets Manager name of a tenant's CA."""
    return f"{secret_prefix(stage)}{tenant}"


def on_authority(listener: Listener) -> Callable[[], None]:
    """Be told of each CA this process creates or loads (the local stack's trust store).

    Returns the function that stops telling ``listener``.
    """
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _decode(tenant: str, secret: str) -> Authority:
    value = json.loads(secret)
    cert_pem = value["certificate"].encode("ascii")
    return Authority(tenant=tenant, cert=pki.load_cert(cert_pem), cert_pem=cert_pem,
                     key=pki.load_key(value["privateKey"].encode("ascii")))


def _encode(authority: Authority) -> str:
    return json.dumps({"format": SECRET_FORMAT, "tenant": authority.tenant,
                       "certificate": authority.cert_pem.decode("ascii"),
                       "privateKey": pki.key_pem(authority.key).decode("ascii")})


def _new_authority(tenant: str) -> Authority:
    d = deps()
    key = pki.new_key()
    cert = pki.self_signed_ca(key, f"Ampora agent CA ({tenant})", now=d.clock.now(),
                              serial=pki.serial_from(d.random_bytes(20)))
    return Authority(tenant=tenant, cert=cert, cert_pem=pki.cert_pem(cert), key=key)


class CaStore:
    """The CAs of one stage, read from (or created in) Secrets Manager once per process."""

    def __init__(self, stage: str, client: Callable[[], Any]) -> None:
        self.stage = stage
        self._client = client
        self._cache: dict[str, Authority] = {}

    def get_or_create(self, tenant: str) -> Authority:
        """The tenant's CA, created on first use."""
        found = self.find(tenant)
        if found is not None:
            return found
        return self._remember(*self._create(tenant))

    def find(self, tenant: str) -> Authority | None:
        """The tenant's CA if it exists; never creates one."""
        cached = self._cache.get(tenant)
        if cached is not None:
            return cached
        read = self._read(tenant)
        return None if read is None else self._remember(read, created=False)

    def tenants(self) -> list[str]:
        """Every tenant that has a CA in this stage."""
        prefix = secret_prefix(self.stage)
        pages = self._call("list_secrets", paginate=True,
                           Filters=[{"Key": "name", "Values": [prefix]}])
        names = [s["Name"] for page in pages for s in page.get("SecretList", [])]
        return sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix))

    def _remember(self, authority: Authority, created: bool) -> Authority:
        self._cache[authority.tenant] = authority
        for listener in _listeners:
            listener(authority.tenant, authority.cert_pem, created)
        return authority

    def _read(self, tenant: str) -> Authority | None:
        try:
            value = self._call("get_secret_value", SecretId=secret_name(self.stage, tenant))
        except _Missing:
            return None
        return _decode(tenant, value["SecretString"])

    def _create(self, tenant: str) -> tuple[Authority, bool]:
        authority = _new_authority(tenant)
        try:
            self._call("create_secret", Name=secret_name(self.stage, tenant),
                       SecretString=_encode(authority),
                       Description=f"Ampora: certificate authority of tenant {tenant}")
        except _Exists:
            existing = self._read(tenant)  # another process won the race: use its CA
            if existing is None:
                raise ServiceUnavailable("the tenant's certificate authority is being "
                                         "created; retry") from None
            return existing, False
        logger.info("created a certificate authority", extra={"tenant": tenant})
        from chalicelib.certificates import truststore  # AWS: the agents' domain trusts it

        truststore.publish_created(tenant, authority.cert_pem)
        return authority, True

    def _call(self, operation: str, *, paginate: bool = False, **kwargs: Any) -> Any:
        """One Secrets Manager call; its failures become domain errors."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client()
        try:
            if paginate:
                return list(client.get_paginator(operation).paginate(**kwargs))
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise _Missing(code) from exc
            if code == "ResourceExistsException":
                raise _Exists(code) from exc
            raise ServiceUnavailable(f"Secrets Manager refused {operation} ({code})") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"Secrets Manager is not reachable ({operation})") from exc


class _Missing(Exception):
    """The secret does not exist."""


class _Exists(Exception):
    """The secret already exists."""


def _secretsmanager() -> Any:
    import boto3

    return boto3.client("secretsmanager", region_name=settings().region)


_store: CaStore | None = None


def store() -> CaStore:
    """This process's CA store (built on first use)."""
    global _store
    if _store is None:
        client: list[Any] = []

        def lazy_client() -> Any:
            if not client:
                client.append(_secretsmanager())
            return client[0]

        _store = CaStore(settings().stage, lazy_client)
    return _store


def forget_cached() -> None:
    """Drop this process's CAs and client (tests start from fresh AWS)."""
    global _store
    _store = None
