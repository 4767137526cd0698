"""The WhatsApp Cloud API and gateway clients: every request checked against Meta's spec, every error mapped."""

from __future__ import annotations

import json

import pytest

from infra.local.whatsapp_spec import WhatsAppSpec
from membergate.adapters.http import HttpResponse
from membergate.adapters.whatsapp import (
    CloudRateLimits,
    Template,
    WhatsAppCloudApi,
    WhatsAppGateway,
    WindowClosedError,
    truncate_text,
)
from membergate.domain.errors import InvalidRequestError, PermanentError, RetryableError
from membergate.domain.whatsapp import MessageKind
from tests.support.discord_spec import FakeClock
from tests.support.whatsapp_spec import (
    ACCESS_TOKEN,
    API_BASE,
    PHONE_NUMBER_ID,
    FakeGroup,
    SpecCheckingCloudTransport,
    SpecViolation,
    graph_error,
    json_response,
    whatsapp_spec,
)

pytestmark = pytest.mark.unit

MEMBER = "+33612345678"
STRANGER = "+447700900123"
GROUP = "Y2FwaV9ncm91cDoxOTUwNTU1MDA3OToxMjAzNjMzOTQzMjA"
NOW = 1_780_000_000
WELCOME = Template("membergate_access_granted", "fr", ("Camille", "Cercle Mastermind"))


@pytest.fixture(scope="module")
def spec() -> WhatsAppSpec:
    return whatsapp_spec()


@pytest.fixture
def meta(spec) -> SpecCheckingCloudTransport:
    transport = SpecCheckingCloudTransport(spec)
    transport.groups[GROUP] = FakeGroup()
    return transport


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(meta, clock) -> WhatsAppCloudApi:
    return WhatsAppCloudApi(meta, lambda: ACCESS_TOKEN, PHONE_NUMBER_ID, API_BASE,
                            sleep=clock.sleep, monotonic=clock.monotonic, limits=CloudRateLimits())


# --- the spec itself ------------------------------------------------------------------------


def test_spec_raw_text_message_schema_refuses_metas_own_example(spec):
    # Given the spec exactly as published, and Meta's own "Send Text Message" example
    raw = WhatsAppSpec(spec.raw, correct=False)
    example = spec.raw["paths"]["/{Version}/{Phone-Number-ID}/messages"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]["Send Text Message"]["value"]
    # When validated / Then refused: additionalProperties:false inside allOf closes out the base properties
    with pytest.raises(SpecViolation):
        raw.validate_schema("#/components/schemas/Message", example, "example")
    # and the corrected reading accepts it
    spec.validate_schema("#/components/schemas/Message", example, "example")
    assert spec.corrections == 10


def test_spec_corrected_text_message_still_refuses_unknown_properties(spec):
    # Given a text message with a property the spec does not declare
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": MEMBER, "type": "text",
            "text": {"body": "hi"}, "priority": "high"}
    # When validated / Then refused: the correction keeps the schema closed
    with pytest.raises(SpecViolation):
        spec.validate_schema("#/components/schemas/Message", body, "body")


def test_spec_unknown_message_type_and_wrong_version_are_refused(spec):
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"}
    body = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": MEMBER, "type": "note",
                       "note": {"body": "hi"}}).encode()
    with pytest.raises(SpecViolation):
        spec.validate_request("POST", f"/v23.0/{PHONE_NUMBER_ID}/messages", headers, body)
    good = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": MEMBER, "type": "text",
                       "text": {"body": "hi"}}).encode()
    with pytest.raises(SpecViolation):
        spec.validate_request("POST", f"/v22.0/{PHONE_NUMBER_ID}/messages", headers, good)
    with pytest.raises(SpecViolation):  # no bearer token
        spec.validate_request("POST", f"/v23.0/{PHONE_NUMBER_ID}/messages", {"Content-Type": "application/json"}, good)


# --- every request against the spec --------------------------------------------------------


def test_cloud_api_every_public_method_sends_requests_the_spec_allows(meta, api):
    # Given a group with the paying member and a stranger asking to join, and a member to remove
    meta.groups[GROUP] = FakeGroup(participants={"+4915112345678"}, join_requests={"JR1": MEMBER, "JR2": STRANGER})
    # When every public method of the client is used
    api.send_text(MEMBER, "Bienvenue ! Ton lien : https://chat.whatsapp.com/abc", preview_url=True)
    api.send_template(MEMBER, WELCOME)
    api.send_template(MEMBER, Template("membergate_reminder", "en"))
    request_id = api.create_group("Cercle  Mastermind\n2026", "Six mois de coaching")
    link = api.create_invite_link(GROUP)
    approved = api.approve_join_requests_from(GROUP, MEMBER)
    api.reject_join_requests(GROUP, ["JR2"])
    api.remove_participants(GROUP, ["+4915112345678"])
    group = api.get_group(GROUP)
    # Then each request matched the spec's operation (the transport validated path, method,
    # headers and body) and did what was meant
    operations = [r.operations for r in meta.requests]
    assert ("sendMessage",) in operations and ("createGroupInviteLink",) in operations
    assert request_id.isdigit()
    (creation,) = [r for r in meta.requests if "createGroup" in r.operations]
    assert creation.json == {"messaging_product": "whatsapp", "subject": "Cercle Mastermind 2026",
                             "join_approval_mode": "approval_required", "description": "Six mois de coaching"}
    for expected in ("getJoinRequests", "approveJoinRequests", "rejectJoinRequests", "removeGroupParticipants", "getGroupInfo"):
        assert any(expected in ops for ops in operations), expected
    assert link.startswith("https://chat.whatsapp.com/")
    assert approved == ["JR1"]
    assert group.participants == (MEMBER,) and group.total_participants == 1


def test_send_text_body_is_the_spec_text_message(meta, api):
    # When a text is sent
    message_id = api.send_text(MEMBER, "Bonjour")
    # Then the body is exactly the spec's text message, to the E.164 number, with the bearer token
    (request,) = meta.requests
    assert request.method == "POST" and request.path == f"/v23.0/{PHONE_NUMBER_ID}/messages"
    assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": MEMBER,
                            "type": "text", "text": {"body": "Bonjour", "preview_url": False}}
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert message_id.startswith("wamid.")


def test_send_template_body_names_template_language_and_body_parameters(meta, api):
    # When a template with two body variables is sent (one with a newline Meta would refuse)
    api.send_template(MEMBER, Template("membergate_access_granted", "fr", ("Camille", "Cercle\nMastermind")))
    # Then name, language (with the spec's required policy) and text parameters, newline flattened
    assert meta.requests[0].json["template"] == {
        "name": "membergate_access_granted",
        "language": {"policy": "deterministic", "code": "fr"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Camille"},
                                                       {"type": "text", "text": "Cercle Mastermind"}]}],
    }


def test_send_text_long_body_is_cut_to_whatsapps_limit(meta, api):
    api.send_text(MEMBER, "mot " * 2000)
    body = meta.requests[0].json["text"]["body"]
    assert len(body) <= 4096 and body.endswith("…")
    assert truncate_text("court") == "court"


def test_send_text_national_number_is_refused_before_any_request(meta, api):
    with pytest.raises(InvalidRequestError):
        api.send_text("06 12 34 56 78", "hi")
    assert meta.requests == []


@pytest.mark.parametrize("group_id", ["../../me", "a/b", "", "x" * 300])
def test_group_calls_bad_group_id_are_refused_before_any_request(meta, api, group_id):
    with pytest.raises(PermanentError) as refused:
        api.create_invite_link(group_id)
    assert refused.value.reason == "whatsapp_group_id_invalid" and meta.requests == []


# --- the 24-hour window ---------------------------------------------------------------------


def test_notify_inside_window_sends_text(meta, api):
    kind, _ = api.notify(MEMBER, "Ton accès est actif", WELCOME, last_inbound_at=NOW - 3600, now=NOW)
    assert kind is MessageKind.TEXT and meta.sent[0]["type"] == "text"


def test_notify_outside_window_sends_the_template(meta, api):
    kind, _ = api.notify(MEMBER, "Ton accès est actif", WELCOME, last_inbound_at=NOW - 25 * 3600, now=NOW)
    assert kind is MessageKind.TEMPLATE and [m["type"] for m in meta.sent] == ["template"]


def test_notify_window_closed_at_meta_falls_back_to_the_template(meta, api):
    # Given Meta refuses the text with 131047 (the member's window closed earlier than recorded)
    meta.enqueue(graph_error(131047, 400, "Re-engagement message"))
    # When notified
    kind, message_id = api.notify(MEMBER, "Ton accès est actif", WELCOME, last_inbound_at=NOW - 3600, now=NOW)
    # Then the template went out after the refused text
    assert kind is MessageKind.TEMPLATE and message_id.startswith("wamid.")
    assert [r.json["type"] for r in meta.requests] == ["text", "template"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, status, error_type, reason",
    [
        (131047, 400, WindowClosedError, "whatsapp_window_closed"),
        (131026, 400, PermanentError, "whatsapp_undeliverable"),
        (132001, 404, PermanentError, "whatsapp_template_missing"),
        (190, 401, PermanentError, "whatsapp_token_invalid"),
        (4, 400, RetryableError, None),
        (80007, 400, RetryableError, None),
        (131056, 400, RetryableError, None),
        (131000, 500, RetryableError, None),
        (999_999, 503, RetryableError, None),
        (999_999, 400, PermanentError, "whatsapp_error_999999"),
    ],
)
def test_cloud_api_graph_errors_map_to_typed_errors_with_a_fix(meta, api, code, status, error_type, reason):
    # Given Meta answers a send with a Graph API error
    meta.enqueue(graph_error(code, status))
    # When a template is sent
    with pytest.raises(error_type) as raised:
        api.send_template(MEMBER, WELCOME)
    # Then the error is typed; permanent ones carry a stable reason and a fix for the creator
    if reason is not None:
        assert raised.value.reason == reason
        assert "retrying will not help" in raised.value.message.lower() or len(raised.value.message) > 80
    else:
        assert not isinstance(raised.value, PermanentError)


def test_cloud_api_rejected_token_is_not_sent_again(meta, api):
    # Given Meta rejected the token once
    meta.enqueue(graph_error(190, 401, "Error validating access token: Session has expired"))
    with pytest.raises(PermanentError):
        api.send_text(MEMBER, "hi")
    # When another message is due with the same token
    with pytest.raises(PermanentError) as again:
        api.send_text(MEMBER, "hi")
    # Then it is refused without a request, with the fix
    assert len(meta.requests) == 1 and "System users" in again.value.message


def test_cloud_api_account_rate_limit_pauses_every_call_for_metas_wait(meta, api, clock):
    # Given Meta answers 80007 and says access comes back in 3 minutes
    usage = json.dumps({"102290129340398": [{"type": "whatsapp", "call_count": 100, "total_cputime": 1, "total_time": 1,
                                             "estimated_time_to_regain_access": 3}]})
    meta.enqueue(graph_error(80007, 400, "(#80007) Rate limit hit", headers={"X-Business-Use-Case-Usage": usage}))
    with pytest.raises(RetryableError) as first:
        api.send_text(MEMBER, "hi")
    assert first.value.retry_after == 180
    # When the next call comes a minute later
    clock.now += 60
    with pytest.raises(RetryableError) as paused:
        api.create_invite_link(GROUP)
    # Then nothing is sent until the pause ends, and the wait left is given
    assert len(meta.requests) == 1 and paused.value.retry_after == pytest.approx(120)
    clock.now += 121
    assert api.create_invite_link(GROUP).startswith("https://")


def test_cloud_api_pair_rate_limit_pauses_only_that_recipient(meta, api):
    # Given the member was messaged too often (131056)
    meta.enqueue(graph_error(131056, 400, "(Business Account, Consumer Account) pair rate limit hit"))
    with pytest.raises(RetryableError) as limited:
        api.send_text(MEMBER, "hi")
    assert limited.value.retry_after == 6
    # When messages are due for the same member and for someone else
    with pytest.raises(RetryableError):
        api.send_text(MEMBER, "again")
    api.send_text(STRANGER, "hello")
    # Then only the other person's message was sent
    assert [r.json["to"] for r in meta.requests] == [MEMBER, STRANGER]


def test_cloud_api_short_throttle_is_waited_out_inline(meta, api, clock):
    # Given a throughput error (130429, about a second) then success
    meta.enqueue(graph_error(130429, 400, "Rate limit hit"))
    # When a message is sent / Then the client waits a second and sends again
    assert api.send_text(MEMBER, "hi").startswith("wamid.")
    assert clock.slept == [1.0] and len(meta.requests) == 2


def test_cloud_api_messages_per_second_are_capped(meta, clock):
    # Given a limit of 2 messages per second / When 3 are sent at once
    api = WhatsAppCloudApi(meta, lambda: ACCESS_TOKEN, PHONE_NUMBER_ID, sleep=clock.sleep, monotonic=clock.monotonic,
                           limits=CloudRateLimits(per_second=2))
    for _ in range(3):
        api.send_text(MEMBER, "hi")
    # Then the third waited for the window to move
    assert clock.slept == [pytest.approx(1.0)] and len(meta.requests) == 3


def test_cloud_api_5xx_without_json_is_retryable(meta, api):
    meta.enqueue(HttpResponse(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"))
    with pytest.raises(RetryableError):
        api.send_text(MEMBER, "hi")


def test_cloud_api_bad_phone_number_id_is_refused_with_the_fix(meta):
    with pytest.raises(PermanentError) as refused:
        WhatsAppCloudApi(meta, lambda: ACCESS_TOKEN, "+33 1 23 45 67 89")
    assert refused.value.reason == "whatsapp_phone_number_id_invalid" and "API Setup" in refused.value.message


# --- Groups API (official mode) -------------------------------------------------------------


def test_approve_join_requests_from_approves_only_the_paying_number(meta, api):
    # Given the paying member and a stranger (who got a forwarded link) both asked to join
    meta.groups[GROUP] = FakeGroup(join_requests={"JR1": STRANGER, "JR2": MEMBER})
    # When the member's requests are approved
    approved = api.approve_join_requests_from(GROUP, MEMBER)
    # Then only the member's request was sent for approval; the stranger is still pending
    (approval,) = [r for r in meta.requests if "approveJoinRequests" in r.operations]
    assert approval.json == {"messaging_product": "whatsapp", "join_requests": ["JR2"]}
    assert approved == ["JR2"] and meta.groups[GROUP].participants == {MEMBER}
    assert meta.groups[GROUP].join_requests == {"JR1": STRANGER}


def test_approve_join_requests_from_without_request_approves_nothing(meta, api):
    meta.groups[GROUP] = FakeGroup(join_requests={"JR1": STRANGER})
    assert api.approve_join_requests_from(GROUP, MEMBER) == []
    assert not any("approveJoinRequests" in r.operations for r in meta.requests)


def test_approve_join_requests_from_full_group_is_refused_with_the_fix(meta, api):
    # Given a group at Meta's cap of 8 participants
    meta.groups[GROUP] = FakeGroup(participants={f"+3361234560{i}" for i in range(8)}, join_requests={"JR9": MEMBER})
    # When the paying member's request would be approved
    with pytest.raises(PermanentError) as refused:
        api.approve_join_requests_from(GROUP, MEMBER)
    # Then nothing is approved and the creator is told about manual mode
    assert refused.value.reason == "whatsapp_group_full" and "manual mode" in refused.value.message
    assert not any("approveJoinRequests" in r.operations for r in meta.requests)


def test_approve_join_requests_failed_item_is_an_error(meta, api):
    # Given Meta answers the approval with a failed item
    meta.groups[GROUP] = FakeGroup(join_requests={"JR1": MEMBER})
    failed = {"messaging_product": "whatsapp", "approved_join_requests": [],
              "failed_join_requests": [{"join_request_id": "JR1", "errors": [{"code": 131000, "message": "Something went wrong"}]}]}
    meta.enqueue(json_response(200, failed), operation="approveJoinRequests")
    # When the member's request is approved / Then the failure is not mistaken for success
    with pytest.raises(RetryableError):
        api.approve_join_requests_from(GROUP, MEMBER)


def test_remove_participants_sends_at_most_eight_per_request(meta, api):
    phones = [f"+3361234567{i}" for i in range(10)]
    meta.groups[GROUP] = FakeGroup(participants=set(phones))
    api.remove_participants(GROUP, phones)
    removals = [r.json["participants"] for r in meta.requests if "removeGroupParticipants" in r.operations]
    assert [len(r) for r in removals] == [8, 2]
    assert meta.groups[GROUP].participants == set()


# --- the gateway ----------------------------------------------------------------------------


class FakeGateway:
    """The documented gateway API, in memory; records requests."""

    def __init__(self, key: str = "gw-key"):
        self.key = key
        self.groups: dict[str, set[str]] = {"family-group": set()}
        self.requests: list[tuple[str, str, dict | None]] = []
        self.next_answer: HttpResponse | None = None

    def request(self, method, url, *, headers, body, timeout):
        path = url.removeprefix("https://gateway.example")
        payload = json.loads(body) if body else None
        self.requests.append((method, path, payload))
        if self.next_answer is not None:
            answer, self.next_answer = self.next_answer, None
            return answer
        if headers.get("Authorization") != f"Bearer {self.key}":
            return json_response(401, {"error": {"code": "unauthorized", "message": "bad key"}})
        parts = path.split("/")
        import urllib.parse as up
        group = self.groups.get(up.unquote(parts[2]))
        if group is None:
            return json_response(404, {"error": {"code": "unknown_group", "message": "no such group"}})
        if method == "GET":
            return json_response(200, {"participants": [{"phone": p} for p in sorted(group)]})
        if method == "POST":
            if payload["phone"] in group:
                return json_response(409, {"error": {"code": "already_participant", "message": "already in"}})
            group.add(payload["phone"])
            return json_response(201, {"phone": payload["phone"]})
        phone = up.unquote(parts[4])
        if phone not in group:
            return json_response(404, {"error": {"code": "not_participant", "message": "not in group"}})
        group.discard(phone)
        return HttpResponse(204)


def test_gateway_add_list_remove_by_phone_follow_the_documented_api():
    # Given a gateway with one group
    gateway = FakeGateway()
    client = WhatsAppGateway(gateway, "https://gateway.example/", lambda: "gw-key")
    # When the member is added twice, listed, removed twice
    client.add_participant("family-group", "+33 6 12 34 56 78")
    client.add_participant("family-group", MEMBER)  # 409: already there, fine
    listed = client.list_participants("family-group")
    client.remove_participant("family-group", MEMBER)
    client.remove_participant("family-group", MEMBER)  # 404 not_participant: already gone, fine
    # Then the requests are the documented ones, the phone E.164 and percent-encoded in the path
    assert listed == [MEMBER]
    assert gateway.requests[0] == ("POST", "/groups/family-group/participants", {"phone": MEMBER})
    assert gateway.requests[2] == ("GET", "/groups/family-group/participants", None)
    assert gateway.requests[3] == ("DELETE", "/groups/family-group/participants/%2B33612345678", None)
    assert gateway.groups["family-group"] == set()


@pytest.mark.parametrize(
    "answer, error_type, reason",
    [
        (json_response(401, {"error": {"code": "unauthorized"}}), PermanentError, "whatsapp_gateway_key_invalid"),
        (json_response(403, {"error": {"code": "not_admin"}}), PermanentError, "whatsapp_gateway_not_admin"),
        (json_response(404, {"error": {"code": "unknown_group"}}), PermanentError, "whatsapp_gateway_unknown_group"),
        (json_response(409, {"error": {"code": "logged_out"}}), PermanentError, "whatsapp_gateway_logged_out"),
        (json_response(429, {"error": {"code": "rate_limited"}}, {"Retry-After": "30"}), RetryableError, None),
        (HttpResponse(503, {}, b"down"), RetryableError, None),
    ],
)
def test_gateway_refusals_map_to_typed_errors(answer, error_type, reason):
    gateway = FakeGateway()
    gateway.next_answer = answer
    client = WhatsAppGateway(gateway, "https://gateway.example", lambda: "gw-key")
    with pytest.raises(error_type) as raised:
        client.remove_participant("family-group", MEMBER)
    if reason:
        assert raised.value.reason == reason
    else:
        assert not isinstance(raised.value, PermanentError)
        if answer.status == 429:
            assert raised.value.retry_after == 30


def test_gateway_without_url_is_refused_with_the_setting_to_fix():
    with pytest.raises(PermanentError) as refused:
        WhatsAppGateway(FakeGateway(), "", lambda: "k")
    assert "WHATSAPP_GATEWAY_URL" in refused.value.message


# --- a missing spec -------------------------------------------------------------------------


def test_whatsapp_spec_missing_skips_with_where_it_looked(monkeypatch, tmp_path):
    # Given no spec under the specs directory, outside CI
    monkeypatch.setenv("MEMBERGATE_SPECS_DIR", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    # When a test asks for it / Then it is skipped, saying where the spec was looked for
    with pytest.raises(pytest.skip.Exception) as skipped:
        whatsapp_spec()
    assert str(tmp_path) in str(skipped.value)


def test_whatsapp_spec_missing_under_ci_fails(monkeypatch, tmp_path):
    # Given no spec and CI=true / When a test asks for it / Then the test fails instead of skipping
    monkeypatch.setenv("MEMBERGATE_SPECS_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        whatsapp_spec()
