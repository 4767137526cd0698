"""Creator controls through the running local stack: a manual grant and an access code, end to end."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from infra.local.client import Client
from tests.e2e.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.e2e


def _offer(stack, guild: str, role: str, price_id: str) -> str:
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": price_id, "unit_amount": 900, "currency": "eur", "interval": "month"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": f"Guild {guild[-3:]}", "guild_id": guild, "role_id": role, "locale": "fr"}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Mensuel", "stripe_price_ids": [price_id], "grants": [{"community_id": community["id"]}]})
    assert plan.status == 201, plan.text
    return plan.json()["id"]


def _member_ids(stack) -> set[str]:
    ids, cursor = set(), None
    while True:
        page = stack.get("/admin/members?limit=100" + (f"&cursor={cursor}" if cursor else ""), admin=True).json()
        ids |= {m["id"] for m in page["members"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def _connect(stack, plan_id: str, username: str) -> tuple[Client, str]:
    """A member's browser that went through the identity step (Discord) on the join page; -> (browser, member id)."""
    before = _member_ids(stack)
    browser = Client(stack.base_url, ADMIN_TOKEN)
    authorize = urlsplit(browser.get(f"/auth/discord/start?plan_id={plan_id}").location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = browser.post(authorize.path, form={**params, "username": username, "decision": "allow"})
    page = browser.follow(browser.get(back.location))
    assert page.status == 200 and f"/join/{plan_id}/code" in page.text, page.text[-500:]
    (member_id,) = _member_ids(stack) - before
    return browser, member_id


def _holders(stack, guild: str) -> dict:
    return stack.get(f"/_local/discord/guilds/{guild}").json()["members"]


def test_access_code_redeemed_on_the_join_page_gives_the_role_and_a_second_use_is_refused_in_french(stack):
    # Given a one-use code for 7 days, and two members who connected Discord on the join page
    guild, role = "955600000000000001", "955600000000000002"
    plan_id = _offer(stack, guild, role, "price_e2e_codes")
    code = stack.post("/admin/access-codes", admin=True, json_body={"plan_id": plan_id, "days": 7, "uses": 1, "expires_at": None})
    assert code.status == 201, code.text
    first, first_id = _connect(stack, plan_id, "code-ana")
    second, _ = _connect(stack, plan_id, "code-ben")
    # When the first types it in the join page's form, then the second
    redeemed = first.post(f"/join/{plan_id}/code", form={"code": code.json()["code"]})
    stack.post("/_local/drain")
    refused = second.post(f"/join/{plan_id}/code", form={"code": code.json()["code"]})
    # Then the first is back on the join page, told it worked, and has the role; the second is told why not, in French
    assert redeemed.status == 303
    assert "Code accepté" in first.follow(redeemed).text
    (user_id,) = [u for u, roles in _holders(stack, guild).items() if role in roles]
    member = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0]
    assert member["id"] == first_id and member["entitlements"][0]["state"] == "active"
    assert refused.status == 409 and "autant de fois" in refused.text
    assert refused.headers["content-type"].startswith("text/html")


def test_manual_grant_gives_the_role_and_ending_it_takes_it_away_through_the_dispatcher(stack):
    # Given a member who connected Discord but never paid
    guild, role = "955700000000000001", "955700000000000002"
    plan_id = _offer(stack, guild, role, "price_e2e_grants")
    _, member_id = _connect(stack, plan_id, "guest-cleo")
    # When the creator gives them 30 days
    granted = stack.post(f"/admin/members/{member_id}/grants", admin=True,
                         json_body={"plan_id": plan_id, "days": 30, "reason": "guest speaker"})
    stack.post("/_local/drain")
    # Then they get the role
    assert granted.status == 201, granted.text
    assert any(role in roles for roles in _holders(stack, guild).values())
    # When the creator ends the grant
    ended = stack.request("DELETE", f"/admin/grants/{granted.json()['id']}?reason=talk%20over", admin=True)
    stack.post("/_local/drain")
    # Then the role goes, and the audit log tells who did both and why
    assert ended.status == 200, ended.text
    assert not any(role in roles for roles in _holders(stack, guild).values())
    audit = stack.get("/admin/audit?limit=200", admin=True).json()["entries"]
    mine = [(e["action"], e["reason"]) for e in audit if e["member_id"] == member_id]
    assert mine == [("grant.create", "guest speaker"), ("grant.end", "talk over")]


def test_new_admin_routes_answer_hostile_input_in_the_envelope(stack):
    hostile = [
        stack.request("DELETE", "/admin/grants/mgr_x%0D%0Aevil?reason=x", admin=True),
        stack.post("/admin/access-codes", admin=True, data=b"\xff\xfe", headers={"Content-Type": "application/json"}),
        stack.post("/admin/access-codes", admin=True, data=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"}),
        stack.post("/admin/members/mbr_x/grants", admin=True, data=b"{" + b" " * 300_000 + b"}",
                   headers={"Content-Type": "application/json"}),
        stack.get("/admin/audit?cursor=%C3%A9", admin=True),
        stack.get("/admin/removals/preview?until=1", headers={"Authorization": "Bearer \u00e9".encode("utf-8").decode("latin-1")}),
    ]
    assert [r.status for r in hostile] == [404, 400, 400, 413, 400, 401]
    assert all(set(r.json()) == {"error"} for r in hostile)


def test_removal_when_grace_runs_out_is_listed_and_undone_back_into_the_guild(stack):
    from tests.e2e.test_local_stack import buy_through_the_stack

    # Given a member who paid a monthly plan, whose card then declines every renewal
    guild, role = "955800000000000001", "955800000000000002"
    user_id, customer = buy_through_the_stack(stack, guild=guild, role=role, kind="subscription", username="undo-eve",
                                              price={"price_id": "price_e2e_undo", "unit_amount": 900, "currency": "eur",
                                                     "interval": "month", "product_name": "Monthly undo"})
    since = stack.get("/_local/clock").json()["epoch"]
    assert stack.post(f"/_local/stripe/_control/customers/{customer}/payment_method",
                      json_body={"behaviour": "declines"}).status == 200
    # When the renewal fails and grace (3 days) runs out on the sandbox clock
    for days in (31, 4):
        assert stack.post("/_local/clock", json_body={"advance_seconds": days * 86_400}).status == 200
    stack.post("/_local/drain")
    # Then the role is gone, and the removal is listed once, with its reason
    assert role not in _holders(stack, guild).get(user_id, [])
    member_id = stack.get(f"/admin/members?discord_user_id={user_id}", admin=True).json()["members"][0]["id"]
    listed = stack.get(f"/admin/removals?since={since}&limit=200", admin=True)
    assert listed.status == 200, listed.text
    mine = [r for r in listed.json()["removals"] if r["member_id"] == member_id]
    assert [(r["reason"], r["platform"]) for r in mine] == [("grace_expired", "discord")]
    # When the creator undoes it
    undone = stack.post(f"/admin/removals/{mine[0]['id']}/undo", admin=True, json_body={"reason": "bank glitch"})
    stack.post("/_local/drain")
    # Then the member has the role back and was told, and a second undo is refused
    assert undone.status == 200, undone.text
    assert undone.json()["billing_restarted"] is False and "/join/" in undone.json()["next_step"]
    assert undone.json()["grant"]["until"] is not None  # the undo window, not forever
    assert role in _holders(stack, guild)[user_id]
    told = [d["content"] for d in stack.get("/_local/discord/dms").json()["dms"] if d["user_id"] == user_id]
    assert len([t for t in told if "you have your access to Guild undo-eve back" in t]) == 1, told
    again = stack.post(f"/admin/removals/{mine[0]['id']}/undo", admin=True, json_body={"reason": "twice"})
    assert again.status == 409 and again.json()["error"]["code"] == "already_undone"


def test_removal_routes_answer_hostile_input_in_the_envelope(stack):
    json_type = {"Content-Type": "application/json"}
    hostile = [
        stack.post("/admin/removals/rmv_x%0D%0Aevil/undo", admin=True, json_body={"reason": "x"}),
        stack.post("/admin/removals/rmv_nope/undo", admin=True, data=b"\xff\xfe", headers=json_type),
        stack.post("/admin/removals/rmv_nope/undo", admin=True, data=b"[" * 5000 + b"]" * 5000, headers=json_type),
        stack.post("/admin/removals/rmv_nope/undo", admin=True, data=b"{" + b" " * 300_000 + b"}", headers=json_type),
        stack.post("/admin/removals/rmv_nope/undo", admin=True, json_body={"reason": "r\u00e9el \U0001f600"}),
        stack.get("/admin/removals?cursor=%C3%A9", admin=True),
        stack.get("/admin/removals?since=1", headers={"Authorization": "Bearer \u00e9".encode("utf-8").decode("latin-1")}),
        stack.request("DELETE", "/admin/removals/rmv_nope/undo", admin=True),
    ]
    assert [r.status for r in hostile] == [404, 400, 400, 413, 404, 400, 401, 405]
    assert all(set(r.json()) == {"error"} for r in hostile)


def test_founder_plan_sells_its_last_seat_once_and_an_expired_checkout_puts_it_back_on_sale(stack):
    # Given a one-seat founder plan and two members who connected Discord
    guild, role = "955900000000000001", "955900000000000002"
    assert stack.post("/_local/stripe/_control/prices", json_body={
        "price_id": "price_e2e_seats", "unit_amount": 4900, "currency": "eur", "interval": "month"}).status == 200
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Guild seats", "guild_id": guild, "role_id": role, "locale": "fr"}).json()
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Fondateur", "stripe_price_ids": ["price_e2e_seats"], "grants": [{"community_id": community["id"]}],
        "seats": 1})
    assert plan.status == 201 and plan.json()["seats"] == 1, plan.text
    plan_id = plan.json()["id"]
    first, _ = _connect(stack, plan_id, "seat-ana")
    second, _ = _connect(stack, plan_id, "seat-ben")
    assert "1 place restante" in second.get(f"/join/{plan_id}").text
    # When the first starts checkout, then the second (form, then JSON)
    to_stripe = first.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    refused_page = second.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
    refused_json = second.post("/checkout", json_body={"plan_id": plan_id, "waiver": True})
    # Then the first is sent to Stripe, the second is told it is sold out (page in French, JSON envelope)
    assert to_stripe.status == 303, to_stripe.text
    assert refused_page.status == 409 and "Cette offre est complète" in refused_page.text
    assert refused_json.status == 409 and refused_json.json()["error"]["code"] == "sold_out"
    assert "Cette offre est complète" in second.get(f"/join/{plan_id}").text
    taken = stack.get(f"/admin/plans/{plan_id}", admin=True).json()
    assert (taken["seats"], taken["seats_taken"]) == (1, 1)
    # When Stripe expires the first member's unpaid session (checkout.session.expired)
    session_id = to_stripe.location.rstrip("/").split("/")[-1]
    expired = stack.post(f"/_local/stripe/v1/checkout/sessions/{session_id}/expire",
                         headers={"Authorization": "Bearer sk_test_local"})
    assert expired.status == 200, expired.text
    stack.post("/_local/drain")
    # Then the seat is on sale again and the second member gets a checkout
    assert stack.get(f"/admin/plans/{plan_id}", admin=True).json()["seats_taken"] == 0
    assert second.post("/checkout", form={"plan_id": plan_id, "waiver": "on"}).status == 303
