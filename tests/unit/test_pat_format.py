"""The PAT format is exact, so that scanners can validate tokens offline."""

from __future__ import annotations

import base64
import zlib

import pytest

from chalicelib.tokens import pat_format


def test_format_is_prefix_base32_secret_and_base32_crc_of_the_head() -> None:
    secret = bytes(range(20))
    token = pat_format.mint(secret)
    head, crc = token.rsplit(".", 1)
    assert head == "amp-pat." + base64.b32encode(secret).decode().rstrip("=")
    assert crc == base64.b32encode(zlib.crc32(head.encode()).to_bytes(4, "big")).decode().rstrip("=")
    assert token == "amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPA"


@pytest.mark.parametrize(("token", "ok"), [
    ("amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPA", True),
    ("amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPB", False),   # wrong CRC
    ("amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQU.YW3ELPA", False),   # body changed
    ("amp-pat.aaaqeayeaudaocajbifqydiob4ibceqt.YW3ELPA", False),   # lowercase
    ("amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPA=", False),  # padding
    ("amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT", False),
    ("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPA", False),
    ("", False),
])
def test_well_formed(token: str, ok: bool) -> None:
    assert pat_format.well_formed(token) is ok


def test_only_twenty_bytes_make_a_token() -> None:
    with pytest.raises(ValueError):
        pat_format.mint(b"short")


def test_hash_and_hint_never_reveal_the_secret() -> None:
    token = pat_format.mint(bytes(20))
    assert pat_format.hint(token) == "amp-pat.AAAA"
    assert len(pat_format.token_hash(token)) == 64 and token not in pat_format.token_hash(token)
