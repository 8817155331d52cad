"""Redeeming bootstrap tokens (what an enrolling agent does), at the service level."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.core.problems import InvalidToken
from chalicelib.enrollment import rules, service
from tests.support.api import Api

AGENT_A = "a" * 32
AGENT_B = "b" * 32


def issue(api: Api, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    answer = api.post("/api/tokens", {"name": "fleet", **body}, tenant=tenant)
    assert answer.status == 201, answer.json
    return answer.json  # type: ignore[no-any-return]


def uses(api: Api, token: dict[str, Any], tenant: str = "acme") -> int:
    return int(api.get(f"/api/tokens/{token['id']}", tenant=tenant).json["uses"])


def refused(token: str, agent: str = AGENT_A) -> str:
    with pytest.raises(InvalidToken) as caught:
        service.redeem(token, agent)
    assert caught.value.status == 401
    return caught.value.detail


def test_redeem_grants_the_tokens_tenant_group_and_labels(api: Api) -> None:
    token = issue(api, labels={"env": "prod"}, maxUses=2)
    grant = service.redeem(token["token"], AGENT_A)
    assert grant == service.Grant(tenant="acme", token_id=token["id"], group_id="default",
                                  labels={"env": "prod"},
                                  expires_at=datetime(2026, 1, 6, 9, 0, tzinfo=UTC))
    assert uses(api, token) == 1
    assert api.get(f"/api/tokens/{token['id']}").json["lastUsedAt"] == "2026-01-05T09:00:00Z"


def test_an_enrolled_agent_is_admitted_again_without_using_the_token_up(api: Api) -> None:
    # Given a single-use token that enrolled agent A
    token = issue(api)
    service.redeem(token["token"], AGENT_A)
    # When A comes back with it (a restart, a retried first message)
    grant = service.redeem(token["token"], AGENT_A)
    # Then A is admitted and no use is consumed
    assert grant.token_id == token["id"]
    assert uses(api, token) == 1
    # But the token is exhausted for anyone else
    assert "exhausted" in refused(token["token"], AGENT_B)
    assert api.get(f"/api/tokens/{token['id']}").json["status"] == "exhausted"


def test_max_uses_agents_and_no_more(api: Api) -> None:
    token = issue(api, maxUses=3)
    agents = [f"{i:032x}" for i in range(4)]
    for agent in agents[:3]:
        service.redeem(token["token"], agent)
    assert "exhausted" in refused(token["token"], agents[3])
    assert uses(api, token) == 3


def test_revoked_token_admits_no_one_not_even_its_agents(api: Api, clock) -> None:
    token = issue(api, maxUses=5)
    service.redeem(token["token"], AGENT_A)
    api.post(f"/api/tokens/{token['id']}/revoke")
    assert "revoked" in refused(token["token"], AGENT_A)
    assert "revoked" in refused(token["token"], AGENT_B)
    assert uses(api, token) == 1


def test_expired_token_admits_no_one_not_even_its_agents(api: Api, clock) -> None:
    token = issue(api, ttlSeconds=60, maxUses=5)
    service.redeem(token["token"], AGENT_A)
    clock.advance(seconds=59)
    service.redeem(token["token"], AGENT_A)
    clock.advance(seconds=1)
    assert "expired" in refused(token["token"], AGENT_A)
    assert "expired" in refused(token["token"], AGENT_B)
    assert uses(api, token) == 1


def test_exhausted_token_still_admits_its_agents_until_it_expires(api: Api, clock) -> None:
    token = issue(api, ttlSeconds=3600)
    service.redeem(token["token"], AGENT_A)
    clock.advance(minutes=59)
    assert service.redeem(token["token"], AGENT_A).token_id == token["id"]
    clock.advance(minutes=1)
    assert "expired" in refused(token["token"], AGENT_A)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),   # CRC no longer matches
    lambda t: t.replace("amp-bt.", "amp-pat."),
    lambda t: t.lower(),
    lambda t: t + "A",
    lambda t: "",
])
def test_malformed_tokens_are_refused_before_any_lookup(api: Api, monkeypatch, mangle) -> None:
    token = issue(api)["token"]

    def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("a malformed token was looked up")

    monkeypatch.setattr(service, "_find", no_lookup)
    monkeypatch.setattr(service.Token, "get", no_lookup)
    assert "malformed" in refused(mangle(token))


def test_a_pat_is_no_bootstrap_token(api: Api) -> None:
    pat = api.post("/api/api-tokens", {"name": "ci", "role": "Admin"}).json["token"]
    assert "malformed" in refused(pat)


def test_well_formed_but_unknown_token_is_refused(api: Api) -> None:
    assert "not known" in refused(rules.FORMAT.mint(b"\x01" * 20))


def test_the_last_use_goes_to_exactly_one_of_two_racing_agents(api: Api, monkeypatch) -> None:
    # Given a token with one use left, and agent B redeeming it between agent A's read of the
    # token and A's write (both saw one use remaining)
    token = issue(api, maxUses=2)
    service.redeem(token["token"], "c" * 32)
    real_enrolled = service._enrolled
    results: dict[str, object] = {}

    def b_races_in(item: Any, agent_id: str) -> bool:
        if agent_id == AGENT_A and AGENT_B not in results:
            results[AGENT_B] = service.redeem(token["token"], AGENT_B)
        return real_enrolled(item, agent_id)

    monkeypatch.setattr(service, "_enrolled", b_races_in)
    # When A's conditional write lands second
    with pytest.raises(InvalidToken) as caught:
        service.redeem(token["token"], AGENT_A)
    # Then B got the last use, A none, and the token counts exactly its two uses
    assert isinstance(results[AGENT_B], service.Grant)
    assert "exhausted" in caught.value.detail
    assert uses(api, token) == 2


def test_one_agent_racing_itself_takes_one_use(api: Api, monkeypatch) -> None:
    # Given agent A's first message is sent twice at once
    token = issue(api, maxUses=5)
    real_enrolled = service._enrolled
    raced: dict[str, object] = {}

    def a_races_itself(item: Any, agent_id: str) -> bool:
        answer = real_enrolled(item, agent_id)
        if not raced:
            raced["first"] = None
            raced["first"] = service.redeem(token["token"], AGENT_A)
        return answer

    monkeypatch.setattr(service, "_enrolled", a_races_itself)
    # When both redeem / Then both are admitted, for one use
    grant = service.redeem(token["token"], AGENT_A)
    assert grant == raced["first"]
    assert uses(api, token) == 1


def test_a_token_only_ever_yields_its_own_tenant(api: Api) -> None:
    # Given a token of tenant A and one of tenant B, and the same agent id in both
    token_a = issue(api, tenant="acme")
    token_b = issue(api, tenant="beta")
    grant_b = service.redeem(token_b["token"], AGENT_A)
    grant_a = service.redeem(token_a["token"], AGENT_A)
    # Then each token yields only its own tenant, and uses are counted per tenant
    assert (grant_a.tenant, grant_a.token_id) == ("acme", token_a["id"])
    assert (grant_b.tenant, grant_b.token_id) == ("beta", token_b["id"])
    assert uses(api, token_a) == 1 and uses(api, token_b, tenant="beta") == 1
    # And tenant B's token never enrolls into A (B's exhausted token does not become A's)
    assert "exhausted" in refused(token_b["token"], AGENT_B)


def test_pool_tokens_redeem_into_the_pools_group_with_its_labels(api: Api) -> None:
    group = api.post("/api/groups", {"name": "web"}).json["id"]
    pool = api.post("/api/tokens/pools", {"name": "asg", "groupId": group, "quotaPerHour": 3,
                                          "labels": {"asg": "web"}, "usesPerToken": 1}).json
    token = api.post(f"/api/tokens/pools/{pool['id']}/issue").json
    grant = service.redeem(token["token"], AGENT_A)
    assert (grant.group_id, grant.labels) == (group, {"asg": "web"})
    assert "exhausted" in refused(token["token"], AGENT_B)
