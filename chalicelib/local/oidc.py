"""The local OIDC issuer: one signing key in the state dir, its JWKS, discovery, and dev tokens.

Only the local stack trusts this issuer; outside local mode it does not exist.
The key (EC P-256, ES256) is created on first use and kept owner-only, so
tokens minted by ``ampora dev-token`` survive a restart of ``ampora dev``.
``jwt`` and ``cryptography`` are imported on use, keeping the CLI's start cheap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.local.state import create_once, ensure_home

KEY_FILE = "oidc-signing-key.pem"
ALGORITHM = "ES256"
ROLES = ("Admin", "Operator", "Viewer")


@dataclass(frozen=True)
class SigningKey:
    """The issuer's private key and its key id."""

    private_key: Any
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (with ``kid``, ``alg`` and ``use``)."""
        return {**_public_members(self.private_key), "kid": self.kid, "alg": ALGORITHM,
                "use": "sig"}


def _public_members(private_key: Any) -> dict[str, str]:
    from jwt.algorithms import ECAlgorithm

    jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {name: str(jwk[name]) for name in ("kty", "crv", "x", "y")}


def thumbprint(members: dict[str, str]) -> str:
    """The RFC 7638 JWK thumbprint (base64url SHA-256) of an EC public key."""
    canonical = json.dumps({k: members[k] for k in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _new_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_signing_key(home: Path) -> SigningKey:
    """The issuer's key from the state dir, created (mode 0600) on first use."""
    from cryptography.hazmat.primitives import serialization

    path = ensure_home(home) / KEY_FILE
    pem = create_once(path, _new_key_pem()) if not path.exists() else path.read_bytes()
    private_key = serialization.load_pem_private_key(pem, password=None)
    return SigningKey(private_key=private_key, kid=thumbprint(_public_members(private_key)))


def discovery_document(authority: str) -> dict[str, Any]:
    """The OpenID Provider metadata the app fetches to find the JWKS."""
    return {
        "issuer": authority,
        "jwks_uri": f"{authority}/jwks.json",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "role", "tenant"],
    }


def jwks(key: SigningKey) -> dict[str, Any]:
    """The JSON Web Key Set listing the issuer's one public key."""
    return {"keys": [key.public_jwk()]}


def sign(key: SigningKey, claims: dict[str, Any]) -> str:
    """``claims`` signed by the issuer's key as a compact JWT (``kid`` in the header)."""
    import jwt

    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM,
                      headers={"kid": key.kid, "typ": "JWT"})


def dev_claims(*, authority: str, audience: str, role: str, sub: str = "dev-user",
               tenant: str = "default", ttl: int = 3600, now: float | None = None
               ) -> dict[str, Any]:
    """The claims of a local developer token (``role`` and ``tenant`` included)."""
    issued = int(time.time() if now is None else now)
    return {"iss": authority, "aud": audience, "sub": sub, "role": role, "tenant": tenant,
            "iat": issued, "exp": issued + ttl}
