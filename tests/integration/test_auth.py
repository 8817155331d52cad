"""OIDC bearer tokens through the HTTP surface: every way a token can be wrong is a 401."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.api import Api
from tests.support.idp import IdentityProvider, rsa_key

INVALID = 'Bearer error="invalid_token"'


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(idp: IdentityProvider) -> str:
    claims = {"iss": idp.authority, "aud": "ampora", "sub": "eve", "role": "Admin",
              "exp": int(time.time()) + 600}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_valid_token_is_accepted(api: Api) -> None:
    answer = api.get("/api/tenant")
    assert answer.status == 200
    assert answer.json["id"] == "acme"


@pytest.mark.parametrize("make", [
    pytest.param(lambda idp: unsigned(idp), id="alg-none"),
    pytest.param(lambda idp: jwt.encode({"sub": "eve", "role": "Admin", "aud": "ampora",
                                         "iss": idp.authority, "exp": int(time.time()) + 60},
                                        "a-shared-secret-of-at-least-32-bytes!",
                                        algorithm="HS256", headers={"kid": "k1"}), id="hs256"),
    pytest.param(lambda idp: idp.token(iss="https://evil.example"), id="wrong-issuer"),
    pytest.param(lambda idp: idp.token(aud="someone-else"), id="wrong-audience"),
    pytest.param(lambda idp: idp.token(exp=int(time.time()) - 120), id="expired"),
    pytest.param(lambda idp: idp.token(drop=("exp",)), id="no-exp"),
    pytest.param(lambda idp: idp.token(key=rsa_key()), id="forged-signature"),
    pytest.param(lambda idp: "not-a-jwt", id="garbage"),
    pytest.param(lambda idp: idp.token(tenant="../etc"), id="bad-tenant"),
])
def test_bad_tokens_are_401_with_challenge(api: Api, idp: IdentityProvider, make) -> None:
    answer = api.get("/api/tenant", token=make(idp))
    assert answer.status == 401
    assert answer.header("WWW-Authenticate") == INVALID
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.json["type"] == "https://docs.ampora.io/errors/invalid-token"


def test_expiry_leeway_is_small(api: Api, idp: IdentityProvider) -> None:
    assert api.get("/api/tenant", token=idp.token(exp=int(time.time()) - 10)).status == 200
    assert api.get("/api/tenant", token=idp.token(exp=int(time.time()) - 90)).status == 401


@pytest.mark.parametrize("header", ["", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
def test_missing_credentials_are_401(api: Api, header: str) -> None:
    answer = api.call("GET", "/api/tenant", token="", headers={"Authorization": header})
    assert answer.status == 401
    assert answer.header("WWW-Authenticate", ).startswith("Bearer")


@pytest.mark.parametrize("role", [None, "Superuser", ["Nobody"], 7])
def test_valid_token_without_known_role_is_403(api: Api, idp: IdentityProvider, role) -> None:
    answer = api.get("/api/tenant", token=idp.token(role))
    assert answer.status == 403
    assert answer.json["type"].endswith("/errors/unknown-role")


def test_role_claim_may_be_a_list(api: Api, idp: IdentityProvider) -> None:
    token = idp.token(["Viewer", "Operator", "unknown"])
    assert api.get("/api/tenant", token=token).status == 200
    assert api.put("/api/tenant", {}, token=token).status == 403  # PUT needs Admin


def test_absent_tenant_claim_means_default(api: Api, idp: IdentityProvider) -> None:
    assert api.get("/api/tenant", token=idp.token(tenant=None)).json["id"] == "default"


def test_ec_keys_are_accepted(api: Api, idp: IdentityProvider) -> None:
    idp.keys["ec1"] = ec.generate_private_key(ec.SECP256R1())
    assert api.get("/api/tenant", token=idp.token(kid="ec1", alg="ES256")).status == 200


def test_unknown_kid_refreshes_jwks_at_most_once_per_cooldown(api: Api, idp: IdentityProvider) -> None:
    api.get("/api/tenant")  # warm the cache
    fetched = len(idp.fetches)
    idp.keys["k2"] = rsa_key()
    # a rotated key is picked up by one refresh (the first one is allowed: cache is fresh, though)
    stranger = idp.token(kid="nobody", key=rsa_key())
    for _ in range(5):
        assert api.get("/api/tenant", token=stranger).status == 401
    assert len(idp.fetches) - fetched <= 2  # discovery + JWKS at most once


def test_rotated_key_is_found_after_cooldown(idp: IdentityProvider, aws) -> None:
    from chalicelib.core.auth import OidcVerifier
    from chalicelib.core.problems import InvalidToken
    from chalicelib.core.settings import settings

    now = [1000.0]
    verifier = OidcVerifier(settings(), fetch=idp.fetch, monotonic=lambda: now[0])
    verifier.verify(idp.token())
    idp.keys["k2"] = rsa_key()
    with pytest.raises(InvalidToken):
        verifier.verify(idp.token(kid="k2"))  # inside the cooldown: no refetch
    now[0] += settings().jwks_cooldown_seconds
    assert verifier.verify(idp.token(kid="k2")).subject == "alice"


def test_unreachable_idp_with_cold_cache_is_503(api: Api, idp: IdentityProvider) -> None:
    idp.reachable = False
    answer = api.get("/api/tenant")
    assert answer.status == 503
    assert answer.json["type"].endswith("/errors/service-unavailable")


def test_unreachable_idp_with_warm_cache_still_verifies(api: Api, idp: IdentityProvider) -> None:
    assert api.get("/api/tenant").status == 200
    idp.reachable = False
    assert api.get("/api/tenant").status == 200
    assert api.get("/api/tenant", token=idp.token(kid="k9", key=rsa_key())).status == 401


def test_failed_authentication_is_logged_and_counted_without_the_token(
        api: Api, idp: IdentityProvider, capsys, caplog) -> None:
    token = idp.token(aud="someone-else")
    capsys.readouterr()
    assert api.get("/api/tenant", token=token).status == 401
    [log] = [r for r in caplog.records if r.getMessage() == "authentication failed"]
    assert log.levelname == "WARNING" and log.problem == "invalid-token"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if "AuthenticationFailures" in line]
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Ampora"
    assert token not in json.dumps(metrics) and token not in json.dumps(vars(log), default=str)


def test_token_algorithm_must_match_the_published_key_algorithm(api: Api,
                                                                 idp: IdentityProvider) -> None:
    def with_alg(url: str, timeout: int) -> dict:
        document = idp.fetch(url, timeout)
        for key in document.get("keys", []):
            key["alg"] = "RS512"
        return document

    from chalicelib.core.auth import OidcVerifier, set_oidc_verifier
    from chalicelib.core.settings import settings

    set_oidc_verifier(OidcVerifier(settings(), fetch=with_alg))
    assert api.get("/api/tenant", token=idp.token(alg="RS256")).status == 401
    assert api.get("/api/tenant", token=idp.token(alg="RS512")).status == 200
