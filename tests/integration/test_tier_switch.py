"""Tier switches through the real handlers: from the manage page and the admin API, one subscription kept."""

from __future__ import annotations

import json

import pytest

from membergate import bootstrap
from membergate.domain.seats import SeatTake
from tests.integration.test_member_journey import FORM, GUILD, ROLE, USER, bind_discord, member_view, pay, subscription_of
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

VIP_ROLE = "700000000000000009"
DAY = 86_400
PRICES = {"price_tier_basic": 900, "price_tier_vip": 2500, "price_tier_vip_year": 25000}


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE, VIP_ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        yield p


def two_tiers(p: Pipeline, *, vip_seats: int | None = None, locale: str = "en") -> tuple[str, str]:
    p.sandbox.register_price("price_tier_basic", 900, "eur")
    p.sandbox.register_price("price_tier_vip", 2500, "eur")
    community = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "on_revoke": "remove_role",
        "locale": locale})
    assert community["status"] == 201, community
    com = community["body"]["id"]
    basic = p.admin("POST", "/admin/plans", body={
        "name": "Basic", "stripe_price_ids": ["price_tier_basic"], "grants": [{"community_id": com}]})
    seats = {"seats": vip_seats} if vip_seats is not None else {}
    vip = p.admin("POST", "/admin/plans", body={
        "name": "VIP", "stripe_price_ids": ["price_tier_vip"], "grants": [{"community_id": com, "role_id": VIP_ROLE}],
        **seats})
    assert basic["status"] == vip["status"] == 201, (basic, vip)
    return basic["body"]["id"], vip["body"]["id"]


def created_subscriptions(p: Pipeline) -> list[str]:
    return [e["data"]["object"]["id"] for e in p.delivered if e["type"] == "customer.subscription.created"]


def entitled_plans(p: Pipeline) -> dict[str, str]:
    return {e["plan_id"]: e["state"] for e in member_view(p)["entitlements"]}


@pytest.mark.parametrize("locale, words", [
    ("en", ("Change plan", "€25.00 / month", "Switch to VIP", "Stripe prorates the difference")),
    ("fr", ("Changer de formule", "25,00 € / mois", "Passer à VIP", "tu ne paies jamais deux fois")),
])
def test_manage_page_lists_the_other_tier_and_its_button_switches_the_same_subscription(pipeline, locale, words):
    p = pipeline
    # Given a member paying Basic, with a VIP tier in the same community
    basic, vip = two_tiers(p, locale=locale)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id = subscription_of(p)
    # (Later: two updates of one subscription in the same second are ordered by event id, not by when they happened)
    p.advance(60)
    # When they open their manage page
    page = p.call("join", "GET", f"/join/{basic}?manage=1", cookies=[cookie])
    # Then it lists VIP with its price in words and a switch form to /checkout; not Basic itself
    body = page["body"]
    assert page["statusCode"] == 200
    for word in words:
        assert word in body, word
    tiers = body.split("<ul class=tiers>")[1].split("</ul>")[0]
    assert f"data-plan='{vip}'" in tiers and f"data-plan='{basic}'" not in tiers
    assert f"action='/checkout' class=switch><input type=hidden name=plan_id value='{vip}'>" in tiers
    assert "name=price_id value='price_tier_vip'" in tiers
    # When they press the button (the form's fields, with the page's session cookie)
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&price_id=price_tier_vip&waiver=on",
                   cookies=[cookie], headers=FORM)
    p.pump()
    # Then the same subscription now bills VIP, no second one exists, and the member is on VIP
    assert reply["statusCode"] == 303 and reply["headers"]["Location"].endswith(f"/join/{vip}?switched=1"), reply
    assert created_subscriptions(p) == [sub_id]
    items = p.sandbox.subscription(sub_id)["items"]["data"]
    assert [i["price"]["id"] for i in items] == ["price_tier_vip"]
    assert entitled_plans(p) == {vip: "active"}
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}


def test_manage_page_without_a_session_or_for_a_non_member_lists_no_tiers(pipeline):
    p = pipeline
    # Given two tiers and a member bound but not paying
    basic, _vip = two_tiers(p)
    cookie = bind_discord(p, basic)
    # When the manage page is opened by them, and by a browser without a session
    mine = p.call("join", "GET", f"/join/{basic}?manage=1", cookies=[cookie])["body"]
    anonymous = p.call("join", "GET", f"/join/{basic}?manage=1")["body"]
    # Then neither shows a switch (nothing to switch from; nobody to switch)
    assert "class=tiers" not in mine and "class=tiers" not in anonymous


def test_manage_page_shows_a_sold_out_tier_without_a_button_and_the_post_is_refused_409(pipeline):
    p = pipeline
    # Given a member paying Basic, and a one-seat VIP tier whose seat was just taken by someone's checkout
    basic, vip = two_tiers(p, vip_seats=1)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id = subscription_of(p)
    seats = bootstrap.admin().stores.seats
    assert seats is not None and seats.take(vip, "mbr_someone", 1, p.clock.now()) is SeatTake.TAKEN
    # When they open the manage page, and post the switch anyway (a stale page)
    body = p.call("join", "GET", f"/join/{basic}?manage=1", cookies=[cookie])["body"]
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&waiver=on", cookies=[cookie], headers=FORM)
    # Then VIP is listed as sold out with no form, the post is a 409 page, and the subscription is unchanged
    tiers = body.split("<ul class=tiers>")[1].split("</ul>")[0]
    assert "class=sold-out" in tiers and "This offer is sold out" in tiers and "/checkout" not in tiers
    assert reply["statusCode"] == 409 and "sold out" in reply["body"] and "PATCH /admin" not in reply["body"]
    items = p.sandbox.subscription(sub_id)["items"]["data"]
    assert [i["price"]["id"] for i in items] == ["price_tier_basic"]


def member_id_of(p: Pipeline) -> str:
    return member_view(p)["id"]


def test_admin_switch_moves_the_live_subscription_prorated_and_audits_who_when_why(pipeline):
    p = pipeline
    # Given a member paying Basic, with a VIP tier in the same community
    basic, vip = two_tiers(p)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id, member_id = subscription_of(p), member_id_of(p)
    p.advance(15 * DAY)  # half-way through the month
    # When the creator switches them to VIP through the admin API
    body = {"plan_id": vip, "reason": "asked by email"}
    first = p.admin("POST", f"/admin/members/{member_id}/switch", body=body)
    p.pump()
    # Then the same subscription bills VIP (no second one), the member is on VIP with its role only
    assert first["status"] == 200, first
    assert first["body"]["subscription_id"] == sub_id
    assert (first["body"]["from_plan_id"], first["body"]["plan_id"], first["body"]["price_id"]) == (
        basic, vip, "price_tier_vip")
    assert created_subscriptions(p) == [sub_id]
    assert [i["price"]["id"] for i in p.sandbox.subscription(sub_id)["items"]["data"]] == ["price_tier_vip"]
    assert entitled_plans(p) == {vip: "active"}
    assert p.discord.guilds[GUILD].members[USER] == {VIP_ROLE}
    # and the audit log says who, when and why
    entries = [e for e in p.admin("GET", "/admin/audit")["body"]["entries"] if e["action"] == "subscription.switch"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["id"] == first["body"]["audit_id"] and entry["target"] == sub_id
    assert entry["member_id"] == member_id and entry["reason"] == "asked by email" and entry["actor"]
    assert entry["detail"] == {"from_plan_id": basic, "plan_id": vip, "price_id": "price_tier_vip"}
    # When it is asked again now the member is on VIP
    again = p.admin("POST", f"/admin/members/{member_id}/switch", body=body)
    # Then nothing is switched: 409 saying so
    assert again["status"] == 409 and again["body"]["error"]["code"] == "conflict"
    assert "already on VIP" in again["body"]["error"]["message"]
    # When the period ends
    p.advance(17 * DAY)
    p.sandbox.renew(sub_id)
    p.pump()
    # Then Stripe's renewal bills VIP plus the prorated half month (Basic credited, VIP charged): a switch, not a new sale
    paid = [e for e in p.delivered if e["type"] == "invoice.paid"][-1]["data"]["object"]
    lines = sorted((line["amount"], line["parent"]["subscription_item_details"]["proration"])
                   for line in paid["lines"]["data"])
    assert [proration for _, proration in lines] == [True, True, False]
    assert lines[0][0] < 0 < lines[1][0] and lines[2][0] == 2500
    assert entitled_plans(p) == {vip: "active"}


def test_admin_switch_without_a_live_subscription_is_409_with_what_to_do(pipeline):
    p = pipeline
    # Given a member who bound Discord but never paid
    basic, vip = two_tiers(p)
    bind_discord(p, basic)
    member_id = member_id_of(p)
    # When the creator tries to switch them
    reply = p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": vip, "reason": "gift"})
    # Then 409 no_subscription pointing to the join link and to a manual grant; nothing at Stripe
    assert reply["status"] == 409 and reply["body"]["error"]["code"] == "no_subscription", reply
    assert f"/join/{vip}" in reply["body"]["error"]["message"]
    assert f"POST /admin/members/{member_id}/grants" in reply["body"]["error"]["message"]
    assert created_subscriptions(p) == []


def test_admin_switch_onto_a_sold_out_tier_is_409_sold_out_and_the_subscription_unchanged(pipeline):
    p = pipeline
    # Given a member paying Basic and a one-seat VIP tier whose seat is taken
    basic, vip = two_tiers(p, vip_seats=1)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id, member_id = subscription_of(p), member_id_of(p)
    seats = bootstrap.admin().stores.seats
    assert seats is not None and seats.take(vip, "mbr_someone", 1, p.clock.now()) is SeatTake.TAKEN
    # When the creator switches them to VIP
    reply = p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": vip, "reason": "upgrade"})
    # Then 409 sold_out, the subscription still bills Basic, and nothing is audited
    assert reply["status"] == 409 and reply["body"]["error"]["code"] == "sold_out", reply
    # worded for the creator: how to raise the seats, not "ask the creator"
    message = reply["body"]["error"]["message"]
    assert f"PATCH /admin/plans/{vip}" in message and "seats" in message and "Ask the creator" not in message
    assert [i["price"]["id"] for i in p.sandbox.subscription(sub_id)["items"]["data"]] == ["price_tier_basic"]
    assert not [e for e in p.admin("GET", "/admin/audit")["body"]["entries"] if e["action"] == "subscription.switch"]


def test_admin_switch_hostile_input_is_4xx_in_the_envelope(pipeline):
    p = pipeline
    basic, vip = two_tiers(p)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    member_id = member_id_of(p)
    path = f"/admin/members/{member_id}/switch"
    ok = {"plan_id": vip, "reason": "why"}
    nested = "[" * 5000 + '"x"' + "]" * 5000  # written by hand: json.dumps would recurse that deep
    cases = [
        ("no token", p.call("admin_api", "POST", path, body=ok), 401),
        ("bad token non-ascii", p.call("admin_api", "POST", path, body=ok, headers={"authorization": "Bearer tökén"}), 401),
        ("unknown member", p.admin("POST", "/admin/members/mbr_nobody/switch", body=ok), 404),
        ("unknown plan", p.admin("POST", path, body={"plan_id": "pln_nope", "reason": "why"}), 404),
        ("non-ascii member id", p.admin("POST", "/admin/members/mbr_%C3%A9/switch", body=ok), 400),
        ("CR/LF in member id", p.admin("POST", "/admin/members/mbr_1%0D%0Ax/switch", body=ok), 400),
        ("CR/LF in plan id", p.admin("POST", path, body={"plan_id": "pln\r\nx", "reason": "why"}), 400),
        ("no reason", p.admin("POST", path, body={"plan_id": vip}), 400),
        ("blank reason", p.admin("POST", path, body={"plan_id": vip, "reason": "   "}), 400),
        ("extra field", p.admin("POST", path, body={**ok, "member_id": "mbr_x"}), 400),
        ("price of another plan", p.admin("POST", path, body={**ok, "price_id": "price_tier_basic"}), 400),
        ("plan id a number", p.admin("POST", path, body={"plan_id": 5, "reason": "why"}), 400),
        ("not an object", p.admin("POST", path, body="[1]", headers={"content-type": "application/json"}), 400),
        ("deeply nested", p.admin("POST", path, body=f'{{"plan_id": "{vip}", "reason": {nested}}}',
                                  headers={"content-type": "application/json"}), 400),
        ("invalid utf-8", p.admin("POST", path, body=b'{"plan_id": "\xff"}', base64_body=True,
                                  headers={"content-type": "application/json"}), 400),
        ("huge body", p.admin("POST", path, body=json.dumps({**ok, "reason": "x" * 300_000}),
                              headers={"content-type": "application/json"}), 413),
        ("wrong method", p.admin("GET", path), 405),
    ]
    for name, reply, status in cases:
        got = reply.get("status", reply.get("statusCode"))
        body = reply["body"] if isinstance(reply["body"], dict) else json.loads(reply["body"])
        assert got == status, (name, reply)
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), (name, body)
    # And nothing was switched nor audited
    assert entitled_plans(p) == {basic: "active"}
    assert not [e for e in p.admin("GET", "/admin/audit")["body"]["entries"] if e["action"] == "subscription.switch"]


def test_switch_onto_a_seats_tier_counts_one_seat_held_by_the_subscription(pipeline):
    p = pipeline
    # Given a member paying Basic and a two-seat VIP tier
    basic, vip = two_tiers(p, vip_seats=2)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id = subscription_of(p)
    p.advance(60)
    # When they switch to VIP from their manage page
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&waiver=on", cookies=[cookie], headers=FORM)
    p.pump()
    # Then one seat is taken, and a day later (long past a stale hold's fifteen minutes) it still is
    assert reply["statusCode"] == 303, reply
    assert p.admin("GET", f"/admin/plans/{vip}")["body"]["seats_taken"] == 1
    seats = bootstrap.admin().stores.seats
    assert seats is not None and seats.held_by(vip, member_id_of(p))
    assert seats.take(vip, "mbr_a", 2, p.clock.now() + DAY) is SeatTake.TAKEN
    assert seats.take(vip, "mbr_b", 2, p.clock.now() + DAY) is SeatTake.SOLD_OUT
    assert [i["price"]["id"] for i in p.sandbox.subscription(sub_id)["items"]["data"]] == ["price_tier_vip"]


def three_price_vip(p: Pipeline, locale: str = "en") -> tuple[str, str, str]:
    """Basic in EUR monthly; VIP sold in USD monthly (listed first), EUR yearly and EUR monthly; Gold in USD only."""
    p.sandbox.register_price("price_cur_basic", 900, "eur")
    p.sandbox.register_price("price_cur_vip_usd", 2700, "usd")
    p.sandbox.register_price("price_cur_vip_year", 25000, "eur", "year")
    p.sandbox.register_price("price_cur_vip_month", 2500, "eur")
    p.sandbox.register_price("price_cur_gold_usd", 4900, "usd")
    com = p.admin("POST", "/admin/communities", body={
        "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "on_revoke": "remove_role",
        "locale": locale})
    assert com["status"] == 201, com
    grants = [{"community_id": com["body"]["id"], "role_id": VIP_ROLE}]
    made = [p.admin("POST", "/admin/plans", body={"name": name, "stripe_price_ids": prices, "grants": grants})
            for name, prices in (("Basic", ["price_cur_basic"]),
                                 ("VIP", ["price_cur_vip_usd", "price_cur_vip_year", "price_cur_vip_month"]),
                                 ("Gold", ["price_cur_gold_usd"]))]
    assert [m["status"] for m in made] == [201, 201, 201], made
    return made[0]["body"]["id"], made[1]["body"]["id"], made[2]["body"]["id"]


def subscription_prices(p: Pipeline, sub_id: str) -> list[tuple[str, str, str]]:
    items = p.sandbox.subscription(sub_id)["items"]["data"]
    return [(i["price"]["id"], i["price"]["currency"], i["price"]["recurring"]["interval"]) for i in items]


def test_admin_switch_without_a_price_lands_on_the_same_currency_and_interval_not_the_first_price(pipeline):
    p = pipeline
    # Given a member paying Basic in EUR monthly; VIP's first price is USD, then EUR yearly, then EUR monthly
    basic, vip, _ = three_price_vip(p)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id, member_id = subscription_of(p), member_id_of(p)
    p.advance(60)
    # When the creator switches them to VIP without naming a price
    reply = p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": vip, "reason": "upgrade"})
    p.pump()
    # Then the same subscription bills VIP's EUR monthly price, and the answer and audit say so
    assert reply["status"] == 200, reply
    assert reply["body"]["price_id"] == "price_cur_vip_month"
    assert subscription_prices(p, sub_id) == [("price_cur_vip_month", "eur", "month")]
    assert created_subscriptions(p) == [sub_id]
    assert entitled_plans(p) == {vip: "active"}
    entry = [e for e in p.admin("GET", "/admin/audit")["body"]["entries"] if e["action"] == "subscription.switch"][-1]
    assert entry["detail"]["price_id"] == "price_cur_vip_month"


def test_switch_to_a_tier_without_the_subscriptions_currency_is_409_with_what_to_do(pipeline):
    p = pipeline
    # Given a member paying Basic in EUR; Gold is sold in USD only, VIP also in USD
    basic, vip, gold = three_price_vip(p)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id, member_id = subscription_of(p), member_id_of(p)
    p.advance(60)
    # When the creator switches them to Gold without naming a price
    refused = p.admin("POST", f"/admin/members/{member_id}/switch", body={"plan_id": gold, "reason": "upgrade"})
    # Then 409 says why and what to do, and nothing changed at Stripe
    assert refused["status"] == 409, refused
    message = refused["body"]["error"]["message"]
    assert "Gold has no EUR price" in message and f"PATCH /admin/plans/{gold}" in message
    # When the member picks VIP's USD price on their manage page
    member = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&price_id=price_cur_vip_usd&waiver=on",
                    cookies=[cookie], headers=FORM)
    # Then it is refused the same way (a page or the envelope, never a Stripe error), naming a price that fits
    assert member["statusCode"] == 409, member
    assert "pick a EUR price of VIP" in member["body"]
    p.pump()
    assert subscription_prices(p, sub_id) == [("price_cur_basic", "eur", "month")]
    assert entitled_plans(p) == {basic: "active"}


@pytest.mark.parametrize("locale, words", [
    ("en", ("€25.00 / month", "€250.00 / year", "Gold is not sold in EUR, the currency you pay in",
            "ask the creator to add a EUR price to Gold", "replace your subscription",
            "pick a EUR price of VIP")),
    ("fr", ("25,00 € / mois", "250,00 € / an", "pas vendu en EUR, la devise dans laquelle tu paies",
            "ajouter un prix en EUR à Gold", "Ce prix ne peut pas remplacer ton abonnement",
            "choisis un prix de VIP en EUR")),
])
def test_manage_page_offers_only_prices_in_the_members_currency_and_a_refused_switch_says_what_to_do(
        pipeline, locale, words):
    p = pipeline
    # Given a member paying Basic in EUR monthly; VIP sold in USD (listed first), EUR yearly and EUR monthly; Gold in USD only
    basic, vip, gold = three_price_vip(p, locale=locale)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    sub_id = subscription_of(p)
    p.advance(60)
    # When they open their manage page
    body = p.call("join", "GET", f"/join/{basic}?manage=1", cookies=[cookie])["body"]
    tiers = body.split("<ul class=tiers>")[1].split("</ul>")[0]
    vip_item = tiers.split(f"<li data-plan='{vip}'>")[1].split("</li>")[0]
    gold_item = tiers.split(f"<li data-plan='{gold}' class=no-currency>")[1].split("</li>")[0]
    # Then VIP offers its two EUR prices, the monthly one (what they pay now) pre-checked, and not the USD one
    assert "name=price_id value='price_cur_vip_month' checked" in vip_item
    assert "value='price_cur_vip_year'>" in vip_item and "price_cur_vip_usd" not in vip_item
    assert "$" not in vip_item and "US" not in vip_item
    # And Gold is listed without a button, saying why and what to do, in the member's language
    assert "/checkout" not in gold_item and "price_id" not in gold_item
    assert words[0] in vip_item and words[1] in vip_item
    assert words[2] in gold_item and words[3] in gold_item
    # When a stale page posts VIP's USD price anyway
    reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&price_id=price_cur_vip_usd",
                   cookies=[cookie], headers=FORM)
    # Then a 409 page in the member's language says which price to pick, never Stripe's English refusal
    assert reply["statusCode"] == 409, reply
    assert reply["headers"]["Content-Type"].startswith("text/html")
    assert words[4] in reply["body"] and words[5] in reply["body"]
    assert "Stripe refused" not in reply["body"] and "couldn" not in reply["body"]
    # When the member presses VIP's button as the page pre-checks it
    switched = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}&price_id=price_cur_vip_month",
                      cookies=[cookie], headers=FORM)
    p.pump()
    # Then the same subscription bills VIP's EUR monthly price
    assert switched["statusCode"] == 303, switched
    assert subscription_prices(p, sub_id) == [("price_cur_vip_month", "eur", "month")]
    assert entitled_plans(p) == {vip: "active"}


@pytest.mark.parametrize("locale, words", [
    ("en", ("You already have this plan", "nothing was changed")),
    ("fr", ("Tu as déjà cette formule", "rien n&#x27;a été modifié")),
])
def test_switch_from_a_stale_page_onto_the_plan_already_held_is_a_409_page_in_the_members_language(
        pipeline, locale, words):
    p = pipeline
    # Given a member who switched to VIP in another tab, their old page still showing VIP's button
    basic, vip = two_tiers(p, locale=locale)
    cookie = bind_discord(p, basic)
    pay(p, cookie, basic)
    p.advance(60)
    first = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}", cookies=[cookie], headers=FORM)
    p.pump()
    assert first["statusCode"] == 303, first
    # When the stale page posts the same switch again
    again = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={vip}", cookies=[cookie], headers=FORM)
    # Then a 409 page in the member's language says nothing changed, never an English checkout error
    assert again["statusCode"] == 409 and again["headers"]["Content-Type"].startswith("text/html"), again
    assert all(w in again["body"] for w in words), again["body"]
    assert "couldn" not in again["body"] and "VIP" in again["body"]
    assert entitled_plans(p) == {vip: "active"}
