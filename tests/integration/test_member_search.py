"""GET /admin/members?q=: exact ids, case-insensitive prefixes of handles, names and emails, paged."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from membergate.domain.model import Identity, Member, Platform
from tests.integration.test_admin_console_api import _stores, call
from tests.support.aws import aws_stack

pytestmark = pytest.mark.integration
T0 = 1_800_000_000


def seed() -> None:
    stores = _stores()
    people = [
        ("mbr_01", Identity(Platform.DISCORD, "700000000000000011", "Alice (@alice_w)"), "alice@example.com"),
        ("mbr_02", Identity(Platform.TELEGRAM, "424242", "@Bob_the_builder"), "b.jones@example.org"),
        ("mbr_03", Identity(Platform.DISCORD, "700000000000000033", "Alicia Keys"), None),
        ("mbr_04", None, "carol@example.com"),
    ]
    for member_id, identity, email in people:
        stores.members.create(Member(member_id, T0))
        if identity is not None:
            stores.members.bind_identity(member_id, identity)
        if email is not None:
            stores.contacts.set_email(member_id, email)


def found(q: str, extra: str = "") -> list[str]:
    status, body = call("GET", f"/admin/members?q={quote(q)}{extra}")
    assert status == 200, body
    return [m["id"] for m in body["members"]]


@pytest.mark.parametrize("q,ids", [
    ("ali", ["mbr_01", "mbr_03"]),          # name prefix, any case
    ("ALICE", ["mbr_01"]),                  # "alice" prefixes "Alice (@alice_w)" only ("alicia" does not start with it)
    ("@alice", ["mbr_01"]),                 # the handle inside the name
    ("bob_the", ["mbr_02"]),                # a leading @ is optional
    ("keys", ["mbr_03"]),                   # any word of a name
    ("carol@ex", ["mbr_04"]),               # an email, once the query reaches its @
    ("B.JONES@", ["mbr_02"]),
    ("424242", ["mbr_02"]),                 # a platform id, exact
    ("mbr_03", ["mbr_03"]),                 # a member id, exact
    ("4242", []),                           # ids are never prefixes
    ("nobody", []),
])
def test_member_search_matches_ids_exactly_and_names_handles_emails_by_prefix(q, ids):
    with aws_stack():
        seed()
        assert found(q) == ids


def test_member_search_pages_with_the_list_cursor():
    with aws_stack():
        # Given five members called Sam
        stores = _stores()
        for n in range(5):
            stores.members.create(Member(f"mbr_s{n}", T0))
            stores.members.bind_identity(f"mbr_s{n}", Identity(Platform.TELEGRAM, f"9000{n}", f"Sam {n}"))
        # When searching two at a time
        seen, cursor = [], None
        for _ in range(5):
            status, body = call("GET", "/admin/members?q=sam&limit=2" + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200 and len(body["members"]) <= 2
            seen += [m["id"] for m in body["members"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        # Then every Sam comes once, in order
        assert seen == [f"mbr_s{n}" for n in range(5)]


@pytest.mark.parametrize("q", ["%00", "a%0Ab", "x" * 129, "%C3%A9%F0%9F%98%80", "%ff", ""])
def test_member_search_hostile_or_odd_query_is_400_or_empty_never_500(q):
    with aws_stack():
        seed()
        status, body = call("GET", f"/admin/members?q={q}")
        assert status in (200, 400), body
        assert "error" in body if status == 400 else body["members"] == []
