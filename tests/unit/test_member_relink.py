"""The member's own relink: the form proof, the account that decides, and honest reporting when removal fails."""

from __future__ import annotations

import pytest

from membergate.domain.errors import ConflictError, IdentityRequiredError, InvalidRequestError, RetryableError
from membergate.domain.model import AccessRecord, AccessState, Identity, Member, Platform
from membergate.services.relink import relink_member, relink_proof, relinking_member
from tests.support.harness import GUILD, ROLE, T0, Harness

pytestmark = pytest.mark.unit

OLD, NEW = "555555555555555555", "666666666666666666"


def harness_with_granted_member() -> Harness:
    h = Harness()
    h.member("mbr_1", OLD)
    h.connector.guild(GUILD).members[OLD] = {ROLE}
    h.stores.access.save(AccessRecord("mbr_1", "com_1", AccessState.GRANTED, roles=(ROLE,), granted_at=T0))
    return h


def test_relinking_member_needs_this_sessions_proof_and_a_bound_account():
    # Given a member's session and the proof its manage page carries
    h = harness_with_granted_member()
    session = h.stores.sessions.create_session("sess-1", T0 + 3600)
    h.stores.sessions.set_session_member("sess-1", "mbr_1")
    session = h.stores.sessions.get_session("sess-1", T0)
    # When the proof is right, forged, another session's, or there is no session / Then only the first passes
    assert relinking_member(h.stores, session, relink_proof("sess-1"), Platform.DISCORD).id == "mbr_1"
    for proof in ("forged", relink_proof("sess-2"), None, "é\r\n"):
        with pytest.raises(InvalidRequestError):
            relinking_member(h.stores, session, proof, Platform.DISCORD)
    with pytest.raises(IdentityRequiredError):
        relinking_member(h.stores, None, relink_proof("sess-1"), Platform.DISCORD)
    with pytest.raises(IdentityRequiredError):  # nothing to replace on Telegram
        relinking_member(h.stores, session, relink_proof("sess-1"), Platform.TELEGRAM)


def test_relink_member_moves_the_account_and_reports_where_the_old_one_kept_access():
    # Given a member whose old account has the role, and Discord failing the removal
    h = harness_with_granted_member()
    h.connector.fail_on["revoke_role"] = [RetryableError("Discord answered HTTP 503")]
    # When the member moves to a new account
    moved = relink_member(h.stores, h.queue, {Platform.DISCORD: h.connector}, "mbr_1",
                          Identity(Platform.DISCORD, NEW, "@new"), T0)
    # Then the membership is the new account's, and the failure is reported (not claimed done)
    assert moved is not None and moved.previous == OLD and moved.revoked == []
    assert [community for community, _ in moved.failed] == ["com_1"]
    assert h.stores.members.find_by_identity(Platform.DISCORD, NEW).id == "mbr_1"
    assert h.stores.members.find_by_identity(Platform.DISCORD, OLD) is None
    assert h.stores.members.get("mbr_1").handle(Platform.DISCORD) == "@new"


def test_relink_member_same_account_moves_nothing_and_another_members_account_is_refused():
    # Given a member, and another member bound to a second account
    h = harness_with_granted_member()
    h.stores.members.create(Member("mbr_2", T0))
    h.stores.members.bind_identity("mbr_2", Identity(Platform.DISCORD, NEW))
    # When the member picks their own account again, then the other member's
    same = relink_member(h.stores, h.queue, {Platform.DISCORD: h.connector}, "mbr_1",
                         Identity(Platform.DISCORD, OLD, "@renamed"), T0)
    with pytest.raises(ConflictError, match="own membership"):
        relink_member(h.stores, h.queue, {Platform.DISCORD: h.connector}, "mbr_1", Identity(Platform.DISCORD, NEW), T0)
    # Then nothing moved (the new name is kept), and the old account still has its role
    assert same is None and h.stores.members.get("mbr_1").handle(Platform.DISCORD) == "@renamed"
    assert h.connector.guild(GUILD).members[OLD] == {ROLE}
