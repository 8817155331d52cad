"""Principals from bearer tokens: OIDC JWTs verified against the IdP's JWKS, and PATs.

OIDC tokens are checked for signature (asymmetric algorithms only), issuer,
audience and expiry (``exp`` required, leeway at most 60 s). Keys come from the
authority's discovery document and JWKS over HTTP; an unknown ``kid`` refreshes
the JWKS at most once per cooldown, and an unreachable IdP with nothing cached is
a 503: authentication never fails open. ``pyjwt`` (and ``cryptography`` behind it)
is imported on the first OIDC token, not at cold start.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.core.access import Principal, Role
from chalicelib.core.deps import deps
from chalicelib.core.observability import count, logger
from chalicelib.core.problems import (
    AmporaError,
    InvalidToken,
    ServiceUnavailable,
    Unauthorized,
)
from chalicelib.core.settings import Settings, settings

PAT_PREFIX = "amp-pat."
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA")
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

Fetch = Callable[[str, int], dict[str, Any]]


def fetch_json(url: str, timeout: int) -> dict[str, Any]:
    """GET ``url`` and parse it as a JSON object (the IdP's documents)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"refusing to fetch {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return data


class OidcVerifier:
    """Verifies OIDC bearer JWTs for one authority and audience."""

    def __init__(self, config: Settings, *, fetch: Fetch = fetch_json,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.config = config
        self._fetch = fetch
        self._monotonic = monotonic or deps().monotonic
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._keys: dict[str | None, Any] = {}
        self._declared_algs: dict[str | None, str] = {}
        self._fetched_at: float | None = None

    def verify(self, token: str) -> Principal:
        """The principal ``token`` stands for, or a 401/403/503 problem."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("the bearer token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken(f"tokens signed with {alg!r} are not accepted")
        key = self._key(header.get("kid"))
        claims = self._decode(jwt, token, key, alg)
        return self._principal(claims)

    def _decode(self, jwt: Any, token: str, key: Any, alg: str) -> dict[str, Any]:
        declared = self._declared_algs.get(key.key_id)
        if declared is not None and declared != alg:
            raise InvalidToken("the token's algorithm is not the one its key is published for")
        try:
            return dict(jwt.decode(
                token, key=key.key, algorithms=[alg],
                audience=self.config.oidc_audience, issuer=self._issuer,
                leeway=min(self.config.oidc_leeway_seconds, 60),
                options={"require": ["exp", "iss", "aud", "sub"]},
            ))
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from exc

    def _principal(self, claims: dict[str, Any]) -> Principal:
        role = highest_role(claims.get(self.config.oidc_role_claim))
        if role is None:
            raise AmporaError(
                f"the token's {self.config.oidc_role_claim!r} claim names no known role "
                "(Viewer, Operator or Admin)", slug="unknown-role")
        tenant = claims.get(self.config.oidc_tenant_claim) or DEFAULT_TENANT
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise InvalidToken("the token's tenant claim is not a valid tenant id")
        return Principal(tenant=tenant, subject=str(claims["sub"]), role=role, kind="user",
                         claims=claims)

    def _key(self, kid: str | None) -> Any:
        with self._lock:
            if self._fetched_at is None:
                self._refresh(cold=True)
            elif kid not in self._keys and self._cooled_down():
                self._refresh(cold=False)
            if kid in self._keys:
                return self._keys[kid]
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
        raise InvalidToken("the token was signed by a key the identity provider does not list")

    def _cooled_down(self) -> bool:
        assert self._fetched_at is not None
        return self._monotonic() - self._fetched_at >= self.config.jwks_cooldown_seconds

    def _refresh(self, *, cold: bool) -> None:
        import jwt

        authority = self.config.oidc_authority
        if not authority:
            raise ServiceUnavailable("no OIDC authority is configured")
        try:
            discovery = self._fetch(f"{authority}/.well-known/openid-configuration",
                                    self.config.http_timeout_seconds)
            jwks = self._fetch(str(discovery["jwks_uri"]), self.config.http_timeout_seconds)
            keyset = jwt.PyJWKSet.from_dict(jwks)
        except Exception as exc:
            logger.warning("identity provider unreachable", extra={"cold": cold})
            if cold:
                raise ServiceUnavailable(
                    "the identity provider cannot be reached to verify the token") from exc
            self._fetched_at = self._monotonic()
            return
        self._issuer = str(discovery.get("issuer") or authority)
        self._keys = {key.key_id: key for key in keyset.keys}
        self._declared_algs = {k.get("kid"): k["alg"] for k in jwks.get("keys", []) if "alg" in k}
        self._fetched_at = self._monotonic()


def highest_role(value: Any) -> Role | None:
    """The highest known role named by a role claim (a string or a list of strings)."""
    values = value if isinstance(value, list) else [value]
    roles = [r for r in (Role.parse(v) for v in values if isinstance(v, str)) if r is not None]
    return max(roles, default=None)


_verifier: OidcVerifier | None = None


def oidc_verifier() -> OidcVerifier:
    """The process's OIDC verifier (its JWKS cache lives as long as the Lambda container)."""
    global _verifier
    if _verifier is None:
        _verifier = OidcVerifier(settings())
    return _verifier


def set_oidc_verifier(verifier: OidcVerifier | None) -> None:
    """Replace the OIDC verifier (tests, and the local stack's own issuer)."""
    global _verifier
    _verifier = verifier


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or a 401 problem."""
    if not header:
        raise Unauthorized("this endpoint needs a bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("use 'Authorization: Bearer <token>'", error="invalid_request")
    return token.strip()


def authenticate(header: str | None, *, source_ip: str = "") -> Principal:
    """The principal behind an ``Authorization`` header; failures are logged and counted."""
    try:
        token = bearer_token(header)
        if token.startswith(PAT_PREFIX):
            verify_pat = deps().verify_pat
            if verify_pat is None:
                raise ServiceUnavailable("personal access tokens are not available")
            return verify_pat(token)
        return oidc_verifier().verify(token)
    except AmporaError as error:
        kind = "pat" if header and PAT_PREFIX in header else "oidc"
        logger.warning("authentication failed", extra={
            "reason": error.detail, "problem": error.slug, "source_ip": source_ip,
            "token_kind": kind})
        count("AuthenticationFailures", kind=kind, problem=error.slug)
        raise
