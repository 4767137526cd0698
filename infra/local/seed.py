"""Seed a running local stack with a few months of DEMO history, through its real HTTP routes.

Members join through the join page, Discord's (stand-in) authorize page and Stripe (sandbox)
Checkout, week after week on the stack's business clock; Stripe renews, some members cancel, some
cards start declining. Nothing is written to a table directly, so the dashboard and the KPIs read
exactly what a real deployment would hold. Everything it creates is named "(demo data)", and the
dashboard says so. Used by `make dev SEED=1` and the dashboard's browser test.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from infra.local.client import Client

DAY = 86_400
WEEKS = 17  # about four months
GUILD, ROLE = "790000000000000001", "790000000000000002"
MONTHLY, ANNUAL = "price_seed_monthly_900_eur", "price_seed_annual_9600_eur"
# Joins per week, and what happens to some members later: (week, member index, what).
JOINS = [3, 2, 1, 2, 1, 1, 2, 0, 1, 2, 1, 1, 0, 2, 1, 1, 1]
LATER = {5: [(1, "cancel")], 8: [(4, "decline")], 11: [(7, "cancel")], 14: [(10, "decline")], 15: [(12, "cancel")]}
VIEWS_PER_JOIN = 3  # visitors who open the join page and leave


class SeedFailed(RuntimeError):
    pass


def _expect(reply, status: int, what: str):
    if reply.status != status:
        raise SeedFailed(f"{what}: expected {status}, got {reply.status}: {reply.text[:300]}")
    return reply


def _join(base_url: str, token: str, plan_id: str, username: str) -> str:
    """One member through join page → Discord → Checkout → card; returns their Stripe customer id."""
    c = Client(base_url, token)  # a browser of their own (cookies)
    _expect(c.get(f"/join/{plan_id}"), 200, "join page")
    to_discord = _expect(c.get(f"/auth/discord/start?plan_id={plan_id}"), 302, "start Discord OAuth2")
    authorize = urlsplit(to_discord.location)
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    back = _expect(c.post(authorize.path, form={**params, "username": username, "decision": "allow"}), 302, "authorize")
    landed = c.follow(c.get(back.location))
    found = re.search(r"data-discord-user='(\d+)'", landed.text)
    if not found:
        raise SeedFailed(f"{username} is not shown as connected")
    to_stripe = _expect(c.post("/checkout", form={"plan_id": plan_id, "waiver": "on"}), 303, "start checkout")
    _expect(c.post(to_stripe.location, form={"outcome": "card"}), 303, "pay by card")
    member = _expect(c.get(f"/admin/members?discord_user_id={found.group(1)}", admin=True), 200, "member").json()
    if not member["members"]:
        raise SeedFailed(f"{username} paid but no member was found")
    return member["members"][0]["stripe_customer_id"]


def _subscription_of(c: Client, customer: str) -> str:
    for event in c.get("/_local/stripe/_control/events").json()["data"]:
        obj = event["data"]["object"]
        if obj.get("object") == "subscription" and obj.get("customer") == customer:
            return obj["id"]
    raise SeedFailed(f"no subscription for {customer}")


def seed(base_url: str, token: str, out: Callable[[str], None] = print, weeks: int = len(JOINS)) -> dict:
    """Create the demo community and plans, then ``weeks`` of members (about four months by default)."""
    c = Client(base_url, token)
    started = time.monotonic()
    for price, amount, interval in ((MONTHLY, 900, "month"), (ANNUAL, 9600, "year")):
        _expect(c.post("/_local/stripe/_control/prices", json_body={
            "price_id": price, "unit_amount": amount, "currency": "eur", "interval": interval,
            "product_name": "Le Club (demo data)"}), 200, "register price")
    community = _expect(c.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Le Club (demo data)", "guild_id": GUILD, "role_id": ROLE,
        "on_revoke": "remove_role", "locale": "fr"}), 201, "create community").json()
    grants = [{"community_id": community["id"]}]
    monthly = _expect(c.post("/admin/plans", admin=True, json_body={
        "name": "Le Club mensuel (demo data)", "stripe_price_ids": [MONTHLY], "grants": grants, "grace_days": 3}),
        201, "create monthly plan").json()
    annual = _expect(c.post("/admin/plans", admin=True, json_body={
        "name": "Le Club annuel (demo data)", "stripe_price_ids": [ANNUAL], "grants": grants, "grace_days": 3}),
        201, "create annual plan").json()
    customers: list[str] = []
    for week, joins in enumerate(JOINS[:weeks]):
        for _ in range(joins * VIEWS_PER_JOIN):
            Client(base_url).get(f"/join/{monthly['id']}")  # visitors who look and leave
        for _ in range(joins):
            n = len(customers)
            plan = annual if n % 5 == 4 else monthly
            customers.append(_join(base_url, token, plan["id"], f"demo-member-{n:02d}"))
        for index, what in LATER.get(week, []):
            if index >= len(customers):
                continue
            customer = customers[index]
            if what == "cancel":
                sub = _subscription_of(c, customer)
                _expect(c.post(f"/_local/stripe/_control/subscriptions/{sub}/cancel", json_body={}), 200, "cancel")
            else:
                _expect(c.post(f"/_local/stripe/_control/customers/{customer}/payment_method",
                               json_body={"behaviour": "declines"}), 200, "card declines")
        _expect(c.post("/_local/clock", json_body={"advance_seconds": 7 * DAY}), 200, "advance the clock")
        c.post("/_local/drain")
        out(f"  week {week + 1:2d}/{weeks}: {len(customers)} members so far")
    c.post("/_local/drain")
    out(f"Seeded {len(customers)} demo members over {weeks} weeks in {time.monotonic() - started:.0f} s.")
    return {"community": community, "plans": [monthly, annual], "customers": customers}


def main() -> int:
    import os

    base = os.environ.get("MEMBERGATE_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"
    token = os.environ.get("ADMIN_TOKEN") or ""
    try:
        seed(base, token)
    except SeedFailed as error:
        print(f"✘ seeding failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
