"""The policy lifecycle's pure rules: drafts, revisions, four-eyes approval, disabling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.policies import lifecycle
from chalicelib.policies.lifecycle import Author, Lifecycle, Revision

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE = Author(actor={"type": "user", "id": "alice", "name": "alice"}, keys=("user:alice",))
BOB = Author(actor={"type": "user", "id": "bob", "name": "bob"}, keys=("user:bob",))
CAROL = Author(actor={"type": "user", "id": "carol", "name": "carol"}, keys=("user:carol",))
#: A token Alice created: it stands for her too.
ALICES_TOKEN = Author(actor={"type": "pat", "id": "tok1", "name": "ci"},
                      keys=("pat:tok1", "user:alice"))


def approved_policy(expression: str = "true", mode: str = "enforce") -> Lifecycle:
    """A policy Alice wrote and Bob approved."""
    return lifecycle.approve(lifecycle.create(expression, mode, ALICE, T0), BOB, T0)


def test_a_new_policy_is_a_draft_with_nothing_in_force() -> None:
    # When Alice creates a policy
    lc = lifecycle.create("agent.id != ''", "enforce", ALICE, T0)
    # Then its first revision is a draft by her, and nothing is in force
    assert lc.state == "draft" and lc.in_force is None and lc.approved is None
    assert lc.draft is not None and lc.draft.number == 1 and lc.last_number == 1
    assert lc.draft.authors == (ALICE.actor,) and lc.draft.author_keys == ("user:alice",)
    assert lc.current == lc.draft


def test_approval_by_another_puts_the_draft_in_force() -> None:
    # Given Alice's draft / When Bob approves it
    lc = lifecycle.approve(lifecycle.create("true", "warn", ALICE, T0), BOB, T0)
    # Then it is in force, approved by Bob, and there is no draft left
    assert lc.state == "approved" and lc.draft is None
    assert lc.in_force is not None and lc.in_force.rule == ("true", "warn")
    assert lc.in_force.approved_by == BOB.actor and lc.in_force.approved_at == T0


@pytest.mark.parametrize("approver", [ALICE, ALICES_TOKEN], ids=["herself", "her token"])
def test_the_author_cannot_approve_her_own_draft(approver: Author) -> None:
    draft = lifecycle.create("true", "enforce", ALICE, T0)
    with pytest.raises(lifecycle.SelfApproval) as refused:
        lifecycle.approve(draft, approver, T0)
    assert refused.value.number == 1


def test_a_token_author_cannot_be_approved_by_its_creator() -> None:
    draft = lifecycle.create("true", "enforce", ALICES_TOKEN, T0)
    with pytest.raises(lifecycle.SelfApproval):
        lifecycle.approve(draft, ALICE, T0)


def test_everyone_who_edited_a_draft_is_its_author() -> None:
    # Given Alice's draft that Bob then edits
    draft = lifecycle.create("true", "enforce", ALICE, T0)
    edited = lifecycle.revise(draft, "false", "enforce", BOB, T0)
    assert edited is not None and edited.draft is not None
    assert edited.draft.authors == (ALICE.actor, BOB.actor) and edited.draft.number == 2
    # Then neither of them may approve it, but Carol may
    for author in (ALICE, BOB):
        with pytest.raises(lifecycle.SelfApproval):
            lifecycle.approve(edited, author, T0)
    assert lifecycle.approve(edited, CAROL, T0).state == "approved"


def test_editing_an_approved_policy_drafts_and_keeps_the_approved_revision_in_force() -> None:
    # Given an approved policy
    before = approved_policy("true")
    # When Carol edits its expression
    after = lifecycle.revise(before, "agent.id != ''", "enforce", CAROL, T0 + timedelta(1))
    # Then the approved revision is unchanged and still in force; the edit is revision 2
    assert after is not None
    assert after.in_force == before.in_force and after.state == "approved"
    assert after.draft is not None and after.draft.number == 2
    assert after.draft.authors == (CAROL.actor,)
    # And once Bob approves the draft, it replaces the approved revision
    approved = lifecycle.approve(after, BOB, T0)
    assert approved.in_force is not None and approved.in_force.number == 2


@pytest.mark.parametrize(("expression", "mode", "expected"), [
    ("true", "enforce", None),                   # nothing changes
    ("true", "warn", ("true", "warn")),          # a new mode is a draft too
    ("false", "enforce", ("false", "enforce")),  # a new expression is a draft
])
def test_revise_drafts_only_real_changes(expression: str, mode: str,
                                         expected: tuple[str, str] | None) -> None:
    revised = lifecycle.revise(approved_policy("true"), expression, mode, CAROL, T0)
    if expected is None:
        assert revised is None
    else:
        assert revised is not None and revised.draft is not None
        assert revised.draft.rule == expected


def test_editing_back_to_the_approved_rule_withdraws_the_draft() -> None:
    drafted = lifecycle.revise(approved_policy("true"), "false", "enforce", CAROL, T0)
    assert drafted is not None
    reverted = lifecycle.revise(drafted, "true", "enforce", CAROL, T0)
    assert reverted is not None and reverted.draft is None and reverted.state == "approved"
    with pytest.raises(lifecycle.NothingToApprove):
        lifecycle.approve(reverted, BOB, T0)


def test_numbers_never_repeat_even_after_a_withdrawn_draft() -> None:
    # Given draft 2 of an approved policy, withdrawn by editing back to the approved rule
    drafted = lifecycle.revise(approved_policy("true"), "false", "enforce", CAROL, T0)
    assert drafted is not None and drafted.draft is not None and drafted.draft.number == 2
    withdrawn = lifecycle.revise(drafted, "true", "enforce", CAROL, T0)
    assert withdrawn is not None and withdrawn.draft is None
    # When it is edited again / Then the new draft is 3, never 2 again
    again = lifecycle.revise(withdrawn, "false", "enforce", CAROL, T0)
    assert again is not None and again.draft is not None and again.draft.number == 3


def test_approving_without_a_draft_is_refused() -> None:
    with pytest.raises(lifecycle.NothingToApprove):
        lifecycle.approve(approved_policy(), CAROL, T0)


@pytest.mark.parametrize(("start_disabled", "disable", "state"), [
    (False, True, "disabled"), (True, False, "approved"),
    (False, False, None), (True, True, None),
])
def test_disabling_and_enabling(start_disabled: bool, disable: bool, state: str | None) -> None:
    start = approved_policy()
    if start_disabled:
        start = lifecycle.set_disabled(start, True) or start
    switched = lifecycle.set_disabled(start, disable)
    if state is None:
        assert switched is None
    else:
        assert switched is not None and switched.state == state


def test_a_disabled_policy_has_nothing_in_force_but_keeps_its_revisions() -> None:
    disabled = lifecycle.set_disabled(approved_policy(), True)
    assert disabled is not None and disabled.in_force is None
    assert disabled.approved is not None and disabled.state == "disabled"


def test_revisions_survive_their_stored_form() -> None:
    revision = Revision(number=3, expression="x", mode="warn", authors=(ALICE.actor,),
                        author_keys=("user:alice",), created_at=T0, approved_by=BOB.actor,
                        approved_at=T0 + timedelta(hours=1))
    assert Revision.from_dict(revision.to_dict()) == revision
