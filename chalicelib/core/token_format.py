"""Ampora's bearer-token format, checkable offline by secret scanners.

``<prefix>`` + base32 (RFC 4648, uppercase, unpadded) of 20 random bytes + ``.`` +
base32 (unpadded) of the big-endian CRC-32 of everything before the last dot.
Personal access tokens use the prefix ``amp-pat.``, bootstrap tokens ``amp-bt.``.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass, field

SECRET_BYTES = 20
_B32 = "[A-Z2-7]"


def b32(data: bytes) -> str:
    """Uppercase, unpadded base32 of ``data``."""
    return base64.b32encode(data).decode().rstrip("=")


def checksum(head: str) -> str:
    """The CRC part for ``head`` (the token up to its last dot)."""
    return b32(zlib.crc32(head.encode()).to_bytes(4, "big"))


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (160 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _shape(prefix: str) -> re.Pattern[str]:
    secret_chars = -(-SECRET_BYTES * 8 // 5)
    return re.compile(rf"^{re.escape(prefix)}({_B32}{{{secret_chars}}})\.({_B32}{{7}})$")


@dataclass(frozen=True)
class TokenFormat:
    """One kind of token: a prefix such as ``amp-pat.`` and the shared construction."""

    prefix: str
    _shape: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_shape", _shape(self.prefix))

    def mint(self, secret: bytes) -> str:
        """The token for 20 random bytes."""
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"a token needs exactly {SECRET_BYTES} random bytes")
        head = self.prefix + b32(secret)
        return f"{head}.{checksum(head)}"

    def well_formed(self, token: str) -> bool:
        """Whether ``token`` has this shape and a correct CRC (checked before any lookup)."""
        match = self._shape.match(token)
        if match is None:
            return False
        head = token.rsplit(".", 1)[0]
        return checksum(head) == match.group(2)

    def hint(self, token: str) -> str:
        """The recognisable start of a token, safe to show again."""
        return token[: len(self.prefix) + 4]
