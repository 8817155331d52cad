"""The agents' mutual-TLS truststore: every tenant CA certificate, in S3, used by API Gateway.

In AWS the agents' custom domain trusts ``s3://<bucket>/truststore.pem`` (a concatenation
of PEM certificates; the bucket is versioned). When a tenant's CA is created, its
certificate is appended and API Gateway is pointed at the new object version:

- :func:`merge` is the pure part: add certificates to a PEM bundle, deduplicated by
  SHA-256 fingerprint (of the DER), existing order kept.
- :class:`Truststore` is the adapter: read (with the ETag), merge, write back only if the
  object is unchanged (``IfMatch``; ``IfNoneMatch="*"`` when it does not exist yet), retry on
  a lost race, so two CAs created at once are both kept; then ``UpdateDomainName`` with the
  new ``TruststoreVersion``, re-pointing at the newest version if another writer overtook us.

Configured by ``AMPORA_TRUSTSTORE_BUCKET`` and ``AMPORA_AGENT_DOMAIN_NAME``; without both
(local stack, tests) :func:`publish_created` does nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib.core.observability import logger
from chalicelib.core.settings import Settings, settings

#: The truststore object's key (infra/agents.py ``TRUSTSTORE_KEY``).
KEY = "truststore.pem"
#: Read-modify-write attempts before giving up (each lost race is another CA being added).
WRITE_ATTEMPTS = 8
#: Times the domain is re-pointed when other writers keep overtaking this one.
POINT_ATTEMPTS = 4

_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.S)


class TruststoreError(Exception):
    """The truststore could not be updated (S3 or API Gateway refused, or races never ended)."""


# --- Pure: PEM bundles ---------------------------------------------------------------------

def certificates(bundle: bytes) -> list[bytes]:
    """The DER of each ``CERTIFICATE`` block of a PEM bundle, in order (other text ignored)."""
    found = []
    for match in _BLOCK.finditer(bundle):
        try:
            found.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except binascii.Error as exc:
            raise ValueError("a CERTIFICATE block is not valid base64") from exc
    return found


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint (hex of the DER's digest)."""
    return hashlib.sha256(der).hexdigest()


def _pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode("ascii")


def merge(bundle: bytes, *added: bytes) -> tuple[bytes, bool]:
    """``bundle`` with the certificates of ``added`` (PEM) appended unless already present.

    Returns the new bundle (every certificate once, first occurrence first, canonical PEM)
    and whether a certificate was added.
    """
    seen: set[str] = set()
    kept: list[bytes] = []
    for der in certificates(bundle):
        if fingerprint(der) not in seen:
            seen.add(fingerprint(der))
            kept.append(der)
    before = len(kept)
    for pem in added:
        ders = certificates(pem)
        if not ders:
            raise ValueError("no CERTIFICATE block to add")
        for der in ders:
            if fingerprint(der) not in seen:
                seen.add(fingerprint(der))
                kept.append(der)
    return b"".join(_pem(der) for der in kept), len(kept) > before


# --- Adapter: S3 and API Gateway -----------------------------------------------------------

def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@dataclass
class Published:
    """What one :meth:`Truststore.add` did."""

    added: bool
    version: str


class Truststore:
    """The truststore object of one bucket and the custom domain that uses it."""

    def __init__(self, bucket: str, domain_name: str, s3: Callable[[], Any],
                 apigateway: Callable[[], Any], key: str = KEY) -> None:
        self.bucket = bucket
        self.domain_name = domain_name
        self.key = key
        self._s3 = s3
        self._apigateway = apigateway

    @property
    def uri(self) -> str:
        """The ``TruststoreUri`` API Gateway reads."""
        return f"s3://{self.bucket}/{self.key}"

    def add(self, *pems: bytes) -> Published:
        """Append certificates (deduplicated) and point the domain at the resulting version."""
        published = self._write(pems)
        self._point(published.version)
        return published

    def _read(self) -> tuple[bytes, str | None, str]:
        """The bundle, its ETag (None: no object yet) and its version."""
        from botocore.exceptions import ClientError

        try:
            got = self._s3().get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return b"", None, ""
            raise TruststoreError(f"S3 refused GetObject ({_code(exc)})") from exc
        return got["Body"].read(), got["ETag"], got.get("VersionId", "")

    def _write(self, pems: tuple[bytes, ...]) -> Published:
        from botocore.exceptions import ClientError

        for _ in range(WRITE_ATTEMPTS):
            bundle, etag, version = self._read()
            merged, added = merge(bundle, *pems)
            if not added:
                return Published(added=False, version=version)
            condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
            try:
                put = self._s3().put_object(Bucket=self.bucket, Key=self.key, Body=merged,
                                            ContentType="application/x-pem-file", **condition)
            except ClientError as exc:
                if _code(exc) in {"PreconditionFailed", "ConditionalRequestConflict", "412",
                                  "409"}:
                    continue  # another writer got there first: merge into its version
                raise TruststoreError(f"S3 refused PutObject ({_code(exc)})") from exc
            return Published(added=True, version=put.get("VersionId", ""))
        raise TruststoreError(f"the truststore kept changing ({WRITE_ATTEMPTS} attempts)")

    def _latest_version(self) -> str:
        from botocore.exceptions import ClientError

        try:
            return str(self._s3().head_object(Bucket=self.bucket, Key=self.key)
                       .get("VersionId", ""))
        except ClientError as exc:
            raise TruststoreError(f"S3 refused HeadObject ({_code(exc)})") from exc

    def _point(self, version: str) -> None:
        """Point the domain at ``version``, then at any newer one another writer made meanwhile
        (its own update may have landed before ours)."""
        from botocore.exceptions import ClientError

        for _ in range(POINT_ATTEMPTS):
            auth = {"TruststoreUri": self.uri}
            if version:
                auth["TruststoreVersion"] = version
            try:
                self._apigateway().update_domain_name(DomainName=self.domain_name,
                                                      MutualTlsAuthentication=auth)
            except ClientError as exc:
                raise TruststoreError(
                    f"API Gateway refused UpdateDomainName ({_code(exc)})") from exc
            latest = self._latest_version()
            if latest == version:
                return
            version = latest
        raise TruststoreError("the truststore kept changing while the domain was updated")


def _client(service: str) -> Callable[[], Any]:
    """A boto3 client built on first use, then kept."""
    built: list[Any] = []

    def client() -> Any:
        if not built:
            import boto3

            built.append(boto3.client(service, region_name=settings().region))
        return built[0]

    return client


_truststore: Truststore | None = None


def from_settings(config: Settings) -> Truststore | None:
    """The deployment's truststore, or None when it is not configured (local stack, tests)."""
    if not (config.truststore_bucket and config.agent_domain_name):
        return None
    return Truststore(config.truststore_bucket, config.agent_domain_name,
                      s3=_client("s3"), apigateway=_client("apigatewayv2"))


def truststore() -> Truststore | None:
    """This process's truststore (built on first use), or None when not configured."""
    global _truststore
    if _truststore is None:
        _truststore = from_settings(settings())
    return _truststore


def publish_created(tenant: str, cert_pem: bytes) -> None:
    """Trust a newly created tenant CA at the agents' domain; a no-op when not configured.

    A failure is logged, not raised: the CA exists and the caller's request can go on, but
    agents of that tenant cannot use mutual TLS until the CA is added (``sync``).
    """
    store = truststore()
    if store is None:
        return
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        published = store.add(cert_pem)
    except (TruststoreError, ValueError, BotoCoreError, ClientError) as exc:
        logger.error("could not add a tenant CA to the agents' truststore",
                     extra={"tenant": tenant, "error": f"{type(exc).__name__}: {exc}"})
        return
    logger.info("trusted a tenant CA at the agents' domain",
                extra={"tenant": tenant, "added": published.added,
                       "truststoreVersion": published.version})


def sync(pems: Iterable[bytes]) -> Published:
    """Add every given CA certificate (e.g. ``service.ca_certificates()``): repairs a
    truststore that missed a CA. Raises :class:`TruststoreError` when not configured."""
    store = truststore()
    if store is None:
        raise TruststoreError("AMPORA_TRUSTSTORE_BUCKET and AMPORA_AGENT_DOMAIN_NAME are not set")
    return store.add(*pems)


def forget_cached() -> None:
    """Drop this process's truststore and clients (tests change settings)."""
    global _truststore
    _truststore = None
