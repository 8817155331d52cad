"""``/api/tokens/pools`` beside ``/api/tokens/{id}``: the literal segment wins everywhere."""

from __future__ import annotations

import pytest
from chalice.local import RouteMatcher

from chalicelib.local.routing import RouteTable


@pytest.fixture(scope="module")
def routes() -> dict[str, list[str]]:
    import app

    return {path: list(methods) for path, methods in app.app.routes.items()}


@pytest.mark.parametrize(("path", "template", "params"), [
    ("/api/tokens", "/api/tokens", {}),
    ("/api/tokens/pools", "/api/tokens/pools", {}),
    ("/api/tokens/0190abc", "/api/tokens/{id}", {"id": "0190abc"}),
    ("/api/tokens/0190abc/revoke", "/api/tokens/{id}/revoke", {"id": "0190abc"}),
    ("/api/tokens/pools/p1", "/api/tokens/pools/{id}", {"id": "p1"}),
    ("/api/tokens/pools/p1/issue", "/api/tokens/pools/{id}/issue", {"id": "p1"}),
])
def test_local_stack_and_test_client_route_alike(routes: dict[str, list[str]], path: str,
                                                 template: str, params: dict[str, str]) -> None:
    # The local stack's gateway (API Gateway's rules) ...
    match = RouteTable(routes).resolve(path)
    assert match is not None and (match.template, match.params) == (template, params)
    # ... and Chalice's own matcher (its test client and `chalice local`) agree
    chalice_match = RouteMatcher(list(routes)).match_route(path)
    assert (chalice_match.route, chalice_match.captured) == (template, params)
