"""The WhatsApp webhook through its handler under moto: handshake, signatures, one-time code binding, the pay link."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from membergate import bootstrap
from membergate.domain.whatsapp import compute_signature, find_code
from tests.integration.test_member_journey import PRICE, pay
from tests.support.aws import put_secret
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.pipeline import Pipeline
from tests.support.whatsapp_spec import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, SpecCheckingCloudTransport, whatsapp_spec

pytestmark = pytest.mark.integration

BUSINESS = "+15550783881"
VERIFY = "verify-me-0123"
PHONE = "+33612345678"
OTHER = "+33798765432"
WA_ENV = {
    "WHATSAPP_ACCESS_TOKEN_NAME": "/membergate/whatsapp-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
    "WHATSAPP_APP_SECRET_NAME": "/membergate/whatsapp-app-secret",
    "WHATSAPP_VERIFY_TOKEN_NAME": "/membergate/whatsapp-verify-token",
    "WHATSAPP_BUSINESS_NUMBER": BUSINESS,
}


@pytest.fixture
def wa():
    cloud = SpecCheckingCloudTransport(whatsapp_spec())
    with Pipeline(SpecCheckingDiscordTransport(), env=WA_ENV) as p:
        put_secret("/membergate/whatsapp-access-token", ACCESS_TOKEN)
        put_secret("/membergate/whatsapp-app-secret", APP_SECRET)
        put_secret("/membergate/whatsapp-verify-token", VERIFY)
        with bootstrap.overridden(clock=p.clock, whatsapp_transport=cloud,
                                  discord_transport=p.discord, stripe_http_client=bootstrap._overrides.stripe_http_client):
            p.cloud = cloud
            yield p


INVITE = "https://chat.whatsapp.com/AbCdEfGhIjKlMn0123"


def setup_catalog(p: Pipeline, invite_link: str = INVITE) -> str:
    """A manual-mode WhatsApp group and a monthly plan granting it; returns the plan id."""
    p.sandbox.register_price(PRICE, 900, "eur")
    community = p.admin("POST", "/admin/communities", body={
        "platform": "whatsapp", "name": "Cercle", "mode": "manual", "invite_link": invite_link, "locale": "fr"})
    assert community["status"] == 201, community
    plan = p.admin("POST", "/admin/plans", body={
        "name": "Monthly", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["body"]["id"]}]})
    assert plan["status"] == 201, plan
    return plan["body"]["id"]


def inbound(phone: str, text: str, message_id: str = "wamid.A1") -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS[1:], "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Camille"}, "wa_id": phone[1:]}],
            "messages": [{"from": phone[1:], "id": message_id, "timestamp": "1800000000",
                          "text": {"body": text}, "type": "text"}],
        }}]}],
    }
    return json.dumps(payload).encode()


def post(p: Pipeline, body: bytes, signature: str | None = "valid") -> dict:
    headers = {"content-type": "application/json"}
    if signature == "valid":
        headers["x-hub-signature-256"] = compute_signature(APP_SECRET, body)
    elif signature is not None:
        headers["x-hub-signature-256"] = signature
    try:
        body.decode()
        binary = False
    except UnicodeDecodeError:
        binary = True  # API Gateway hands bodies that are not UTF-8 over in base64
    return p.call("whatsapp_webhook", "POST", "/webhooks/whatsapp", body=body, headers=headers, base64_body=binary)


def join_code(p: Pipeline, plan_id: str) -> tuple[str, str]:
    """The wa.me link the join step redirects to, and the text it types in."""
    reply = p.call("whatsapp_webhook", "GET", f"/whatsapp/start/{plan_id}")
    assert reply["statusCode"] == 302, reply
    link = reply["headers"]["Location"]
    assert link.startswith(f"https://wa.me/{BUSINESS[1:]}?text=")
    return link, unquote(parse_qs(urlsplit(link).query)["text"][0])


def test_whatsapp_handshake_with_the_verify_token_echoes_the_challenge(wa):
    # Given Meta's subscription handshake with the configured verify token
    # When it calls the webhook
    ok = wa.call("whatsapp_webhook", "GET", f"/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444")
    wrong = wa.call("whatsapp_webhook", "GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444")
    # Then the right token gets the challenge back, a wrong one 403 in the error envelope
    assert ok["statusCode"] == 200 and ok["body"] == "1158201444"
    assert wrong["statusCode"] == 403 and json.loads(wrong["body"])["error"]["code"]


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha256=é", "garbage"])
def test_whatsapp_webhook_without_a_valid_signature_is_401_and_binds_nothing(wa, signature):
    # Given a live join code
    plan_id = setup_catalog(wa)
    _, text = join_code(wa, plan_id)
    # When a message carrying it arrives unsigned or badly signed
    reply = post(wa, inbound(PHONE, text), signature)
    # Then 401, nothing is bound, nothing is sent, and the code still works afterwards
    assert reply["statusCode"] == 401
    assert json.loads(reply["body"])["error"]["code"] == "invalid_signature"
    assert wa.admin("GET", f"/admin/members?whatsapp_phone=%2B{PHONE[1:]}")["body"].get("members", []) == []
    assert wa.cloud.sent == []
    assert json.loads(post(wa, inbound(PHONE, text))["body"])["outcomes"] == ["bound"]


def test_whatsapp_code_binds_the_first_phone_once_and_the_reply_leads_to_checkout(wa):
    # Given a join code from the join step
    plan_id = setup_catalog(wa)
    _, text = join_code(wa, plan_id)
    assert find_code(text)
    # When P sends it, then a second phone sends the same text, then Meta redelivers P's message
    first = post(wa, inbound(PHONE, text, "wamid.P1"))
    second = post(wa, inbound(OTHER, text, "wamid.O1"))
    again = post(wa, inbound(PHONE, text, "wamid.P1"))
    # Then P is bound (as E.164), the other phone is not, and the redelivery does nothing
    assert json.loads(first["body"])["outcomes"] == ["bound"]
    assert json.loads(second["body"])["outcomes"] == ["no_code"]
    assert json.loads(again["body"])["outcomes"] == ["duplicate"]
    found = wa.admin("GET", f"/admin/members?whatsapp_phone=%2B{PHONE[1:]}")
    assert found["status"] == 200 and len(found["body"]["members"]) == 1
    assert wa.admin("GET", f"/admin/members?whatsapp_phone=%2B{OTHER[1:]}")["body"]["members"] == []
    # (a "+" lost in the query string still finds P; a number too short is a 400 naming the field)
    assert [m["id"] for m in wa.admin("GET", f"/admin/members?whatsapp_phone={PHONE[1:]}")["body"]["members"]] == [
        found["body"]["members"][0]["id"]]
    short = wa.admin("GET", "/admin/members?whatsapp_phone=%2B123456")
    assert short["status"] == 400 and short["body"]["error"]["field"] == "whatsapp_phone"
    # And P's reply is text (the window is open) with a pay link; the other phone is told what to do
    to_p, to_other = wa.cloud.sent
    assert to_p["to"] == PHONE and to_p["type"] == "text" and to_p["recipient_type"] == "individual"
    assert to_other["to"] == OTHER and "join page" in to_other["text"]["body"]
    pay_url = next(w for w in to_p["text"]["body"].split() if "/whatsapp/pay/" in w)
    path = urlsplit(pay_url).path
    # When P opens the pay link: back to the join page, under a session for P's membership
    opened = wa.call("whatsapp_webhook", "GET", path)
    assert opened["statusCode"] == 303 and opened["headers"]["Location"].endswith(f"/join/{plan_id}")
    cookie = opened["cookies"][0].split(";")[0]
    # Then the join page shows the number as linked (masked) and the pay button
    page = wa.call("join", "GET", f"/join/{plan_id}", cookies=[cookie])
    assert page["statusCode"] == 200 and "action='/checkout'" in page["body"], page
    assert "+33•••678" in page["body"] and PHONE not in page["body"].replace(f"data-whatsapp-phone='{PHONE}'", "")
    checkout = wa.call("start_checkout", "POST", "/checkout", body={"plan_id": plan_id, "waiver": True}, cookies=[cookie])
    assert checkout["statusCode"] == 201, checkout
    assert json.loads(checkout["body"])["checkout_url"]
    # And the pay link works once
    assert wa.call("whatsapp_webhook", "GET", path)["statusCode"] == 400


def test_whatsapp_binding_counts_as_bound_in_the_funnel_once(wa):
    # Given a join code from a WhatsApp plan's join step
    plan_id = setup_catalog(wa)
    _, text = join_code(wa, plan_id)
    # When the phone sends it, Meta redelivers it, and another phone sends the same text
    post(wa, inbound(PHONE, text, "wamid.F1"))
    post(wa, inbound(PHONE, text, "wamid.F1"))
    post(wa, inbound(OTHER, text, "wamid.F2"))
    # Then the funnel counts one account bound, for that plan, as a Discord or Telegram binding counts
    conversion = wa.admin("GET", "/admin/kpis")["body"]["conversion"]
    assert conversion["bound"] == 1 and conversion["by_plan"][plan_id]["bound"] == 1


def test_whatsapp_code_expires(wa):
    # Given a join code, and 31 minutes passing
    plan_id = setup_catalog(wa)
    _, text = join_code(wa, plan_id)
    wa.clock.value += 31 * 60
    # When P sends it
    reply = post(wa, inbound(PHONE, text))
    # Then nothing is bound
    assert json.loads(reply["body"])["outcomes"] == ["no_code"]


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{" * 100_000 + b"}" * 100_000, b"[]", b'{"object": "page"}'])
def test_whatsapp_webhook_signed_garbage_is_a_4xx_envelope(wa, body):
    # Given a correctly signed body that is not a WhatsApp webhook
    # When it is posted
    reply = post(wa, body)
    # Then a 4xx with the error envelope, never a 5xx
    assert 400 <= reply["statusCode"] < 500, reply
    assert json.loads(reply["body"])["error"]["code"]


def test_whatsapp_start_and_pay_link_refuse_hostile_ids(wa):
    # Given ids that are not ids
    for path in ["/whatsapp/start/%0D%0Ax", "/whatsapp/start/pln_nope", "/whatsapp/start/%E9t%C3%A9",
                 "/whatsapp/pay/%E9t%C3%A9", "/whatsapp/pay/abc%0D%0A", "/whatsapp/pay/tok_unknown"]:
        # When they are requested
        reply = wa.call("whatsapp_webhook", "GET", path)
        # Then an HTML page saying so, never a 5xx
        assert 400 <= reply["statusCode"] < 500, (path, reply)
        assert reply["headers"]["Content-Type"].startswith("text/html"), (path, reply)


def test_whatsapp_community_same_group_twice_is_409_and_modes_need_their_place(wa):
    # Given a manual-mode group
    setup_catalog(wa)
    # When the same invite link is added again, and modes come without what they need
    twice = wa.admin("POST", "/admin/communities", body={
        "platform": "whatsapp", "name": "Again", "mode": "manual", "invite_link": INVITE})
    no_link = wa.admin("POST", "/admin/communities", body={"platform": "whatsapp", "name": "X", "mode": "manual"})
    no_group = wa.admin("POST", "/admin/communities", body={"platform": "whatsapp", "name": "X", "mode": "official"})
    # Then 409 for the duplicate, 400 naming the missing field otherwise
    assert twice["status"] == 409 and twice["body"]["error"]["code"] == "conflict"
    assert no_link["status"] == 400 and no_link["body"]["error"]["field"] == "invite_link"
    assert no_group["status"] == 400 and no_group["body"]["error"]["field"] == "group_id"
    listed = wa.admin("GET", "/admin/communities")["body"]["communities"]
    assert [(c["platform"], c["mode"], c["invite_link"]) for c in listed] == [("whatsapp", "manual", INVITE)]


def bind_and_pay(p: Pipeline, plan_id: str, phone: str = PHONE, message_id: str = "wamid.J1") -> None:
    """Join step → P sends the code → pay link → Checkout paid by card (queues pumped)."""
    _, text = join_code(p, plan_id)
    assert json.loads(post(p, inbound(phone, text, message_id))["body"])["outcomes"] == ["bound"]
    pay_url = next(w for w in p.cloud.sent[-1]["text"]["body"].split() if "/whatsapp/pay/" in w)
    cookie = p.call("whatsapp_webhook", "GET", urlsplit(pay_url).path)["cookies"][0].split(";")[0]
    pay(p, cookie, plan_id)


def texts_to(p: Pipeline, phone: str) -> list[dict]:
    return [m for m in p.cloud.sent if m["to"] == phone]


def test_whatsapp_manual_member_gets_the_invite_then_the_creator_a_removal_task(wa):
    # Given a manual-mode group and a member who bound their phone and paid
    plan_id = setup_catalog(wa)
    bind_and_pay(wa, plan_id)
    community_id = wa.admin("GET", "/admin/communities")["body"]["communities"][0]["id"]
    # Then the member got the group's invite link as text (their window is open), then the welcome,
    # and access is granted
    invite, welcome = texts_to(wa, PHONE)[-2:]
    assert invite["type"] == "text" and INVITE in invite["text"]["body"]
    assert welcome["type"] == "text" and welcome["text"]["body"].startswith("Bienvenue dans Cercle")
    member = wa.admin("GET", f"/admin/members?whatsapp_phone=%2B{PHONE[1:]}")["body"]["members"][0]
    assert member["access"][0]["state"] == "granted", member
    assert wa.admin("GET", f"/admin/communities/{community_id}/tasks")["body"] == {"tasks": []}
    # When the subscription is cancelled in Stripe (access ends), two days later (outside the window)
    sub_id = next(e["data"]["object"]["id"] for e in wa.delivered if e["type"] == "customer.subscription.created")
    wa.advance(2 * 86_400)
    wa.sandbox.cancel(sub_id)
    wa.pump()
    # Then the member is told by template (the 24-hour window closed) and the creator has a removal task
    told = texts_to(wa, PHONE)[-1]
    assert told["type"] == "template" and told["template"]["language"]["policy"] == "deterministic"
    # in the community's language, under the configured template name, carrying the French text
    assert (told["template"]["name"], told["template"]["language"]["code"]) == ("membergate_notice", "fr")
    assert "Ton accès à Cercle est terminé" in told["template"]["components"][0]["parameters"][0]["text"]
    tasks = wa.admin("GET", f"/admin/communities/{community_id}/tasks")["body"]["tasks"]
    assert [(t["kind"], t["phone"], t["member_id"], t["done"]) for t in tasks] == [("remove", PHONE, member["id"], False)]
    # When the creator marks it done
    done = wa.admin("POST", f"/admin/communities/{community_id}/tasks/{tasks[0]['id']}/done")
    # Then it is gone from the list; an unknown task is 404 in the envelope
    assert done["status"] == 200 and done["body"]["done"] is True
    assert wa.admin("GET", f"/admin/communities/{community_id}/tasks")["body"] == {"tasks": []}
    # and the audit log says who marked it done, for which member
    [entry] = [e for e in wa.admin("GET", "/admin/audit")["body"]["entries"] if e["action"] == "task.done"]
    assert (entry["target"], entry["member_id"]) == (tasks[0]["id"], member["id"])
    missing = wa.admin("POST", f"/admin/communities/{community_id}/tasks/task_nope/done")
    assert missing["status"] == 404 and missing["body"]["error"]["code"] == "not_found"


def test_whatsapp_manual_paying_again_before_removal_cancels_the_task(wa):
    # Given a member whose access ended, with the removal task still open
    plan_id = setup_catalog(wa)
    bind_and_pay(wa, plan_id)
    community_id = wa.admin("GET", "/admin/communities")["body"]["communities"][0]["id"]
    sub_id = next(e["data"]["object"]["id"] for e in wa.delivered if e["type"] == "customer.subscription.created")
    wa.sandbox.cancel(sub_id)
    wa.pump()
    assert len(wa.admin("GET", f"/admin/communities/{community_id}/tasks")["body"]["tasks"]) == 1
    # When they come back: send a new code and pay again
    wa.advance(3600)
    bind_and_pay(wa, plan_id, message_id="wamid.J2")
    # Then the task is cancelled and they got the invite link again, and (told before that access ended)
    # the message that it is back
    assert wa.admin("GET", f"/admin/communities/{community_id}/tasks")["body"] == {"tasks": []}
    recent = [m["text"]["body"] for m in texts_to(wa, PHONE)[-2:]]
    assert any(INVITE in body for body in recent), recent
    assert any("retrouvé ton accès" in body for body in recent), recent
