"""An HTTP client for the app in-process (Chalice's test client) with tokens per role."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

from tests.support.idp import IdentityProvider


@dataclass
class Answer:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        """A response header, case-insensitively."""
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


class Api:
    """Calls the app as a user of a role and tenant, or with any token."""

    def __init__(self, client: Client, idp: IdentityProvider) -> None:
        self.client = client
        self.idp = idp

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             role: str = "Admin", tenant: str = "acme", sub: str = "alice",
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> Answer:
        """Send one request; by default as an Admin of tenant ``acme``."""
        sent = {"Content-Type": "application/json", "Host": "api.example.test"}
        if token is None:
            token = self.idp.token(role, tenant=tenant, sub=sub)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.client.http.request(method, path, headers=sent, body=data)
        return Answer(response.status_code, dict(response.headers), response.body)

    def get(self, path: str, **kwargs: Any) -> Answer:
        """GET ``path``."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        """POST ``body`` to ``path``."""
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        """PUT ``body`` to ``path``."""
        return self.call("PUT", path, body, **kwargs)
