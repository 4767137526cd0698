"""`make demo`'s migration chapter: a free Discord community moves to paid with a founder price.

Five members of a free server are imported from a CSV, keep access until the deadline, are told
about the founder price (by DM, or by email when their DMs are closed), two take it through their
personal link, the business clock passes the deadline, and the three others lose the paid role.
Each step is checked through the stack's HTTP API, as the rest of the demo is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from infra.local.client import Client

if TYPE_CHECKING:
    from infra.local.demo import Story

DAY = 86_400
PEOPLE = ("amelie", "bruno", "chloe", "david", "emma")  # the free server's members
CLOSED_DMS = "david"  # the one whose DMs are closed: the offer reaches them by email
TAKERS = ("amelie", "emma")  # who take the founder price
OFFER_LINK = re.compile(r"https?://[^\s]+/offer/[A-Za-z0-9_-]+")


def migration_chapter(story: Story, run: int = 0) -> dict[str, Any]:
    """Run the chapter; returns what it saw (the e2e test asserts it). ``run`` tells apart the
    server, price and people of a second telling against the same stack (a place registers once)."""
    c = story.c
    guild, role = f"7000000000000{run:02d}031", f"7000000000000{run:02d}032"
    price = f"price_demo_founder_500_eur_{run}"
    handle = {n: f"{n}{run}" if run else n for n in PEOPLE}
    story.step("Moving a free Discord server to paid: the creator sets a founder price and a deadline")
    story.expect(c.post("/_local/stripe/_control/prices", json_body={
        "price_id": price, "unit_amount": 500, "currency": "eur", "interval": "month",
        "product_name": "Tarif fondateur"}), 200, "register the founder price")
    community = story.expect(c.post("/admin/communities", admin=True, json_body={
        "platform": "discord", "name": "Le Cercle", "guild_id": guild, "role_id": role,
        "on_revoke": "remove_role", "locale": "fr"}), 201, "add the community").json()
    plan = story.expect(c.post("/admin/plans", admin=True, json_body={
        "name": "Tarif fondateur (5 €/mois, à vie)", "stripe_price_ids": [price],
        "grants": [{"community_id": community["id"]}]}), 201, "add the founder plan").json()
    now = int(c.get("/_local/clock").json()["epoch"])
    deadline = now + 3 * DAY
    channel = f"7000000000000{run:02d}033"  # the server's #announcements
    story.expect(c.post(f"/_local/discord/guilds/{guild}/channels", json_body={"channel_id": channel}), 200, "a channel")
    migration = story.expect(c.post("/admin/migrations", admin=True, json_body={
        "community_id": community["id"], "plan_id": plan["id"], "deadline": deadline, "announcement_channel_id": channel,
        "message": "Merci d'avoir fait vivre le Cercle depuis le début !"}), 201, "create the migration").json()
    story.say(f"migration {migration['id']}: founder price until {migration['deadline']}")

    story.step("Its five free members are imported from a CSV: each keeps access until the deadline")
    ids: dict[str, str] = {}
    for name in PEOPLE:
        ids[name] = story.expect(c.post(f"/_local/discord/guilds/{guild}/free_members",
                                        json_body={"username": handle[name]}), 200, "a free member").json()["user_id"]
    c.post(f"/_local/discord/users/{ids[CLOSED_DMS]}/dms", json_body={"open": False})
    csv = "platform_id,email,name\n" + "\n".join(
        f"{ids[n]},{n + '@example.test' if n == CLOSED_DMS else ''},{n.capitalize()}" for n in PEOPLE) + "\n"
    path = f"/admin/migrations/{migration['id']}/members"
    first = story.expect(c.post(path, admin=True, data=csv.encode(), headers={"Content-Type": "text/csv"}), 200, "import").json()
    again = story.expect(c.post(path, admin=True, data=csv.encode(), headers={"Content-Type": "text/csv"}), 200, "import again").json()
    story.say(f"imported {first['imported']}, invalid {len(first['invalid'])}; the same file again: "
              f"imported {again['imported']}, already members {again['already_members']}")
    story.wait_for("the paid role for every imported member",
                   lambda: all(role in (_roles(c, guild, ids[n]) or []) for n in PEOPLE))
    story.say("all five have the paid role until the deadline")

    story.step("The creator announces the founder price (a DM where the bot may write, else email)")
    mail_before = len(c.get("/_local/mail").json()["mail"])
    dms_before = len(story.dms())
    announced = story.expect(c.post(f"/admin/migrations/{migration['id']}/announce", admin=True), 200, "announce").json()
    status = story.wait_for("the announcement delivered", lambda: _delivered(c, migration["id"]))

    def offer_dms() -> list[dict] | None:
        # "reached" counts a message once it is queued; the DMs themselves go out through the
        # dispatcher, behind whatever else it has to send (the welcomes, for one).
        found = [d for d in story.new_dms(dms_before) if OFFER_LINK.search(d["content"])]
        return found if {d["user_id"] for d in found} >= {ids[n] for n in PEOPLE if n != CLOSED_DMS} else None

    offers = story.wait_for("every open DM holding its offer", offer_dms)
    mail = story.wait_for("the offer emailed where DMs are closed", lambda: [
        m for m in c.get("/_local/mail").json()["mail"][mail_before:] if OFFER_LINK.search(m["body"])])
    second = story.expect(c.post(f"/admin/migrations/{migration['id']}/announce", admin=True), 200, "announce again").json()
    posts = [p for p in c.get("/_local/discord/posts").json()["posts"] if p["channel_id"] == channel]
    story.say(f"queued {announced['queued']}, posted in #announcements: {announced['posted']}; reached {status['reached']}; "
              f"announcing again queues {second['queued']} and posts {len(posts) - 1} more")
    if offers:
        story.say("“" + offers[0]["content"].split("\n")[0][:160] + "…”")
    links = {d["user_id"]: OFFER_LINK.search(d["content"]).group(0) for d in offers}  # type: ignore[union-attr]

    story.step("Two members take the founder price through their personal link (no second login)")
    for name in TAKERS:
        browser = Client(c.base_url)
        opened = story.expect(browser.get(urlsplit(links[ids[name]]).path), 302, f"{name} opens the offer link")
        join_page = story.expect(browser.get(opened.location), 200, "the offer's join page")
        to_stripe = story.expect(browser.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"}), 303, f"{name} goes to checkout")
        story.expect(browser.post(to_stripe.location, form={"outcome": "card"}), 303, f"{name} pays")
        del join_page
    status = story.wait_for("two members paid", lambda: _status(c, migration["id"], paid=2))
    story.say(f"paid {status['paid']}, pending {status['pending']}, "
              f"would lose access at the deadline: {status['would_lose_access_at_deadline']}")

    story.step("The clock passes the deadline: the migration grants end on their own")
    story.advance(deadline - int(c.get("/_local/clock").json()["epoch"]) + 3600, "3 days")
    story.wait_for("the three others removed from the paid role",
                   lambda: sum(role in (_roles(c, guild, ids[n]) or []) for n in PEOPLE) == len(TAKERS))
    kept = sorted(n for n in PEOPLE if role in (_roles(c, guild, ids[n]) or []))
    lost = sorted(n for n in PEOPLE if n not in kept)
    story.say(f"kept the paid role: {', '.join(kept)}; lost it: {', '.join(lost)} (still in the server: "
              f"{all(_roles(c, guild, ids[n]) is not None for n in lost)})")
    return {"imported": first["imported"], "already_members": again["already_members"], "announced": announced["queued"],
            "reached": status["reached"], "second_announce": second["queued"], "offer_dms": len(offers),
            "offer_mail": len(mail), "posts": len(posts), "paid": status["paid"], "would_lose": status["would_lose_access_at_deadline"],
            "kept": kept, "lost": lost, "ids": ids}


def _roles(c: Client, guild: str, user_id: str) -> list[str] | None:
    roles = c.get(f"/_local/discord/guilds/{guild}").json()["members"].get(user_id)
    return list(roles) if roles is not None else None


def _status(c: Client, migration_id: str, **expected: int) -> dict[str, Any] | None:
    status: dict[str, Any] = c.get(f"/admin/migrations/{migration_id}", admin=True).json()
    return status if all(status.get(k) == v for k, v in expected.items()) else None


def _delivered(c: Client, migration_id: str) -> dict[str, Any] | None:
    status: dict[str, Any] = c.get(f"/admin/migrations/{migration_id}", admin=True).json()
    return status if status["reached"]["none"] == 0 else None
