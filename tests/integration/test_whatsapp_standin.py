"""The WhatsApp stand-in driven through the real clients: messages, the window, groups, the gateway, limits, webhooks."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from infra.local.whatsapp_standin import WhatsAppStandIn
from membergate.adapters.whatsapp import CloudRateLimits, Template, WhatsAppCloudApi, WhatsAppGateway
from membergate.domain import whatsapp as wa
from membergate.domain.errors import PermanentError, RetryableError
from membergate.domain.whatsapp import MessageKind
from tests.support.discord_spec import FakeClock
from tests.support.whatsapp_spec import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, WsgiTransport, whatsapp_spec

pytestmark = pytest.mark.integration

ROOT = "http://whatsapp.local"
WEBHOOK_URL = "https://members.example/webhooks/whatsapp"
MEMBER = "+33612345678"
STRANGER = "+447700900123"
WELCOME = Template("membergate_access_granted", "fr", ("Camille",))


class Receiver:
    """Membergate's webhook endpoint as far as the stand-in can tell: verifies and parses what arrives."""

    def __init__(self):
        self.batches: list[wa.WebhookBatch] = []
        self.refused = 0

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        assert url == WEBHOOK_URL
        try:
            wa.verify_signature(body, headers.get("X-Hub-Signature-256"), APP_SECRET)
        except Exception:  # noqa: BLE001 - what the endpoint would answer
            self.refused += 1
            return 401
        self.batches.append(wa.parse_webhook(json.loads(body)))
        return 200

    @property
    def messages(self) -> list[wa.InboundMessage]:
        return [m for b in self.batches for m in b.messages]

    @property
    def statuses(self) -> list[wa.StatusUpdate]:
        return [s for b in self.batches for s in b.statuses]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_780_000_000.0)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def standin(clock, receiver) -> WhatsAppStandIn:
    return WhatsAppStandIn(
        app_secret=APP_SECRET, webhook_url=WEBHOOK_URL, deliver=receiver, clock=clock.monotonic,
        spec=whatsapp_spec(), phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
        templates={"membergate_access_granted"}, messages_per_second=5, pair_limit=3,
    )


@pytest.fixture
def control(standin) -> Client:
    return Client(standin)


@pytest.fixture
def api(standin, clock) -> WhatsAppCloudApi:
    return WhatsAppCloudApi(WsgiTransport(standin, ROOT, spec=standin.spec), lambda: ACCESS_TOKEN, PHONE_NUMBER_ID,
                            f"{ROOT}/v23.0", sleep=clock.sleep, monotonic=clock.monotonic, limits=CloudRateLimits())


def _group(control: Client, **body) -> dict:
    answer = control.post("/_control/groups", json=body)
    assert answer.status_code == 201
    return answer.get_json()


def test_inbound_message_reaches_membergate_signed_with_phone_code_and_window(control, receiver):
    # Given a member who opens the wa.me link and sends the prefilled text
    code = wa.format_code(42)
    link = wa.wa_me_link("+15550783881", f"Je rejoins le cercle : {code}")
    text = __import__("urllib.parse").parse.parse_qs(link.split("?", 1)[1])["text"][0]
    # When the stand-in simulates the inbound message
    answer = control.post("/_control/inbound", json={"from": MEMBER, "text": text, "profile_name": "Zoé"})
    # Then Membergate received Meta's shape, signed with the app secret, with the code and phone
    assert answer.get_json()["delivered_status"] == 200 and receiver.refused == 0
    (message,) = receiver.messages
    assert (message.phone, wa.find_code(message.text), message.profile_name) == (MEMBER, code, "Zoé")
    assert message.timestamp == 1_780_000_000


def test_text_inside_window_is_delivered_outside_fails_by_webhook_then_template_goes(control, api, standin, receiver, clock):
    # Given the member wrote to the business
    control.post("/_control/inbound", json={"from": MEMBER, "text": "hello"})
    # When a text is sent within the window / Then it is delivered, no failure
    api.send_text(MEMBER, "Bienvenue")
    assert standin.messages[-1]["status"] == "sent" and receiver.statuses == []
    # When two days later a text is sent anyway (Meta accepts it, then fails it)
    clock.now += 2 * 24 * 3600
    message_id = api.send_text(MEMBER, "Ton accès se termine")
    # Then a signed "failed" status with 131047 arrives, and the template is what reaches the member
    (failed,) = receiver.statuses
    assert failed.message_id == message_id and failed.failure.reason == "whatsapp_window_closed"
    kind, _ = api.notify(MEMBER, "Ton accès se termine", WELCOME, last_inbound_at=receiver.messages[-1].timestamp,
                         now=int(clock.now))
    assert kind is MessageKind.TEMPLATE and standin.messages[-1]["status"] == "sent"


def test_unknown_template_is_refused_and_unreachable_number_fails_by_webhook(control, api, receiver):
    with pytest.raises(PermanentError) as refused:
        api.send_template(MEMBER, Template("not_approved", "fr"))
    assert refused.value.reason == "whatsapp_template_missing"
    control.post("/_control/unreachable", json={"phone": STRANGER})
    api.send_template(STRANGER, WELCOME)
    assert [s.failure.reason for s in receiver.statuses] == ["whatsapp_undeliverable"]


def test_official_group_invite_join_requests_approve_only_the_payer_and_remove(control, api):
    # Given an official group; the member and a stranger with a forwarded link ask to join
    group = _group(control, subject="Cercle Mastermind")
    link = api.create_invite_link(group["id"])
    assert control.post("/_control/join_requests", json={"group_id": group["id"], "phone": MEMBER, "invite_link": link}).status_code == 201
    control.post("/_control/join_requests", json={"group_id": group["id"], "phone": STRANGER, "invite_link": link})
    # When Membergate approves the paying number
    approved = api.approve_join_requests_from(group["id"], MEMBER)
    # Then only the member is in; the stranger's request is still pending and can be rejected
    state = control.get(f"/groups/{group['id']}").get_json()
    assert len(approved) == 1 and state["participants"] == [MEMBER]
    stranger_requests = [r.id for r in api.list_join_requests(group["id"]) if r.phone == STRANGER]
    api.reject_join_requests(group["id"], stranger_requests)
    assert control.get(f"/groups/{group['id']}").get_json()["join_requests"] == {}
    # When access ends / Then the member is removed
    api.remove_participants(group["id"], [MEMBER])
    assert api.get_group(group["id"]).participants == ()


def test_official_group_reset_link_takes_no_more_join_requests(control, api):
    group = _group(control)
    old = api.create_invite_link(group["id"])
    api.create_invite_link(group["id"])
    answer = control.post("/_control/join_requests", json={"group_id": group["id"], "phone": STRANGER, "invite_link": old})
    assert answer.status_code == 409


def test_official_group_at_eight_participants_refuses_the_ninth(control, api):
    # Given a group at Meta's cap
    group = _group(control, participants=[f"+3361234560{i}" for i in range(8)])
    control.post("/_control/join_requests", json={"group_id": group["id"], "phone": MEMBER})
    # When the paying member would be approved / Then refused with the fix, and nobody added
    with pytest.raises(PermanentError) as refused:
        api.approve_join_requests_from(group["id"], MEMBER)
    assert refused.value.reason == "whatsapp_group_full"
    assert api.get_group(group["id"]).total_participants == 8


def test_standin_throughput_limit_answers_130429_and_the_client_waits(api, standin, clock):
    # Given the stand-in allows 5 messages per second / When 7 texts to 7 people go at once
    for i in range(7):
        api.send_template(f"+3361234570{i}", WELCOME)
    # Then the stand-in refused some with 130429 and the client waited and sent them all
    statuses = [c["status"] for c in standin.calls]
    assert statuses.count(400) >= 1 and sum(1 for m in standin.messages if m["status"] == "sent") == 7
    assert clock.slept and all(s <= 2.0 for s in clock.slept)


def test_standin_pair_limit_answers_131056_as_retryable(api):
    # Given 3 messages to the same member within 6 seconds (the stand-in's pair limit)
    for _ in range(3):
        api.send_template(MEMBER, WELCOME)
    # When a fourth is sent / Then a retryable error that names the wait
    with pytest.raises(RetryableError) as limited:
        api.send_template(MEMBER, WELCOME)
    assert limited.value.retry_after == 6


def test_standin_refuses_requests_the_spec_does_not_allow_and_records_every_call(standin, control):
    # Given a raw request with a message type the spec does not have
    transport = WsgiTransport(standin, ROOT)
    body = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": MEMBER, "type": "note"}).encode()
    answer = transport.request("POST", f"{ROOT}/v23.0/{PHONE_NUMBER_ID}/messages",
                               headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"},
                               body=body, timeout=5)
    # Then Meta's invalid parameter error, and the call log shows why
    assert answer.status == 400 and answer.json()["error"]["code"] == 100
    (call,) = control.get("/calls").get_json()["calls"]
    assert call["status"] == 400 and "does not match the spec" in call["violation"]


def test_standin_wrong_token_is_190(standin, clock):
    api = WhatsAppCloudApi(WsgiTransport(standin, ROOT), lambda: "EAAwrong", PHONE_NUMBER_ID, f"{ROOT}/v23.0",
                           sleep=clock.sleep, monotonic=clock.monotonic, limits=CloudRateLimits())
    with pytest.raises(PermanentError) as refused:
        api.send_template(MEMBER, WELCOME)
    assert refused.value.reason == "whatsapp_token_invalid"


def test_gateway_mode_add_list_remove_through_the_standin(control, standin):
    # Given a large group run through a self-hosted gateway
    group = _group(control, subject="Communauté")
    gateway = WhatsAppGateway(WsgiTransport(standin, ROOT), f"{ROOT}/gateway", lambda: "local-gateway-key")
    # When the paying member is added (twice), listed and removed (twice)
    gateway.add_participant(group["id"], MEMBER)
    gateway.add_participant(group["id"], MEMBER)
    assert gateway.list_participants(group["id"]) == [MEMBER]
    gateway.remove_participant(group["id"], MEMBER)
    gateway.remove_participant(group["id"], MEMBER)
    # Then the group is empty and every call was recorded
    assert control.get(f"/groups/{group['id']}").get_json()["gateway_participants"] == []
    assert [c["method"] for c in standin.calls] == ["POST", "POST", "GET", "DELETE", "DELETE"]


def test_gateway_wrong_key_is_permanent_with_the_setting_to_fix(control, standin):
    group = _group(control)
    gateway = WhatsAppGateway(WsgiTransport(standin, ROOT), f"{ROOT}/gateway", lambda: "wrong")
    with pytest.raises(PermanentError) as refused:
        gateway.add_participant(group["id"], MEMBER)
    assert refused.value.reason == "whatsapp_gateway_key_invalid" and "WHATSAPP_GATEWAY_KEY" in refused.value.message


def test_standin_status_webhooks_match_the_specs_webhook_payload(control, api, standin, clock):
    # Given a text outside the window and a template to an unreachable number (both fail by webhook)
    control.post("/_control/unreachable", json={"phone": STRANGER})
    api.send_text(MEMBER, "hors fenêtre")
    api.send_template(STRANGER, WELCOME)
    # When the posted status webhooks are checked against the spec's WebhookPayload
    statuses = [w["payload"] for w in standin.webhooks]
    assert len(statuses) == 2
    for payload in statuses:
        standin.spec.validate_schema("#/components/schemas/WebhookPayload", payload, "status webhook")
    # Then they match (inbound text webhooks cannot be checked this way: the spec maps an inbound
    # "text" message to the outgoing TextMessage schema, which requires "to" and "recipient_type")


def test_create_group_returns_a_request_id_and_the_group_arrives_by_webhook(api, standin, receiver, control):
    # When Membergate asks for a new official group
    request_id = api.create_group("Cercle Mastermind")
    # Then a signed group_create webhook ties the request id to the new group, in the spec's shape
    (event,) = [g for b in receiver.batches for g in b.groups]
    assert (event.type, event.request_id, event.subject) == ("group_create", request_id, "Cercle Mastermind")
    standin.spec.validate_schema("#/components/schemas/WebhookPayload", standin.webhooks[-1]["payload"], "group webhook")
    # and the group is usable at once
    assert api.create_invite_link(event.group_id).startswith("https://chat.whatsapp.com/")
    assert control.get(f"/groups/{event.group_id}").get_json()["subject"] == "Cercle Mastermind"
