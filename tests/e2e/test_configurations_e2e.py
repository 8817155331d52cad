"""End-to-end: configurations over real HTTP through the local gateway."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e
V1 = "receivers:\n  otlp: {}\nexporters:\n  debug: {}\n"
V2 = "receivers:\n  otlp: {}\nexporters:\n  debug: {verbosity: detailed}\n"


def test_save_compare_and_publish_through_the_gateway(stack: LocalStack) -> None:
    # Given an Operator's configuration with two drafts
    token = stack.dev_token("Operator")
    created = stack.call("POST", "/api/configurations", token=token,
                         body={"name": "edge", "contentType": "application/yaml"})
    assert created.status == 201, created.body
    base = f"/api/configurations/{created.json()['id']}"
    for content in (V1, V2):
        saved = stack.call("POST", f"{base}/versions", token=token, body={"content": content})
        assert saved.status == 201, saved.body
    # When the two are compared / Then the gateway routes to compare, not to a version
    compared = stack.call("GET", f"{base}/versions/compare?from=1&to=2", token=token)
    assert compared.status == 200, compared.body
    assert compared.json()["changes"] == [{"path": "/exporters/debug/verbosity",
                                           "kind": "added", "old": None, "new": "detailed"}]
    as_diff = stack.call("GET", f"{base}/versions/compare?from=1&to=2", token=token,
                         headers={"Accept": "text/x-diff"})
    assert as_diff.status == 200 and as_diff.content_type == "text/x-diff"
    assert as_diff.body.decode() == compared.json()["unifiedDiff"]
    # And a version reads with its content, and publishes with the configuration's ETag
    assert stack.call("GET", f"{base}/versions/1", token=token).json()["content"] == V1
    etag = stack.call("GET", base, token=token).headers.get("ETag")
    published = stack.call("POST", f"{base}/versions/2/publish", token=token,
                           headers={"If-Match": etag})
    assert published.status == 200, published.body
    assert published.json()["status"] == "published"
