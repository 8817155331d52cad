"""Fixtures for integration tests: the app over moto, with a stand-in identity provider."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from tests.support.api import Api
from tests.support.idp import IdentityProvider


class SteppedClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current (fixed) time."""
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> SteppedClock:
    """The clock the app sees."""
    return SteppedClock()


@pytest.fixture
def moto_config() -> dict[str, Any] | None:
    """moto's configuration (a test module that runs state machines overrides it)."""
    return None


@pytest.fixture
def aws(clock: SteppedClock, moto_config: dict[str, Any] | None) -> Iterator[None]:
    """Fresh AWS (moto) with every table, the app wired to the test clock, and every cache
    the process keeps of what those tables held forgotten."""
    import app  # noqa: F401 - registers every model and route
    from chalicelib.agents import service as agents
    from chalicelib.bootstrap import all_models, bootstrap
    from chalicelib.configurations import delivery
    from chalicelib.core.db import create_tables
    from chalicelib.groups import desired
    from chalicelib.groups import service as groups
    from chalicelib.policies import service as policies
    from chalicelib.tenants import service as tenants

    with mock_aws(config=moto_config):  # type: ignore[arg-type]
        create_tables(all_models())
        tenants.forget_known()
        groups.forget_known()
        agents.forget_cached()
        desired.forget()
        delivery.forget_deliveries()
        policies.forget_programs()
        bootstrap(clock=clock)
        yield
    bootstrap()


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    """The identity provider the app trusts."""
    from chalicelib.core.auth import OidcVerifier, set_oidc_verifier
    from chalicelib.core.settings import settings

    provider = IdentityProvider()
    set_oidc_verifier(OidcVerifier(settings(), fetch=provider.fetch))
    yield provider
    set_oidc_verifier(None)


@pytest.fixture
def api(aws: None, idp: IdentityProvider) -> Iterator[Api]:
    """The app over HTTP-shaped events, as any role of any tenant."""
    import app

    with Client(app.app) as client:
        yield Api(client, idp)
