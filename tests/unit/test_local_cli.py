"""The ``ampora`` command's local sign-in: dev tokens the local issuer's JWKS verifies."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from chalicelib.cli.main import main
from chalicelib.local import oidc
from chalicelib.local.state import atomic_write, create_once, cursor_secret


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh state dir, with the local stack on port 8123."""
    monkeypatch.setenv("AMPORA_HOME", str(tmp_path / ".ampora"))
    monkeypatch.setenv("AMPORA_PORT", "8123")
    return tmp_path / ".ampora"


def _verify(home: Path, token: str) -> dict:
    key = jwt.PyJWKSet.from_dict(oidc.jwks(oidc.load_signing_key(home))).keys[0]
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    return jwt.decode(token, key=key.key, algorithms=["ES256"], audience="ampora",
                      issuer="http://127.0.0.1:8123/local-oidc")


def test_dev_token_is_signed_by_the_local_issuer_with_the_asked_claims(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev-token", "--role", "operator", "--sub", "alice", "--tenant", "acme",
                 "--ttl", "120"]) == 0
    claims = _verify(home, capsys.readouterr().out.strip())
    assert (claims["sub"], claims["role"], claims["tenant"]) == ("alice", "Operator", "acme")
    assert claims["exp"] - claims["iat"] == 120


def test_dev_token_defaults(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["dev-token", "--role", "Viewer"])
    claims = _verify(home, capsys.readouterr().out.strip())
    assert (claims["sub"], claims["tenant"], claims["exp"] - claims["iat"]) == (
        "dev-user", "default", 3600)


@pytest.mark.parametrize("args", [
    ["dev-token", "--role", "Root"],
    ["dev-token"],
    ["dev-token", "--role", "Admin", "--ttl", "0"],
    ["dev-token", "--role", "Admin", "--ttl", "-5"],
    ["dev-token", "--role", "Admin", "--ttl", "soon"],
    ["dev-token", "--role", "Admin", "--tenant", "no spaces"],
    ["dev", "--port", "70000"],
])
def test_bad_input_exits_2_with_a_message(home: Path, args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "ampora" in capsys.readouterr().err


def test_the_signing_key_is_kept_owner_only_and_reused(home: Path) -> None:
    first = oidc.load_signing_key(home)
    assert oidc.load_signing_key(home).kid == first.kid
    mode = stat.S_IMODE((home / oidc.KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_the_discovery_document_names_the_issuer_and_its_jwks() -> None:
    document = oidc.discovery_document("http://127.0.0.1:8000/local-oidc")
    assert document["issuer"] == "http://127.0.0.1:8000/local-oidc"
    assert document["jwks_uri"] == "http://127.0.0.1:8000/local-oidc/jwks.json"


def test_the_cursor_secret_is_random_once_then_kept(home: Path) -> None:
    assert cursor_secret(home) == cursor_secret(home)
    assert len(cursor_secret(home)) == 64


def test_create_once_keeps_the_first_content(tmp_path: Path) -> None:
    path = tmp_path / "file"
    assert create_once(path, b"first") == b"first"
    assert create_once(path, b"second") == b"first"


def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    atomic_write(path, b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]
