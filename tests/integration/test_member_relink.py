"""A member moves their membership to another account from their own manage page (Discord and Telegram)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from membergate import bootstrap
from tests.integration.test_member_journey import FORM, GUILD, ROLE, USER, bind_discord, pay, setup_catalog
from tests.integration import test_telegram_journey as tg
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline
from tests.support.telegram_spec import updates

pytestmark = pytest.mark.integration

NEW_USER = "800000000000000004"


@pytest.fixture
def pipeline():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    discord.add_user(NEW_USER)
    with Pipeline(discord) as p:
        yield p


def manage_page(p: Pipeline, plan_id: str, cookie: str, query: str = "") -> str:
    page = p.call("join", "GET", f"/join/{plan_id}?manage=1{query}", cookies=[cookie])
    assert page["statusCode"] == 200, page
    return page["body"]


def proof_of(page: str) -> str:
    return re.search(r"name=proof value='([^']+)'", page).group(1)


def relink_to(p: Pipeline, plan_id: str, cookie: str, proof: str, user: str) -> dict:
    """Manage page form → Discord consent (the member picks ``user``) → callback."""
    start = p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}&proof={proof}",
                   cookies=[cookie], headers=FORM)
    assert start["statusCode"] == 303, start
    query = parse_qs(urlsplit(start["headers"]["Location"]).query)
    code = p.discord.issue_code(user, query["redirect_uri"][0])
    return p.call("join", "GET", f"/auth/discord/callback?code={code}&state={query['state'][0]}", cookies=[cookie])


def test_member_relink_from_the_manage_page_moves_the_role_to_the_new_discord_account(pipeline):
    p = pipeline
    # Given a paying member whose first Discord account has the role, their second account in the server
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    p.discord.guilds[GUILD].members[NEW_USER] = set()
    member_id = p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"][0]["id"]
    page = manage_page(p, plan_id, cookie)
    assert f"@user{USER[-4:]}" in page and "<form method=post action='/auth/discord/relink'" in page
    # When the member uses the manage page's "use another Discord account" and picks the second account
    back = relink_to(p, plan_id, cookie, proof_of(page), NEW_USER)
    p.pump()
    # Then they are back on the manage page under a fresh session, which names the new account
    assert back["statusCode"] == 303, back
    assert back["headers"]["Location"].endswith(f"/join/{plan_id}?manage=1&relinked=1")
    fresh = back["cookies"][0].split(";")[0]
    assert fresh != cookie
    after = manage_page(p, plan_id, fresh, "&relinked=1")
    assert f"your membership now uses <b class=handle>@user{NEW_USER[-4:]}</b>" in after
    # And the access moved: the new account has the role, the old one lost it, the membership is the same
    assert p.discord.guilds[GUILD].members[NEW_USER] == {ROLE}
    assert p.discord.guilds[GUILD].members[USER] == set()
    found = p.admin("GET", f"/admin/members?discord_user_id={NEW_USER}")["body"]["members"]
    assert [m["id"] for m in found] == [member_id]
    assert p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"] == []
    # And the old session no longer opens the manage page as the member
    assert "name=proof" not in manage_page(p, plan_id, cookie)


def test_member_relink_without_the_page_proof_or_session_is_refused_and_moves_nothing(pipeline):
    p = pipeline
    # Given a paying member
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    proof = proof_of(manage_page(p, plan_id, cookie))
    # When a form is posted from elsewhere: no proof, a forged one, hostile input, no session, another session's
    attempts = [
        p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}", cookies=[cookie], headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}&proof=forged", cookies=[cookie], headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}&proof=%C3%A9%0D%0A", cookies=[cookie], headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}&proof={proof}", headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=f"plan_id={plan_id}&proof={proof}",
               cookies=["mg_session=someone-elses-session-id-000"], headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body="plan_id=pln_%0D%0Anope&proof=x", cookies=[cookie], headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=b"plan_id=\xff\xfe", base64_body=True, cookies=[cookie],
               headers=FORM),
        p.call("join", "POST", "/auth/discord/relink", body=json.dumps({"a": [[[[[[]]]]]]}), cookies=[cookie],
               headers={"content-type": "application/json"}),
    ]
    # Then each is a 4xx page (never a redirect to Discord, never a 5xx), and the member keeps their account
    statuses = [a["statusCode"] for a in attempts]
    assert all(400 <= s < 500 for s in statuses), statuses
    assert all("Location" not in (a.get("headers") or {}) for a in attempts)
    assert p.admin("GET", f"/admin/members?discord_user_id={USER}")["body"]["members"]
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}


def test_member_relink_to_an_account_with_its_own_membership_is_refused(pipeline):
    p = pipeline
    # Given a paying member, and another member already bound to the second account
    plan_id = setup_catalog(p)
    cookie = bind_discord(p, plan_id)
    pay(p, cookie, plan_id)
    from membergate.domain.model import Identity, Member, Platform

    stores = bootstrap.admin().stores
    stores.members.create(Member(id="mbr_other", created_at=0))
    stores.members.bind_identity("mbr_other", Identity(Platform.DISCORD, NEW_USER))
    # When the member tries to move their membership to that account
    back = relink_to(p, plan_id, cookie, proof_of(manage_page(p, plan_id, cookie)), NEW_USER)
    # Then it is refused with what to do next, and nothing moved
    assert back["statusCode"] == 409 and "own membership" in back["body"]
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    assert [m["id"] for m in p.admin("GET", f"/admin/members?discord_user_id={NEW_USER}")["body"]["members"]] == ["mbr_other"]


# --- Telegram --------------------------------------------------------------------------------

NEW_TG_USER = 7001002999


@pytest.fixture
def telegram():
    return tg.FakeTelegramTransport(tg.load_spec())


@pytest.fixture
def tg_pipeline(telegram):
    with Pipeline(SpecCheckingDiscordTransport(), env=tg.TELEGRAM_ENV) as p:
        tg.put_secret("/membergate/telegram-bot-token", tg.BOT_TOKEN)
        tg.put_secret("/membergate/telegram-webhook-secret", tg.SECRET)
        with bootstrap.overridden(telegram_transport=telegram):
            yield p


def test_member_relink_telegram_moves_the_membership_and_takes_the_old_account_out(tg_pipeline, telegram):
    p = tg_pipeline
    # Given a paying Telegram member who joined the chat
    plan_id = tg.setup_catalog(p)
    cookie = tg.bind_and_pay(p, telegram, plan_id)
    created = telegram.calls_to("createChatInviteLink")[0].params
    link = re.search(r"https://t\.me/\+\w+", telegram.calls_to("sendMessage")[-1].params["text"]).group(0)
    tg.post_update(p, updates.join_request(tg.CHAT, tg.USER, link, link_name=created["name"]))
    telegram.chat_members[(tg.CHAT, tg.USER)] = {"status": "member", "user": {"id": tg.USER, "is_bot": False, "first_name": "Ana"}}
    p.pump()
    member_id = p.admin("GET", f"/admin/members?telegram_user_id={tg.USER}")["body"]["members"][0]["id"]
    page = manage_page(p, plan_id, cookie)
    assert f"<form method=post action='/telegram/relink/{plan_id}'" in page
    # When the member asks for another Telegram account and starts the bot from it (in French)
    start = p.call("telegram_webhook", "POST", f"/telegram/relink/{plan_id}",
                   body=f"plan_id={plan_id}&proof={proof_of(page)}", cookies=[cookie], headers=FORM)
    assert start["statusCode"] == 303, start
    token = parse_qs(urlsplit(start["headers"]["Location"]).query)["start"][0]
    reply = tg.post_update(p, updates.start(NEW_TG_USER, token, username="ana_new", language_code="fr"))
    p.pump()
    # Then the new account holds the membership, the old one was banned then unbanned, and the bot said so in French
    assert reply["body"]["outcome"] == "relinked"
    found = p.admin("GET", f"/admin/members?telegram_user_id={NEW_TG_USER}")["body"]["members"]
    assert [m["id"] for m in found] == [member_id]
    assert p.admin("GET", f"/admin/members?telegram_user_id={tg.USER}")["body"]["members"] == []
    assert [c.params["user_id"] for c in telegram.calls_to("banChatMember")] == [tg.USER]
    to_new = [c.params for c in telegram.calls_to("sendMessage") if c.params["chat_id"] == NEW_TG_USER]
    assert "ton abonnement utilise maintenant ce compte Telegram" in to_new[0]["text"]
    # And a personal invite went to the new account; its button signs the browser in afresh on the manage page
    assert any("t.me/+" in c["text"] for c in to_new[1:]), to_new
    button = to_new[0]["reply_markup"]["inline_keyboard"][0][0]["url"]
    opened = p.call("telegram_webhook", "GET", urlsplit(button).path)
    assert opened["headers"]["Location"].endswith(f"/join/{plan_id}?manage=1")
    assert "@ana_new" in manage_page(p, plan_id, opened["cookies"][0].split(";")[0])


def test_member_relink_telegram_without_the_proof_is_refused(tg_pipeline, telegram):
    p = tg_pipeline
    # Given a paying Telegram member
    plan_id = tg.setup_catalog(p)
    cookie = tg.bind_and_pay(p, telegram, plan_id)
    # When the relink form is posted without the page's proof, as JSON, or for a hostile plan id
    attempts = [
        p.call("telegram_webhook", "POST", f"/telegram/relink/{plan_id}", body=f"plan_id={plan_id}&proof=x",
               cookies=[cookie], headers=FORM),
        p.call("telegram_webhook", "POST", f"/telegram/relink/{plan_id}", body="{}", cookies=[cookie],
               headers={"content-type": "application/json"}),
        p.call("telegram_webhook", "POST", "/telegram/relink/pln_%E2%9C%93", body="proof=x", cookies=[cookie], headers=FORM),
    ]
    # Then each is a 4xx, never a t.me link
    assert [a["statusCode"] for a in attempts] == [400, 415, 404]
    assert all("Location" not in (a.get("headers") or {}) for a in attempts)
