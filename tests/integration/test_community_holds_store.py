"""The DynamoDB community holds and the in-memory fake behave alike: hold once, probe once a minute, release with its members."""

from __future__ import annotations

import pytest

from membergate.domain.holds import PROBE_INTERVAL, CommunityHold
from tests.support.aws import aws_stack
from tests.support.fakes import fake_stores

pytestmark = pytest.mark.integration
T0 = 1_800_000_000


@pytest.fixture(params=["dynamodb", "fake"])
def holds(request):
    if request.param == "fake":
        yield fake_stores().holds
        return
    with aws_stack():
        from membergate import bootstrap
        from membergate.config import ProcessorSettings

        yield bootstrap.stores(ProcessorSettings.from_env()).holds


def test_holds_keep_the_first_hold_and_release_its_members(holds):
    # Given a hold recorded twice (two refusals racing) and three members behind it, one twice
    first = holds.hold(CommunityHold("com_1", "missing_permissions", "give the bot Manage Roles", T0))
    again = holds.hold(CommunityHold("com_1", "missing_access", "invite the bot again", T0 + 5))
    for member_id in ("mbr_2", "mbr_1", "mbr_3", "mbr_1"):
        holds.note_member(again, member_id)
    # When it is read, then released
    standing = holds.get("com_1")
    released = holds.release("com_1")
    # Then the first hold stood, every member held is returned once, and nothing is left
    assert first == again == standing and standing.refusal == "missing_permissions"
    assert released == ["mbr_1", "mbr_2", "mbr_3"]
    assert holds.get("com_1") is None and holds.release("com_1") == []


def test_holds_probe_at_most_once_per_interval_and_a_new_hold_starts_empty(holds):
    # Given a hold
    holds.hold(CommunityHold("com_1", "missing_permissions", "fix", T0))
    # When two resyncs try to probe at once, then one a minute later
    claims = [holds.claim_probe("com_1", T0 + 1), holds.claim_probe("com_1", T0 + 2),
              holds.claim_probe("com_1", T0 + 1 + PROBE_INTERVAL)]
    # Then the first and the one a minute later probe; another community has no hold to probe
    assert claims == [True, False, True] and holds.claim_probe("com_2", T0) is False
    assert holds.get("com_1").probed_at == T0 + 1 + PROBE_INTERVAL
    # And a hold after a release starts without the members of the last one
    holds.note_member(holds.get("com_1"), "mbr_old")
    holds.release("com_1")
    later = holds.hold(CommunityHold("com_1", "missing_permissions", "fix", T0 + 100))
    holds.note_member(later, "mbr_new")
    assert holds.release("com_1") == ["mbr_new"]
