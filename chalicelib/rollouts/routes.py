"""Routes of rollouts: list, create, read (ETag), and start, pause, resume, abort, roll back."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.rollouts.service")
_COMMON: dict[str, Any] = {"resource": "rollout", "tag": "Rollouts"}


@operation(bp, "GET", "/api/rollouts", name="rollouts.list",
           summary="List rollouts (filter by status, group, configuration)",
           query="RolloutQuery", response="Rollout", paged=True, **_COMMON)
def list_rollouts(call: Call) -> Reply:
    """The tenant's rollouts, paged."""
    return Reply(service.list_rollouts(call.tenant, call.page, call.query))


@operation(bp, "POST", "/api/rollouts", name="rollouts.create",
           summary="Create a rollout of a published version onto a group (not started)",
           body="RolloutCreate", response="Rollout", status=201,
           problems=("not-found", "conflict"),
           response_headers=(("Location", "The new rollout's URL."),), **_COMMON)
def create_rollout(call: Call) -> Reply:
    """A new rollout in state created."""
    created, revision = service.create(call.principal, call.body)
    return Reply(created, resource_id=created.id, revision=revision,
                 headers={"Location": f"/api/rollouts/{created.id}"})


@operation(bp, "GET", "/api/rollouts/{id}", name="rollouts.get",
           summary="Read a rollout, with its progress per wave and overall",
           response="Rollout", etag=True, problems=("not-found",), **_COMMON)
def get_rollout(call: Call) -> Reply:
    """One rollout and its ETag."""
    found, revision = service.get(call.tenant, call.params["id"])
    return Reply(found, revision=revision)


def _action(verb: str, summary: str, problems: tuple[str, ...] = ()) -> None:
    @operation(bp, "POST", f"/api/rollouts/{{id}}/{verb}", name=f"rollouts.{verb}",
               summary=summary, body="RolloutAction", response="Rollout", etag=True,
               problems=("not-found", "conflict", *problems), **_COMMON)
    def act(call: Call) -> Reply:
        found, revision = getattr(service, verb)(call.principal, call.params["id"],
                                                 call.if_match, call.body)
        return Reply(found, revision=revision)

    act.__doc__ = f"{summary}, honouring If-Match; an illegal move is a 409 naming the state."


_action("start", "Start a created rollout: checks the version, the group and the rollout "
                 "policies, then opens its waves one by one", ("policy-denied",))
_action("pause", "Pause a running rollout: no further wave opens")
_action("resume", "Resume a paused rollout from where it stopped")
_action("abort", "Stop a rollout for good; agents already moved keep the new version")
_action("rollback", "Return every agent that received the new version to the previous one")
