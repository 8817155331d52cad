"""The truststore's pure part: merging CA certificates into a PEM bundle, deduplicated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.certificates import truststore
from chalicelib.certificates import x509 as pki
from chalicelib.core.settings import Settings

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _ca(name: str) -> bytes:
    return pki.cert_pem(pki.self_signed_ca(pki.new_key(), f"CA {name}", now=NOW, serial=7))


A, B, C = _ca("a"), _ca("b"), _ca("c")


def _names(bundle: bytes) -> list[str]:
    return [pki.load_cert(truststore._pem(der)).subject.rfc4514_string()
            for der in truststore.certificates(bundle)]


@pytest.mark.parametrize(("bundle", "added", "expected", "changed"), [
    (b"", [A], [A], True),                               # first CA into an empty store
    (A, [B], [A, B], True),                              # appended after what is there
    (A + B, [A], [A, B], False),                         # already trusted: unchanged
    (A + B, [B, C], [A, B, C], True),                    # several at once, known ones skipped
    (A, [C, C], [A, C], True),                           # duplicates in the input
    (A + A + B, [], [A, B], False),                      # duplicates already stored: dropped
    (b"# truststore\n" + A + b"\n\n" + B, [C], [A, B, C], True),  # text between blocks
    (A.replace(b"\n", b"\r\n"), [A], [A], False),        # same certificate, other line endings
])
def test_merge_appends_each_certificate_once(bundle: bytes, added: list[bytes],
                                             expected: list[bytes], changed: bool) -> None:
    merged, added_any = truststore.merge(bundle, *added)

    assert added_any is changed
    assert merged == b"".join(expected)
    assert _names(merged) == [pki.load_cert(pem).subject.rfc4514_string() for pem in expected]


def test_dedupe_is_by_fingerprint_not_by_name() -> None:
    twin = _ca("a")  # same subject, another key: another CA

    merged, changed = truststore.merge(A, twin)

    assert changed
    assert [truststore.fingerprint(d) for d in truststore.certificates(merged)] == [
        truststore.fingerprint(d) for d in truststore.certificates(A + twin)]


@pytest.mark.parametrize("added", [b"", b"not a certificate",
                                   b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"])
def test_merge_refuses_what_is_not_a_certificate(added: bytes) -> None:
    with pytest.raises(ValueError):
        truststore.merge(A, added)


@pytest.mark.parametrize(("env", "configured"), [
    ({}, False),
    ({"AMPORA_TRUSTSTORE_BUCKET": "b"}, False),
    ({"AMPORA_AGENT_DOMAIN_NAME": "agents.example.test"}, False),
    ({"AMPORA_TRUSTSTORE_BUCKET": "b", "AMPORA_AGENT_DOMAIN_NAME": "agents.example.test"}, True),
])
def test_only_a_bucket_and_a_domain_make_a_truststore(env: dict[str, str],
                                                      configured: bool) -> None:
    store = truststore.from_settings(Settings.from_env(env))

    assert (store is not None) is configured
    if store is not None:
        assert (store.uri, store.domain_name) == ("s3://b/truststore.pem", "agents.example.test")
