"""The personal access token format, checkable offline by secret scanners.

``amp-pat.`` + base32 (RFC 4648, uppercase, unpadded) of 20 random bytes + ``.`` +
base32 (unpadded) of the big-endian CRC-32 of everything before the last dot
(the construction shared by every Ampora token: :mod:`chalicelib.core.token_format`).
Pure: no I/O.
"""

from __future__ import annotations

from chalicelib.core.token_format import SECRET_BYTES, TokenFormat, checksum, token_hash

PREFIX = "amp-pat."
FORMAT = TokenFormat(PREFIX)

__all__ = [
    "FORMAT",
    "PREFIX",
    "SECRET_BYTES",
    "checksum",
    "hint",
    "mint",
    "token_hash",
    "well_formed",
]


def mint(secret: bytes) -> str:
    """The token for 20 random bytes."""
    return FORMAT.mint(secret)


def well_formed(token: str) -> bool:
    """Whether ``token`` has the PAT shape and a correct CRC (checked before any lookup)."""
    return FORMAT.well_formed(token)


def hint(token: str) -> str:
    """The recognisable start of a token, safe to show again."""
    return FORMAT.hint(token)
