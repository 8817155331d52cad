"""Documented endpoints that are not built yet answer a clear 501, never a 404."""

from __future__ import annotations

import pytest

from chalicelib.meta.planned import PLANNED
from tests.support.api import Api


@pytest.mark.parametrize(("method", "path", "feature"), PLANNED[::6])
def test_planned_endpoint_is_501(api: Api, method: str, path: str, feature: str) -> None:
    concrete = path.replace("{id}", "x1").replace("{version}", "1").replace("{sourceId}", "s1")
    answer = api.call(method, concrete)
    assert answer.status == 501
    assert answer.json["type"] == "https://docs.ampora.io/errors/not-implemented"
    assert feature in answer.json["detail"]


def test_planned_endpoint_still_needs_a_token(api: Api) -> None:
    assert api.call("GET", "/api/agents", token="").status == 401
