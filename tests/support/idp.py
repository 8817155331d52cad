"""A stand-in OIDC identity provider: real keys, real JWTs, documents served from memory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUTHORITY = "https://idp.example.test"
AUDIENCE = "ampora"


def rsa_key() -> Any:
    """A fresh RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class IdentityProvider:
    """Signs tokens and answers discovery/JWKS fetches like a real IdP would."""

    authority: str = AUTHORITY
    keys: dict[str, Any] = field(default_factory=lambda: {"k1": rsa_key()})
    reachable: bool = True
    fetches: list[str] = field(default_factory=list)

    def fetch(self, url: str, timeout: int) -> dict[str, Any]:
        """What the verifier's HTTP GET of ``url`` returns."""
        self.fetches.append(url)
        if not self.reachable:
            raise OSError("connection refused")
        if url == f"{self.authority}/.well-known/openid-configuration":
            return {"issuer": self.authority, "jwks_uri": f"{self.authority}/jwks"}
        if url == f"{self.authority}/jwks":
            return {"keys": [self._jwk(kid, key) for kid, key in self.keys.items()]}
        raise OSError(f"404 {url}")

    @staticmethod
    def _jwk(kid: str, key: Any) -> dict[str, Any]:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "use": "sig"}

    def token(self, role: Any = "Admin", *, sub: str = "alice", tenant: str | None = "acme",
              kid: str = "k1", alg: str = "RS256", key: Any = None, drop: tuple[str, ...] = (),
              **claims: Any) -> str:
        """A signed token; ``claims`` override the defaults, ``drop`` removes some."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.authority, "aud": AUDIENCE, "sub": sub,
                                "iat": now, "exp": now + 600, "role": role, "tenant": tenant}
        body.update(claims)
        body = {k: v for k, v in body.items() if k not in drop and v is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm=alg, headers={"kid": kid})
