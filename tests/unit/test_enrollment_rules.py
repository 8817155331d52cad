"""The pure rules of bootstrap tokens: format, status, lifetime, quota windows, the setting."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.core.settings import Settings, SettingsError
from chalicelib.core.token_format import TokenFormat
from chalicelib.enrollment import rules
from chalicelib.tokens import pat_format

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SECRET = bytes(range(20))


def test_format_is_the_pat_construction_with_its_own_prefix() -> None:
    # Given 20 bytes / When minted as a bootstrap token
    token = rules.FORMAT.mint(SECRET)
    head, crc = token.rsplit(".", 1)
    # Then it is amp-bt. + base32 of the bytes + base32 of the CRC-32 of the head
    assert head == "amp-bt." + base64.b32encode(SECRET).decode().rstrip("=")
    assert crc == base64.b32encode(zlib.crc32(head.encode()).to_bytes(4, "big")).decode().rstrip("=")
    assert rules.FORMAT.well_formed(token)
    assert rules.FORMAT.hint(token) == "amp-bt.AAAQ"


def test_the_shared_format_mints_exactly_the_pat_it_always_did() -> None:
    assert TokenFormat("amp-pat.").mint(SECRET) == pat_format.mint(SECRET)
    assert pat_format.mint(SECRET) == "amp-pat.AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT.YW3ELPA"


def _flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(("token", "ok"), [
    (rules.FORMAT.mint(SECRET), True),
    (_flip_last(rules.FORMAT.mint(SECRET)), False),            # CRC does not match
    (pat_format.mint(SECRET), False),                          # a PAT is no bootstrap token
    (rules.FORMAT.mint(SECRET).replace("amp-bt.", "amp-pat."), False),
    (rules.FORMAT.mint(SECRET).lower(), False),
    (rules.FORMAT.mint(SECRET) + "=", False),
    (rules.FORMAT.mint(SECRET).rsplit(".", 1)[0], False),
    ("", False),
])
def test_well_formed(token: str, ok: bool) -> None:
    assert rules.FORMAT.well_formed(token) is ok


def test_only_twenty_bytes_make_a_token() -> None:
    with pytest.raises(ValueError):
        rules.FORMAT.mint(b"short")


LATER = NOW + timedelta(hours=1)
EARLIER = NOW - timedelta(seconds=1)


@pytest.mark.parametrize(("revoked", "uses", "max_uses", "expires_at", "expected"), [
    (False, 0, 1, LATER, "active"),
    (False, 4, 5, LATER, "active"),
    (False, 1, 1, LATER, "exhausted"),
    (False, 0, 1, NOW, "expired"),           # expiry is exclusive: at expires_at it is over
    (False, 1, 1, EARLIER, "expired"),       # exhausted, then expired: expired wins
    (True, 0, 1, LATER, "revoked"),
    (True, 1, 1, EARLIER, "revoked"),        # revoked wins over everything
])
def test_status(revoked: bool, uses: int, max_uses: int, expires_at: datetime,
                expected: str) -> None:
    got = rules.status(revoked=revoked, uses=uses, max_uses=max_uses, expires_at=expires_at,
                       now=NOW)
    assert got == expected


@pytest.mark.parametrize(("requested", "maximum", "expected"), [
    (None, 2_592_000, 86_400),     # a day by default
    (None, 3_600, 3_600),          # but never beyond the deployment's maximum
    (60, 2_592_000, 60),
])
def test_ttl(requested: int | None, maximum: int, expected: int) -> None:
    assert rules.ttl_seconds(requested, maximum) == expected


@pytest.mark.parametrize(("now", "window", "retry_after"), [
    (datetime(2026, 1, 5, 9, 0, tzinfo=UTC), "2026-01-05T09", 3600),
    (datetime(2026, 1, 5, 9, 39, 0, tzinfo=UTC), "2026-01-05T09", 1260),
    (datetime(2026, 1, 5, 9, 59, 59, 500_000, tzinfo=UTC), "2026-01-05T09", 1),
    (datetime(2026, 1, 5, 23, 30, tzinfo=UTC), "2026-01-05T23", 1800),
    (datetime(2026, 1, 5, 10, 30, tzinfo=UTC).astimezone(), "2026-01-05T10", 1800),
])
def test_quota_window_is_the_utc_hour(now: datetime, window: str, retry_after: int) -> None:
    assert rules.hour_window(now) == (window, retry_after)


def test_keys_name_their_parts() -> None:
    assert rules.enrollment_key("t1", "ab" * 16) == "t1#" + "ab" * 16
    assert rules.quota_key("p1", "2026-01-05T09") == "p1#2026-01-05T09"


def test_max_ttl_setting_defaults_to_thirty_days_and_is_bounded() -> None:
    assert Settings.from_env({}).bootstrap_token_max_ttl_seconds == 30 * 86_400
    env = {"AMPORA_BOOTSTRAP_TOKEN_MAX_TTL_SECONDS": "3600"}
    assert Settings.from_env(env).bootstrap_token_max_ttl_seconds == 3600
    for bad in ("0", "59", "ten", str(366 * 86_400)):
        with pytest.raises(SettingsError):
            Settings.from_env({"AMPORA_BOOTSTRAP_TOKEN_MAX_TTL_SECONDS": bad})
