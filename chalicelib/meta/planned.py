"""Documented endpoints that this build does not provide yet: each answers 501.

The REST catalogue (``spec/rest-api.md``) promises these; until their feature
lands they answer a clear ``not-implemented`` problem instead of a 404, and the
README lists them. A feature that builds one removes its line here.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.http import Call, operation
from chalicelib.core.problems import NotImplementedYet

bp = Blueprint(__name__)

#: (method, path, feature) of every catalogue endpoint not built yet.
PLANNED: tuple[tuple[str, str, str], ...] = (
    ("GET", "/api/git-sources", "GitOps"),
    ("POST", "/api/git-sources", "GitOps"),
    ("POST", "/api/git-sources/{id}/sync", "GitOps"),
    ("POST", "/api/git/webhook/{sourceId}", "GitOps"),
    ("GET", "/api/federation/peers", "federation"),
    ("POST", "/api/federation/peers", "federation"),
    ("GET", "/api/federation/agents", "federation"),
    ("GET", "/api/federation/ping", "federation"),
    ("POST", "/api/federation/handover/redeem", "federation"),
    ("POST", "/api/federation/rollouts", "federation"),
)


def _name(method: str, path: str) -> str:
    words = [p.strip("{}").replace("-", "_") for p in path.split("/")[2:]]
    return "planned." + "_".join([method.lower(), *words])


def _declare(method: str, path: str, feature: str) -> None:
    def not_built(call: Call) -> None:
        raise NotImplementedYet(f"{method} {path} ({feature}) is not built in this release; "
                                "the README lists what is.")

    operation(bp, method, path, name=_name(method, path), resource=feature,
              summary=f"Not built yet ({feature}): answers 501", tag="Not built yet",
              problems=("not-implemented",))(not_built)


for _method, _path, _feature in PLANNED:
    _declare(_method, _path, _feature)
