"""`make demo`: start the local stack and tell the whole member story through its HTTP API.

A creator adds a community and a monthly plan; a member binds Discord and pays; gets the role;
renews; a renewal fails; is reminded and looks at the billing portal the reminder leads to, but
does not pay; grace ends; is removed. Then a member joins a Telegram group through the bot (and a
stranger holding the forwarded invite is declined), and a member joins a WhatsApp group in manual
mode down to the creator's removal task. Each step is checked, not only printed: the demo exits
non-zero if the story does not happen. Then the requests each platform's stand-in received per
member, and the 429s among them. Last, a member upgrades between two tiers of one community
(the same subscription, the new role before the old one goes) and a 30-day pass expires with
the sandbox clock.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.client import Client, Reply
from infra.local.demo_migration import migration_chapter
from infra.local.stripe_shapes import format_amount

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / ".local-stack" / "demo.log"
DAY = 86_400
GUILD, ROLE = "700000000000000001", "700000000000000002"
PRICE = "price_demo_monthly_900_eur"
TG_CHAT, TG_USER, TG_STRANGER = -1002000000777, 7200000001, 7200000002
TG_PRICE = "price_demo_telegram_500_eur"
WA_PHONE, WA_INVITE = "+33612345678", "https://chat.whatsapp.com/DemoCercle0123456789"
WA_PRICE = "price_demo_whatsapp_1500_eur"
# Tiers of one community (an upgrade without a second subscription) and a 30-day pass.
TIER_GUILD, BASIC_ROLE, PLUS_ROLE, PASS_ROLE = ("700000000000000101", "700000000000000102", "700000000000000103",
                                                "700000000000000104")
BASIC_PRICE, PLUS_PRICE = "price_demo_atelier_basic_900_eur", "price_demo_atelier_plus_1900_eur"
PASS_PRICE = "price_demo_defi_30_jours_4900_eur"


class StoryFailed(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(port: int, env: dict[str, str]) -> subprocess.Popen:
    LOG.parent.mkdir(exist_ok=True)
    log = LOG.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack"],
        cwd=REPO,
        env={**os.environ, **env, "PORT": str(port), "MEMBERGATE_QUIET": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class Story:
    def __init__(self, client: Client, out: Callable[[str], None] = print):
        self.c = client
        self.out = out
        self.step_no = 0
        self.results: dict[str, Any] = {}

    def step(self, title: str) -> None:
        self.step_no += 1
        self.out(f"\n{self.step_no:>2}. {title}")

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    def expect(self, reply: Reply, status: int, what: str) -> Reply:
        if reply.status != status:
            raise StoryFailed(f"{what}: expected HTTP {status}, got {reply.status}: {reply.text[:400]}")
        return reply

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            self.c.post("/_local/drain")
            time.sleep(0.1)
        raise StoryFailed(f"timed out waiting for {what}")

    # --- views --------------------------------------------------------------------------------

    def member(self, discord_user_id: str) -> dict:
        reply = self.expect(self.c.get(f"/admin/members?discord_user_id={discord_user_id}", admin=True), 200, "member lookup")
        members = reply.json()["members"]
        return members[0] if members else {}

    def roles(self, user_id: str) -> list[str] | None:
        return self.c.get(f"/_local/discord/guilds/{GUILD}").json()["members"].get(user_id)

    def dms(self) -> list[dict]:
        return self.c.get("/_local/discord/dms").json()["dms"]

    def advance(self, seconds: int, label: str) -> dict:
        reply = self.expect(self.c.post("/_local/clock", json_body={"advance_seconds": seconds}), 200, "clock advance")
        now = reply.json()["now"]
        self.say(f"⏩ business clock +{label} → {now}")
        return reply.json()

    def new_dms(self, seen: int) -> list[dict]:
        return self.dms()[seen:]

    # --- the story ------------------------------------------------------------------------------

    def run(self) -> dict:
        c = self.c
        self.step("The creator adds a Discord community and a monthly plan")
        self.expect(
            c.post("/_local/stripe/_control/prices", json_body={"price_id": PRICE, "unit_amount": 900, "currency": "eur",
                                                                  "interval": "month", "product_name": "Le Club mensuel"}),
            200, "register the Stripe price in the sandbox")
        community = self.expect(c.post("/admin/communities", admin=True, json_body={
            "platform": "discord", "name": "Le Club", "guild_id": GUILD, "role_id": ROLE,
            "on_revoke": "remove_role", "locale": "fr"}), 201, "create community").json()
        self.say(f"community {community['id']}: Discord server {GUILD}, role {ROLE}, French messages")
        plan = self.expect(c.post("/admin/plans", admin=True, json_body={
            "name": "Le Club mensuel", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["id"]}],
            "grace_days": 3}), 201, "create plan").json()
        self.say(f"plan {plan['id']}: {PRICE} (9.00 EUR/month), 3 days of grace → join link {plan['join_url']}")

        self.step("A member opens the join link and connects Discord")
        join_path = urlsplit(plan["join_url"]).path
        page = self.expect(c.get(join_path), 200, "join page")
        if "href='/auth/discord/start" not in page.text:
            raise StoryFailed("the join page does not offer to connect Discord")
        landed = self.connect_discord(plan["id"])
        discord_id = re.search(r"data-discord-user='(\d+)'", landed.text).group(1)
        self.say(f"Discord user {discord_id} bound to a new member, tokens stored encrypted")

        self.step("The member pays in Stripe Checkout")
        to_stripe = self.expect(c.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"}), 303, "start checkout")
        self.say(f"Checkout Session → {to_stripe.location}")
        paid_at = time.monotonic()
        done = self.expect(c.post(to_stripe.location, form={"outcome": "card"}), 303, "pay by card")
        self.say(f"paid by card in {time.monotonic() - paid_at:.1f} s (Stripe delivered the signed events); "
                 f"back to {urlsplit(done.location).path}")
        self.wait_for("the Discord role", lambda: ROLE in (self.roles(discord_id) or []))
        self.say(f"✅ in the server with role {ROLE} after {time.monotonic() - paid_at:.1f} s")
        member = self.member(discord_id)
        customer = member["stripe_customer_id"]
        sub_id = self._subscription_of(customer)
        self.say(f"member {member['id']} · customer {customer} · subscription {sub_id} · "
                 f"entitlement {member['entitlements'][0]['state']}")
        self.kpis()

        self.step("A month later the subscription renews")
        # Stripe renews on its own when the period ends, as a test clock shows: no control needed.
        self.to_period_end(sub_id)
        renewals = self.paid_renewals(sub_id)
        if renewals != 1:
            raise StoryFailed(f"Stripe should have charged the renewal once, not {renewals} times")
        c.post("/_local/drain")
        ent = self.member(discord_id)["entitlements"][0]
        if ent["state"] != "active" or ROLE not in (self.roles(discord_id) or []):
            raise StoryFailed(f"after renewal the member should still be active: {ent}")
        self.say(f"Stripe charged the renewal (invoice paid), still {ent['state']}, role kept")

        self.step("The next renewal fails")
        self.expect(c.post(f"/_local/stripe/_control/customers/{customer}/payment_method",
                           json_body={"behaviour": "declines"}), 200, "make the card decline")
        self.say("the member's card now declines")
        seen = len(self.dms())
        self.to_period_end(sub_id)
        ent = self.wait_for("grace", lambda: (e := self.member(discord_id)["entitlements"][0])["state"] == "grace" and e)
        self.say(f"subscription past_due → entitlement grace until {ent['until']}; role kept meanwhile")
        self.advance(60, "1 minute")
        reminder = self.wait_for("the grace reminder DM", lambda: self.new_dms(seen))
        self.say(f"💬 DM: « {reminder[0]['content']} »")
        self.look_at_billing(reminder[0]["content"], plan["id"])

        self.step("A day before grace ends, a second reminder")
        seen = len(self.dms())
        self.advance(2 * DAY, "2 days")
        reminder = self.wait_for("the grace-ending DM", lambda: self.new_dms(seen))
        self.say(f"💬 DM: « {reminder[0]['content']} »")

        self.step("Grace ends: the member is told, removed, and no longer charged")
        seen = len(self.dms())
        self.advance(DAY, "1 day")
        self.wait_for("the role removal", lambda: ROLE not in (self.roles(discord_id) or []))
        receipt = self.new_dms(seen)
        if not receipt:
            raise StoryFailed("no removal receipt was sent")
        self.say(f"💬 DM: « {receipt[0]['content']} »")
        self.say(f"role {ROLE} removed: roles now {self.roles(discord_id)}")
        status = self.wait_for("the Stripe cancellation", lambda: (
            s := c.get(f"/_local/stripe/_control/subscriptions/{sub_id}").json().get("status")) == "canceled" and s)
        member = self.member(discord_id)
        self.say(f"Stripe subscription {status}; entitlement {member['entitlements'][0]['state']}; "
                 f"access {member['access'][0]['state']}")

        self.step("The creator's numbers")
        kpis = self.kpis()
        events = self.expect(c.get("/admin/events?limit=200", admin=True), 200, "events").json()["events"]
        self.say(f"Stripe events in the last 31 days: {len(events)} "
                 f"({sum(e['status'] == 'processed' for e in events)} processed, "
                 f"{sum(e['status'] == 'ignored' for e in events)} ignored)")
        calls = c.get("/_local/discord/calls").json()["calls"]
        kinds = sorted({f"{x['method']} {re.sub(r'/[0-9]+', '/…', x['path'])}" for x in calls})
        self.say(f"Discord API calls made: {len(calls)} ({'; '.join(kinds)})")
        # What the other platforms' chapters found, for whoever reads the story afterwards (e2e tests).
        self.results = {"telegram": self.telegram(), "whatsapp": self.whatsapp(), "figures": self.figures()}
        self.results["upgrade"] = self.tier_upgrade()
        self.results["pass"] = self.pass_expiry()
        self.results["migration"] = migration_chapter(self)  # moves the clock 3 days: after the figures
        return kpis

    # --- Telegram -------------------------------------------------------------------------------

    def telegram(self) -> dict:
        """A member joins a Telegram group through the bot; a stranger with the forwarded link is declined."""
        c = Client(self.c.base_url, self.c.admin_token)  # the Telegram member's own browser
        self.step("The creator adds a Telegram group (the bot is its admin) and a plan")
        self.expect(c.post("/_local/stripe/_control/prices", json_body={
            "price_id": TG_PRICE, "unit_amount": 500, "currency": "eur", "interval": "month"}), 200, "register the price")
        self.expect(c.post("/_local/telegram/_control/chats", json_body={"id": TG_CHAT, "title": "Le Club Telegram"}),
                    200, "the Telegram group")
        community = self.expect(c.post("/admin/communities", admin=True, json_body={
            "platform": "telegram", "name": "Le Club Telegram", "chat_id": str(TG_CHAT), "locale": "fr"}),
            201, "create the Telegram community").json()
        plan = self.expect(c.post("/admin/plans", admin=True, json_body={
            "name": "Le Club Telegram", "stripe_price_ids": [TG_PRICE], "grants": [{"community_id": community["id"]}]}),
            201, "create the Telegram plan").json()
        self.say(f"community {community['id']}: Telegram chat {TG_CHAT}; plan {plan['id']} at 5.00 EUR/month")

        self.step("A member taps 'Continuer avec Telegram', then Start in the bot")
        to_telegram = self.expect(c.get(f"/telegram/start/{plan['id']}"), 302, "the t.me link")
        token = parse_qs(urlsplit(to_telegram.location).query)["start"][0]
        self.say(f"→ {to_telegram.location.split('?')[0]}?start=… (one-time, 30 minutes)")
        self.expect(c.post(f"/_local/telegram/_control/users/{TG_USER}/start", json_body={"token": token}), 200,
                    "/start in the bot")
        button = self.wait_for("the bot's pay button", lambda: [
            m for m in self.telegram_messages(c, TG_USER) if m.get("reply_markup")])[0]
        self.say(f"💬 bot: « {button['text']} »")
        pay = button["reply_markup"]["inline_keyboard"][0][0]["url"]
        self.expect(c.get(urlsplit(pay).path), 303, "the bot's pay button")

        self.step("The member pays; the bot sends a personal join-request link")
        to_stripe = self.expect(c.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"}), 303, "start checkout")
        paid_at = time.monotonic()
        self.expect(c.post(to_stripe.location, form={"outcome": "card"}), 303, "pay by card")
        invite = self.wait_for("the personal invite", lambda: [
            m for m in self.telegram_messages(c, TG_USER) if "https://t.me/+" in (m.get("text") or "")])[0]
        link = re.search(r"https://t\.me/\+[\w-]+", invite["text"]).group(0)
        self.say(f"💬 bot: « {invite['text']} » ({time.monotonic() - paid_at:.1f} s after paying)")

        self.step("The link is forwarded: a stranger's join request is declined")
        self.expect(c.post("/_local/telegram/_control/join", json_body={"user_id": TG_STRANGER, "invite_link": link}),
                    200, "the stranger opens the forwarded link")
        self.wait_for("the stranger's request to be handled", lambda: str(TG_STRANGER) not in self.tg_chat(c)["pending"])
        if str(TG_STRANGER) in self.tg_chat(c)["members"]:
            raise StoryFailed("the stranger holding a forwarded invite got into the Telegram group")
        declined = [x for x in self.tg_calls(c) if x["method"] == "declineChatJoinRequest"]
        if not declined:
            raise StoryFailed("the stranger's join request was not declined")
        self.say(f"⛔ stranger {TG_STRANGER}: declineChatJoinRequest — not in the group")

        self.step("The member opens their own link: approved")
        self.expect(c.post("/_local/telegram/_control/join", json_body={"user_id": TG_USER, "invite_link": link}),
                    200, "the member opens their link")
        self.wait_for("the member in the Telegram group",
                      lambda: self.tg_chat(c)["members"].get(str(TG_USER)) == "member")
        member = self.wait_for("access granted", lambda: (
            m := self.c.get(f"/admin/members?telegram_user_id={TG_USER}", admin=True).json()["members"]) and
            [a["state"] for a in m[0]["access"]] == ["granted"] and m[0])
        self.say(f"✅ member {member['id']} (Telegram {TG_USER}) is in the group; access granted")
        return {"member_id": member["id"], "stranger_declined": True}

    def telegram_messages(self, c: Client, user: int) -> list[dict]:
        return [m for m in c.get("/_local/telegram/messages").json()["messages"] if m["chat"]["id"] == user]

    def tg_chat(self, c: Client) -> dict:
        return c.get(f"/_local/telegram/chats/{TG_CHAT}").json()

    def tg_calls(self, c: Client) -> list[dict]:
        return c.get("/_local/telegram/calls").json()["calls"]

    # --- WhatsApp -------------------------------------------------------------------------------

    def whatsapp(self) -> dict:
        """A member joins a WhatsApp group in manual mode, down to the creator's removal task."""
        c = Client(self.c.base_url, self.c.admin_token)  # the WhatsApp member's own browser
        self.step("The creator adds a WhatsApp group in manual mode (its invite link) and a plan")
        self.expect(c.post("/_local/stripe/_control/prices", json_body={
            "price_id": WA_PRICE, "unit_amount": 1500, "currency": "eur", "interval": "month"}), 200, "register the price")
        community = self.expect(c.post("/admin/communities", admin=True, json_body={
            "platform": "whatsapp", "name": "Le Cercle", "mode": "manual", "invite_link": WA_INVITE, "locale": "fr"}),
            201, "create the WhatsApp community").json()
        plan = self.expect(c.post("/admin/plans", admin=True, json_body={
            "name": "Le Cercle", "stripe_price_ids": [WA_PRICE], "grants": [{"community_id": community["id"]}]}),
            201, "create the WhatsApp plan").json()
        self.say(f"community {community['id']}: manual mode (no API adds or removes people in a WhatsApp group "
                 "without Meta's Official Business Account); plan {0} at 15.00 EUR/month".format(plan["id"]))

        self.step("A member taps 'Continuer avec WhatsApp' and sends the typed-in code")
        start = self.expect(c.get(f"/whatsapp/start/{plan['id']}"), 302, "the wa.me link")
        text = parse_qs(urlsplit(start.location).query)["text"][0]
        self.say(f"→ {start.location.split('?')[0]} with « {text} » typed in")
        self.expect(c.post("/_local/whatsapp/_control/inbound", json_body={"from": WA_PHONE, "text": text}), 200,
                    "the member sends the code")
        reply = self.wait_for("the reply with the pay link", lambda: self.wa_messages(c, WA_PHONE))[-1]
        self.say(f"💬 WhatsApp: « {reply['text']} »")
        pay = next(w for w in (reply["text"] or "").split() if "/whatsapp/pay/" in w)
        self.expect(c.get(urlsplit(pay).path), 303, "the pay link")

        self.step("The member pays; the group's invite link arrives in WhatsApp")
        to_stripe = self.expect(c.post("/checkout", form={"plan_id": plan["id"], "waiver": "on"}), 303, "start checkout")
        paid_at = time.monotonic()
        self.expect(c.post(to_stripe.location, form={"outcome": "card"}), 303, "pay by card")
        invite = self.wait_for("the invite link message", lambda: [
            m for m in self.wa_messages(c, WA_PHONE) if WA_INVITE in (m["text"] or "")])[0]
        self.say(f"💬 WhatsApp ({invite['type']}): « {invite['text']} » ({time.monotonic() - paid_at:.1f} s after paying)")
        member = self.expect(c.get(f"/admin/members?whatsapp_phone=%2B{WA_PHONE[1:]}", admin=True), 200,
                             "member by phone").json()["members"][0]

        self.step("The member cancels; access ends: they are told, the creator gets a removal task")
        sub_id = self._subscription_of(member["stripe_customer_id"])
        seen = len(self.wa_messages(c, WA_PHONE))
        self.expect(c.post(f"/_local/stripe/_control/subscriptions/{sub_id}/cancel"), 200, "cancel the subscription")
        tasks = self.wait_for("the removal task", lambda: c.get(
            f"/admin/communities/{community['id']}/tasks", admin=True).json()["tasks"])
        told = self.wait_for("the member told", lambda: self.wa_messages(c, WA_PHONE)[seen:])[-1]
        self.say(f"💬 WhatsApp ({told['type']}): « {told['text'] or told['template']} »")
        task = tasks[0]
        if (task["kind"], task["phone"], task["member_id"], task["done"]) != ("remove", WA_PHONE, member["id"], False):
            raise StoryFailed(f"unexpected removal task: {task}")
        self.say(f"📋 GET /admin/communities/{community['id']}/tasks → remove {task['phone']} (task {task['id']})")
        self.expect(c.post(f"/admin/communities/{community['id']}/tasks/{task['id']}/done", admin=True), 200,
                    "mark the task done")
        if c.get(f"/admin/communities/{community['id']}/tasks", admin=True).json()["tasks"]:
            raise StoryFailed("the removal task is still open after being marked done")
        self.say("the creator removed them from the group by hand and marked the task done ✔")
        return {"member_id": member["id"], "task": task}

    # --- tiers and passes ---------------------------------------------------------------------------

    def tier_upgrade(self) -> dict:
        """A member moves from one tier to another of the same community: the same subscription."""
        c = Client(self.c.base_url, self.c.admin_token)  # the member's own browser
        self.step("Tiers: a member upgrades from Basic to Plus — the same subscription, no gap in access")
        community = self._tier_community(c)
        basic = self._plan(c, "Atelier Basic", BASIC_PRICE, 900, "month", {"community_id": community, "role_id": BASIC_ROLE})
        plus = self._plan(c, "Atelier Plus", PLUS_PRICE, 1900, "month", {"community_id": community, "role_id": PLUS_ROLE})
        user = self._discord_member(c, basic, "bruno")
        self._pay(c, basic)
        self.wait_for("the Basic role", lambda: BASIC_ROLE in (self.tier_roles(user) or []))
        customer = self.member(user)["stripe_customer_id"]
        before = self._subscription_of(customer)
        self.say(f"Basic (9.00 EUR/month) paid: role {BASIC_ROLE}, subscription {before}")
        calls_before = len(c.get("/_local/discord/calls").json()["calls"])
        # Stripe dates events to the second; two updates of one subscription in the same second are
        # settled by reading it back from Stripe (docs/state-machine.md). A person never switches
        # within the second their payment went through, so the story does not either.
        time.sleep(1.05 - time.time() % 1)
        switched = self.expect(c.post("/checkout", form={"plan_id": plus, "waiver": "on"}), 303, "pick Plus on its join page")
        if "switched=1" not in (switched.location or ""):
            raise StoryFailed(f"picking Plus should switch the subscription, not open a checkout: {switched.location}")
        # Longer than the default: the switch waits behind the welcome DMs and any rate-limit window
        # the dispatcher is honouring (seen at 15 s once on a busy machine).
        self.wait_for("Plus instead of Basic", lambda: (r := self.tier_roles(user) or []) and PLUS_ROLE in r
                      and BASIC_ROLE not in r, timeout=40)
        subs = self.expect(c.get(f"/_local/stripe/v1/subscriptions?customer={customer}&status=all",
                                 headers={"Authorization": "Bearer sk_test_demo"}), 200, "the customer's subscriptions").json()
        after = [sub["id"] for sub in subs["data"]]
        if after != [before]:
            raise StoryFailed(f"an upgrade must keep the one subscription {before}, Stripe has {after}")
        calls = c.get("/_local/discord/calls").json()["calls"][calls_before:]
        order = [(x["method"], x["path"].rsplit("/", 1)[-1]) for x in calls if f"/members/{user}/roles/" in x["path"]]
        if order[:2] != [("PUT", PLUS_ROLE), ("DELETE", BASIC_ROLE)]:
            raise StoryFailed(f"the Plus role must come before the Basic role goes: {order}")
        self.say(f"Plus picked: subscription before {before} → after {after[0]} (the same one, its price updated "
                 "with proration)")
        self.say(f"Discord: role {PLUS_ROLE} added, then role {BASIC_ROLE} removed — never without access")
        return {"before": before, "after": after[0], "role_calls": order[:2], "discord_user_id": user}

    def pass_expiry(self) -> dict:
        """A 30-day pass: one payment, access given, then removed when the sandbox clock passes 30 days."""
        c = Client(self.c.base_url, self.c.admin_token)
        self.step("A 30-day challenge pass: one payment, 30 days of access, then it ends on its own")
        community = self._tier_community(c)
        plan = self._plan(c, "Défi 30 jours", PASS_PRICE, 4900, None, {"community_id": community, "role_id": PASS_ROLE},
                          kind="pass", access_days=30)
        user = self._discord_member(c, plan, "capucine")
        self._pay(c, plan)
        self.wait_for("the pass role", lambda: PASS_ROLE in (self.tier_roles(user) or []))
        given = self.member(user)["entitlements"][0]
        self.say(f"49.00 EUR paid once (Checkout in payment mode): role {PASS_ROLE}, {given['state']} until {given['until']}")
        self.advance(30 * DAY + 60, "30 days")
        self.wait_for("the pass role removed", lambda: PASS_ROLE not in (self.tier_roles(user) or []))
        ended = self.member(user)["entitlements"][0]
        if (ended["state"], ended["reason"]) != ("ended", "pass_expired"):
            raise StoryFailed(f"the pass should have ended with reason pass_expired: {ended}")
        self.say(f"the pass ran its course: entitlement {ended['state']} ({ended['reason']}), role {PASS_ROLE} removed")
        return {"given": given, "ended": ended, "discord_user_id": user}

    def tier_roles(self, user_id: str) -> list[str] | None:
        return self.c.get(f"/_local/discord/guilds/{TIER_GUILD}").json()["members"].get(user_id)

    def _tier_community(self, c: Client) -> str:
        """L'Atelier (created once, by whichever chapter comes first)."""
        found = [x for x in c.get("/admin/communities", admin=True).json()["communities"]
                 if x.get("guild_id") == TIER_GUILD]
        if found:
            return str(found[0]["id"])
        created = self.expect(c.post("/admin/communities", admin=True, json_body={
            "platform": "discord", "name": "L'Atelier", "guild_id": TIER_GUILD, "role_id": BASIC_ROLE,
            "on_revoke": "remove_role", "locale": "fr"}), 201, "create L'Atelier")
        return str(created.json()["id"])

    def _plan(self, c: Client, name: str, price: str, amount: int, interval: str | None, grant: dict,
              **extra: Any) -> str:
        body: dict[str, Any] = {"price_id": price, "unit_amount": amount, "currency": "eur", "product_name": name}
        body.update({"interval": interval} if interval else {"type": "one_time"})
        self.expect(c.post("/_local/stripe/_control/prices", json_body=body), 200, f"register {price}")
        plan = self.expect(c.post("/admin/plans", admin=True, json_body={
            "name": name, "stripe_price_ids": [price], "grants": [grant], **extra}), 201, f"create {name}").json()
        return str(plan["id"])

    def _discord_member(self, c: Client, plan_id: str, username: str) -> str:
        to_discord = self.expect(c.get(f"/auth/discord/start?plan_id={plan_id}"), 302, "start Discord OAuth2")
        authorize = urlsplit(to_discord.location)
        params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        back = self.expect(c.post(authorize.path, form={**params, "username": username, "decision": "allow"}), 302,
                           "authorize on Discord")
        landed = c.follow(c.get(back.location))
        found = re.search(r"data-discord-user='(\d+)'", landed.text)
        if found is None:
            raise StoryFailed(f"{username} is not shown as connected: {landed.text[:300]}")
        return found.group(1)

    def _pay(self, c: Client, plan_id: str) -> None:
        to_stripe = self.expect(c.post("/checkout", form={"plan_id": plan_id, "waiver": "on"}), 303, "start checkout")
        self.expect(c.post(to_stripe.location, form={"outcome": "card"}), 303, "pay by card")

    def wa_messages(self, c: Client, phone: str) -> list[dict]:
        return [m for m in c.get("/_local/whatsapp/messages").json()["messages"] if m["to"] == phone]

    # --- figures --------------------------------------------------------------------------------

    def figures(self) -> dict[str, dict[str, float]]:
        """Requests each platform's stand-in received, per member who joined, and the 429s among them."""
        self.step("Requests per member per platform (counted from the stand-ins' recorded calls)")
        calls = {
            "Discord": self.c.get("/_local/discord/calls").json()["calls"],
            "Telegram": self.c.get("/_local/telegram/calls").json()["calls"],
            "WhatsApp": self.c.get("/_local/whatsapp/calls").json()["calls"],
        }
        figures = {}
        for platform, recorded in calls.items():
            limited = sum(x.get("status") == 429 or x.get("error_code") in (130429, 131056, 80007, 4) for x in recorded)
            figures[platform] = {"requests": len(recorded), "members": 1, "per_member": float(len(recorded)),
                                 "rate_limited": limited}
            self.say(f"{platform}: {len(recorded)} requests for 1 member ({len(recorded)}/member), {limited} × 429")
        self.say("(Discord: a whole month-and-a-half life: join, renewals, reminders, removal; Telegram: join and a "
                 "declined stranger; WhatsApp: join and end of access)")
        return figures

    def connect_discord(self, plan_id: str) -> Reply:
        """Join page → Discord's authorize page → back on the join page, connected."""
        c = self.c
        to_discord = self.expect(c.get(f"/auth/discord/start?plan_id={plan_id}"), 302, "start Discord OAuth2")
        authorize = urlsplit(to_discord.location)
        params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        self.say(f"redirected to Discord's authorize page (scopes: {params.get('scope')})")
        back = self.expect(c.post(authorize.path, form={**params, "username": "alice", "decision": "allow"}), 302,
                           "authorize on Discord")
        landed = c.follow(c.get(back.location))
        if "data-discord-user=" not in landed.text:
            raise StoryFailed(f"the member is not shown as connected: {landed.text[:300]}")
        return landed

    def look_at_billing(self, reminder: str, plan_id: str) -> None:
        """The member follows the reminder's link to Stripe's customer portal, and leaves."""
        c = self.c
        direct = re.search(r"https?://\S+/billing/portal/[A-Za-z0-9_-]+", reminder)
        if direct is not None:
            # Their personal billing link: straight to the portal, from any browser.
            to_portal = self.expect(c.get(urlsplit(direct.group(0)).path), 303, "open the billing link")
            portal = self.expect(c.get(to_portal.location), 200, "Stripe's customer portal")
            if "Update card and pay now" not in portal.text:
                raise StoryFailed(f"the portal does not offer to fix the payment: {portal.text[:300]}")
            self.say(f"🔧 the reminder's link → Stripe's customer portal ({urlsplit(to_portal.location).path}): "
                     "update card and pay now, cancel at period end, or cancel now")
            self.say("they close it without paying…")
            return
        link = re.search(r"https?://\S+\?manage=1", reminder)
        if link is None:
            raise StoryFailed(f"the reminder has no manage link: {reminder}")
        page = self.expect(c.get(link.group(0)), 200, "open the manage link")
        # Markers, not wording: the page speaks the community's language (French here).
        if "action='/billing/portal'" not in page.text:
            if "data-discord-user=" in page.text or "href='/auth/discord/start" not in page.text:
                raise StoryFailed(f"the manage link neither offers billing nor asks to connect: {page.text[:300]}")
            self.say("the manage link asks for the Discord account they subscribed with (last month's session "
                     "has expired), so they connect it again")
            page = self.connect_discord(plan_id)
        if "action='/billing/portal'" not in page.text or "action='/checkout'" in page.text:
            raise StoryFailed(f"the join page should offer to manage billing, not to pay again: {page.text[:300]}")
        to_portal = self.expect(c.post("/billing/portal", form={"plan_id": plan_id}), 303, "open the billing portal")
        portal = self.expect(c.get(to_portal.location), 200, "Stripe's customer portal")
        if "Update card and pay now" not in portal.text:
            raise StoryFailed(f"the portal does not offer to fix the payment: {portal.text[:300]}")
        self.say(f"🔧 “Gérer ma facturation” → Stripe's customer portal ({urlsplit(to_portal.location).path}): "
                 "update card and pay now, cancel at period end, or cancel now")
        self.say("they close it without paying…")

    def kpis(self) -> dict:
        kpis = self.expect(self.c.get("/admin/kpis", admin=True), 200, "kpis").json()
        mrr = ", ".join(format_amount(amount, cur) for cur, amount in kpis["mrr"].items()) or "0"
        self.say(f"📊 KPIs: active paying members {kpis['active_paying_members']} · MRR {mrr} · "
                 f"in grace {kpis['members_in_grace']} · with access {kpis['members_with_access']}")
        return kpis

    def to_period_end(self, sub_id: str) -> dict:
        seconds = self.until_period_end(sub_id)
        return self.advance(seconds, f"{seconds / DAY:.0f} days, to the end of the period (Stripe bills it)")

    def until_period_end(self, sub_id: str) -> int:
        sub = self.expect(self.c.get(f"/_local/stripe/_control/subscriptions/{sub_id}"), 200, "subscription").json()
        end = sub["items"]["data"][0]["current_period_end"]
        return max(end - self.c.get("/_local/clock").json()["epoch"], 0)

    def paid_renewals(self, sub_id: str) -> int:
        events = self.c.get("/_local/stripe/_control/events").json()["data"]
        return sum(
            e["type"] == "invoice.paid" and e["data"]["object"]["billing_reason"] == "subscription_cycle"
            and e["data"]["object"]["parent"]["subscription_details"]["subscription"] == sub_id
            for e in events
        )

    def _subscription_of(self, customer: str) -> str:
        events = self.c.get("/_local/stripe/_control/events").json()["data"]
        for event in events:
            obj = event["data"]["object"]
            if obj.get("object") == "subscription" and obj.get("customer") == customer:
                return obj["id"]
        raise StoryFailed(f"no subscription found for {customer}")


def kpi_table(kpis: dict) -> str:
    """The creator's numbers as a plain table (GET /admin/kpis: this month to date)."""
    rows = [("period", f"{kpis['period_start']} → {kpis['period_end']} ({kpis['time_zone']})")]
    for currency, amount in kpis["mrr"].items():
        rows.append((f"MRR {currency.upper()}", format_amount(amount, currency)))
        moves = kpis["movements"].get(currency, {})
        rows.append((f"  movements {currency.upper()}", ", ".join(
            f"{k} {format_amount(v, currency)}" for k, v in moves.items())))
    rows += [
        ("paying members", str(kpis["paying_members"])),
        ("trialing members", str(kpis["trialing_members"])),
        ("members in grace", str(kpis["grace_members"])),
        ("members with access", str(kpis["members_with_access"])),
        ("member churn rate", "–" if kpis["churn"]["logo_rate"] is None else f"{kpis['churn']['logo_rate'] * 100:.1f} %"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["", "KPIs", *(f"  {k.ljust(width)}  {v}" for k, v in rows)])


def main() -> int:
    port = int(os.environ.get("DEMO_PORT") or free_port())
    admin_token = os.environ.get("ADMIN_TOKEN") or "demo-admin-token"
    print(f"Starting the local stack on 127.0.0.1:{port} (moto + Stripe sandbox + Discord stand-in; log: {LOG})")
    process = start_stack(port, {"ADMIN_TOKEN": admin_token})
    client = Client(f"http://127.0.0.1:{port}", admin_token)
    started = time.monotonic()
    try:
        client.wait_healthy()
        print(f"Ready in {time.monotonic() - started:.1f} s.")
        kpis = Story(client).run()
        print("\nThe whole story happened as it should. ✔")
        # Read again: the Telegram and WhatsApp members paid after the Discord chapter's numbers.
        kpis = client.get("/admin/kpis", admin=True).json()
        print(kpi_table(kpis))
        print(f"\nDashboard: {client.base_url}/admin/dashboard (admin token: {admin_token})")
        if sys.stdin.isatty():
            # The stack lives as long as the demo process: keep it up while the creator looks.
            input("The stack stays up while you look; press Enter to stop it. ")
        return 0
    except (StoryFailed, TimeoutError) as error:
        print(f"\n✘ The story broke: {error}", file=sys.stderr)
        tail = LOG.read_text(errors="replace").splitlines()[-30:] if LOG.exists() else []
        print("Last lines of the stack's log:\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
