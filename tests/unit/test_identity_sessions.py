"""Session ids are replaced at every binding and claim; the OAuth state names its session by digest."""

from __future__ import annotations

import itertools

import pytest

from membergate.domain.errors import InvalidRequestError
from membergate.domain.model import Member
from membergate.domain.tokens import token_key
from membergate.services.identity import begin_claim, begin_discord_link, complete_discord_link, create_claim_link
from tests.support.harness import T0, Harness

pytestmark = pytest.mark.unit
REDIRECT = "https://m.example/auth/discord/callback"


def tokens():
    counter = itertools.count(1)
    return lambda: f"tok{next(counter)}"


def link(h: Harness, session_id: str | None, user: str, token=None):
    start = begin_discord_link(stores=h.stores, identity=h.identity, session_id=session_id, plan_id="pln_monthly",
                               redirect_uri=REDIRECT, now=T0, token=token or tokens())
    state = start.authorize_url.split("state=")[1].split("&")[0]
    h.identity.codes["code-" + user] = user
    result = complete_discord_link(stores=h.stores, identity=h.identity, cipher=h.cipher, access_queue=h.queue,
                                   session_id=start.session.id, code="code-" + user, state=state,
                                   redirect_uri=REDIRECT, now=T0, new_member_id=lambda: "mbr_new")
    return start, result


def test_identity_binding_issues_a_fresh_session_and_revokes_the_one_it_started_in():
    h = Harness()
    # Given a session planted before the member connects
    planted = h.stores.sessions.create_session("planted", T0 + 3600)
    # When the member connects Discord in it
    start, result = link(h, planted.id, "555555555555555555")
    # Then the state was bound to the planted session, but the member now has a new one, and the old is gone
    assert start.session.id == "planted"
    assert result.session.id != "planted" and result.session.member_id == result.member.id
    assert h.stores.sessions.get_session("planted", T0) is None
    assert h.stores.sessions.get_session(result.session.id, T0).member_id == result.member.id


def test_identity_oauth_state_stores_the_session_digest_not_the_session_id():
    h = Harness()
    begin_discord_link(stores=h.stores, identity=h.identity, session_id=None, plan_id=None, redirect_uri=REDIRECT,
                       now=T0, token=tokens())
    ((session_ref, _, _),) = h.stores.sessions.states.values()
    assert session_ref == token_key("tok1")


def test_identity_claim_replaces_any_existing_session():
    h = Harness()
    h.stores.members.create(Member("mbr_paid", T0))
    claim = create_claim_link(h.stores, "mbr_paid", T0, token=lambda: "claimtok")
    planted = h.stores.sessions.create_session("planted", T0 + 3600)
    session = begin_claim(h.stores, claim.token, planted.id, T0, token=lambda: "fresh")
    assert session.id == "fresh" and session.member_id == "mbr_paid"
    assert h.stores.sessions.get_session("planted", T0) is None


def test_identity_callback_in_a_browser_without_the_state_session_is_refused():
    h = Harness()
    start = begin_discord_link(stores=h.stores, identity=h.identity, session_id=None, plan_id=None,
                               redirect_uri=REDIRECT, now=T0, token=tokens())
    state = start.authorize_url.split("state=")[1].split("&")[0]
    h.identity.codes["c"] = "555555555555555555"
    with pytest.raises(InvalidRequestError, match="another browser"):
        complete_discord_link(stores=h.stores, identity=h.identity, cipher=h.cipher, access_queue=h.queue,
                              session_id=token_key(start.session.id), code="c", state=state, redirect_uri=REDIRECT,
                              now=T0, new_member_id=lambda: "mbr_x")


def test_identity_binding_keeps_the_discord_handle_and_follows_a_rename():
    h = Harness()
    user = "555555555555555555"
    # Given Discord names the account "Alice (@alice)" at the first binding
    h.identity.handles[user] = "Alice (@alice)"
    _, first = link(h, None, user)
    # When the member renames it and connects again
    h.identity.handles[user] = "Ally (@ally)"
    _, second = link(h, first.session.id, user)
    # Then the stored member carries the handle Discord gave last, on the same membership
    assert first.member.handle(first.member.identities[0].platform) == "Alice (@alice)"
    stored = h.stores.members.get(second.member.id)
    assert second.member.id == first.member.id and [i.handle for i in stored.identities] == ["Ally (@ally)"]
