"""The personal access token format, checkable offline by secret scanners.

``amp-pat.`` + base32 (RFC 4648, uppercase, unpadded) of 20 random bytes + ``.`` +
base32 (unpadded) of the big-endian CRC-32 of everything before the last dot.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib

PREFIX = "amp-pat."
SECRET_BYTES = 20
_SHAPE = re.compile(r"^amp-pat\.([A-Z2-7]{32})\.([A-Z2-7]{7})$")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def checksum(head: str) -> str:
    """The CRC part for ``head`` (the token up to its last dot)."""
    return _b32(zlib.crc32(head.encode()).to_bytes(4, "big"))


def mint(secret: bytes) -> str:
    """The token for 20 random bytes."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a token needs exactly {SECRET_BYTES} random bytes")
    head = PREFIX + _b32(secret)
    return f"{head}.{checksum(head)}"


def well_formed(token: str) -> bool:
    """Whether ``token`` has the PAT shape and a correct CRC (checked before any lookup)."""
    match = _SHAPE.match(token)
    if match is None:
        return False
    head = token.rsplit(".", 1)[0]
    return checksum(head) == match.group(2)


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (160 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hint(token: str) -> str:
    """The recognisable start of a token, safe to show again."""
    return token[: len(PREFIX) + 4]
