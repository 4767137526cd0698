"""WhatsApp's pure rules: phones, webhook shape, signatures, the handshake, one-time codes, the 24-hour window."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membergate.domain import whatsapp as wa
from membergate.domain.errors import ForbiddenError, InvalidRequestError, MalformedEventError, SignatureError

pytestmark = pytest.mark.unit

APP_SECRET = "0123456789abcdef0123456789abcdef"
NOW = 1_780_000_000

# The shape Meta documents for an inbound text (Cloud API webhooks, "messages" field), as delivered.
INBOUND_TEXT = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                        "contacts": [{"profile": {"name": "Camille Martin"}, "wa_id": "33612345678"}],
                        "messages": [
                            {
                                "from": "33612345678",
                                "id": "wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                                "timestamp": "1779999000",
                                "text": {"body": "Bonjour ! Mon code : MG-7KQ4X-2PDHN"},
                                "type": "text",
                            }
                        ],
                    },
                    "field": "messages",
                }
            ],
        }
    ],
}

FAILED_STATUS = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                        "statuses": [
                            {
                                "id": "wamid.HBgLMzM2MTIzNDU2NzgVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA",
                                "status": "failed",
                                "timestamp": "1779999100",
                                "recipient_id": "33612345678",
                                "errors": [
                                    {
                                        "code": 131047,
                                        "title": "Re-engagement message",
                                        "message": "Re-engagement message",
                                        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                                    }
                                ],
                            }
                        ],
                    },
                    "field": "messages",
                }
            ],
        }
    ],
}


# --- phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["+33612345678", "+33 6 12 34 56 78", "0033 6 12 34 56 78", "+33-6-12-34-56-78", " +33 (6) 12.34.56.78 ", "+33\u00a0612345678"],
)
def test_normalise_phone_international_forms_give_plus_and_digits(raw):
    # Given a French mobile written in a way people write it
    # When it is normalised
    # Then it is stored as E.164, "+" and digits only
    assert wa.normalise_phone(raw) == "+33612345678"


def test_normalise_phone_without_country_code_is_refused_with_the_fix():
    # Given a national number, which could belong to any country
    # When it is normalised
    with pytest.raises(InvalidRequestError) as refused:
        wa.normalise_phone("06 12 34 56 78")
    # Then the error says to add the country code
    assert "country code" in refused.value.message and refused.value.field == "phone"


def test_normalise_phone_wa_id_digits_are_international():
    # Given Meta's wa_id (international, no "+") / When read with assume_international / Then E.164
    assert wa.normalise_phone("16505551234", assume_international=True) == "+16505551234"


@pytest.mark.parametrize(
    "raw",
    ["+0612345678", "+1234", "+1234567890123456", "+33 6 12 34 56 7a", "+٣٣٦١٢٣٤٥٦٧٨", "+33612345678;drop", "", "+"],
)
def test_normalise_phone_not_e164_is_refused(raw):
    # Given a value that is no international number (leading 0 country code, too short or long,
    # letters, non-ASCII digits, injection attempt)
    # When it is normalised / Then it is refused, never stored half-cleaned
    with pytest.raises(InvalidRequestError):
        wa.normalise_phone(raw)


@given(st.text(max_size=40))
def test_normalise_phone_any_text_gives_e164_or_refusal(raw):
    # Given any text / When normalised / Then the result is E.164 or an InvalidRequestError
    try:
        result = wa.normalise_phone(raw, assume_international=True)
    except InvalidRequestError:
        return
    assert wa.is_e164(result) and result[1:].isascii() and result[1:].isdigit()


# --- webhook parsing ------------------------------------------------------------------------


def test_parse_webhook_inbound_text_gives_phone_text_timestamp_and_profile_name():
    # Given Meta's webhook for an inbound text
    # When it is parsed
    batch = wa.parse_webhook(INBOUND_TEXT)
    # Then Membergate learns who wrote (E.164), what, and when the window opened
    (message,) = batch.messages
    assert message.phone == "+33612345678"
    assert message.text == "Bonjour ! Mon code : MG-7KQ4X-2PDHN"
    assert message.timestamp == 1_779_999_000
    assert message.profile_name == "Camille Martin"
    assert message.phone_number_id == "106540352242922"
    assert message.message_id.startswith("wamid.")
    assert batch.statuses == () and batch.skipped == 0


def test_parse_webhook_failed_status_carries_the_error_meaning():
    # Given a "failed" status for a text sent outside the 24-hour window
    # When it is parsed
    (status,) = wa.parse_webhook(FAILED_STATUS).statuses
    # Then the failure is classified: not retryable, the window is closed, a template is needed
    assert status.phone == "+33612345678" and status.status == "failed"
    assert status.error_codes == (131047,)
    assert status.failure is not None and status.failure.reason == "whatsapp_window_closed"
    assert not status.failure.retryable


def test_parse_webhook_button_and_interactive_replies_are_read_as_text():
    # Given a template quick-reply button press and an interactive button reply
    payload = copy.deepcopy(INBOUND_TEXT)
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [
        {"from": "33612345678", "id": "wamid.1", "timestamp": "1779999001", "type": "button",
         "button": {"payload": "JOIN", "text": "Rejoindre"}},
        {"from": "33612345678", "id": "wamid.2", "timestamp": "1779999002", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"id": "b1", "title": "Oui"}}},
        {"from": "33612345678", "id": "wamid.3", "timestamp": "1779999003", "type": "image",
         "image": {"id": "1", "mime_type": "image/jpeg", "sha256": "x"}},
    ]
    # When parsed / Then the texts are the button labels; an image has no text but still opens the window
    texts = [(m.type, m.text, m.timestamp) for m in wa.parse_webhook(payload).messages]
    assert texts == [("button", "Rejoindre", 1779999001), ("interactive", "Oui", 1779999002), ("image", None, 1779999003)]


def test_parse_webhook_odd_items_are_skipped_not_fatal():
    # Given a batch with one good message, one without a sender, one with a bad timestamp,
    # and a group participant update
    payload = copy.deepcopy(INBOUND_TEXT)
    messages = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages.append({"id": "wamid.x", "timestamp": "1779999000", "type": "text", "text": {"body": "hi"}})
    messages.append({"from": "33612345678", "id": "wamid.y", "timestamp": "soon", "type": "text", "text": {"body": "hi"}})
    payload["entry"][0]["changes"].append({"field": "group_participant_update", "value": {"messaging_product": "whatsapp"}})
    # When parsed
    batch = wa.parse_webhook(payload)
    # Then the good message comes through and the two bad ones are counted, the group update ignored
    assert [m.message_id for m in batch.messages] == [INBOUND_TEXT["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]
    assert batch.skipped == 2


def test_parse_webhook_group_events_give_the_created_group_and_participant_changes():
    # Given a group_create event (the answer to a create request) and a participant update
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "group_lifecycle_update", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "groups": [{"timestamp": 1779999000, "group_id": "Y2FwaV9ncm91cDoxOTUwNTU1MDA3OToxMjAzNjMzOTQzMjA",
                        "type": "group_create", "request_id": "106540352242922", "subject": "Cercle"}]}},
        {"field": "group_participant_update", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "groups": [{"timestamp": 1779999100, "group_id": "Y2FwaV9ncm91cDoxOTUwNTU1MDA3OToxMjAzNjMzOTQzMjA",
                        "type": "group_remove_participants", "request_id": "2",
                        "removed_participants": [{"input": "+33612345678", "wa_id": "33612345678"}]},
                       {"group_id": "no-timestamp", "type": "group_create", "request_id": "3"}]}},
    ]}]}
    # When parsed
    batch = wa.parse_webhook(payload)
    # Then the group id is tied to the request id, removals are E.164, the odd item is counted
    created, removed = batch.groups
    assert (created.type, created.request_id, created.subject) == ("group_create", "106540352242922", "Cercle")
    assert removed.removed == ("+33612345678",) and removed.timestamp == 1779999100
    assert batch.skipped == 1 and batch.messages == ()


@pytest.mark.parametrize("payload", [None, [], {"object": "page", "entry": []}, {"object": "whatsapp_business_account"}])
def test_parse_webhook_not_whatsapp_envelope_is_malformed(payload):
    # Given something that is not a WhatsApp webhook / When parsed / Then MalformedEventError
    with pytest.raises(MalformedEventError):
        wa.parse_webhook(payload)


# --- signature ------------------------------------------------------------------------------


def _raw() -> bytes:
    payload = copy.deepcopy(INBOUND_TEXT)
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Zoé Müller"
    return json.dumps(payload, ensure_ascii=False).encode()


def test_verify_signature_meta_signature_over_raw_body_is_accepted():
    # Given the raw body and the header Meta computes (hex HMAC-SHA256 with the app secret)
    raw = _raw()
    header = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    # When verified / Then no error
    wa.verify_signature(raw, header, APP_SECRET)
    assert wa.compute_signature(APP_SECRET, raw) == header


def test_verify_signature_body_changed_by_one_byte_is_refused():
    # Given a signature of the body, and the body re-serialised (what a JSON round trip would do)
    raw = _raw()
    header = wa.compute_signature(APP_SECRET, raw)
    reserialised = json.dumps(json.loads(raw)).encode()  # "é" escaped: same JSON, other bytes
    # When verified / Then refused: only the raw bytes count
    with pytest.raises(SignatureError):
        wa.verify_signature(reserialised, header, APP_SECRET)


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha1=" + "0" * 40, "sha256=" + "0" * 64, "sha256=" + "é" * 64, "sha256=" + "0" * 63 + "\u0660",
     "sha256=" + "0" * 65],
)
def test_verify_signature_missing_malformed_non_ascii_or_wrong_is_refused(header):
    # Given a header that is absent, malformed, non-ASCII (refused before comparing) or wrong
    # When verified / Then SignatureError, never TypeError
    with pytest.raises(SignatureError):
        wa.verify_signature(_raw(), header, APP_SECRET)


@given(st.text(max_size=80))
def test_verify_signature_any_header_text_is_refused_with_signature_error_only(header):
    # Given any header text (not a valid signature) / When verified / Then SignatureError, nothing else
    with pytest.raises(SignatureError):
        wa.verify_signature(b"{}", header, APP_SECRET)


def test_verify_signature_uppercase_hex_and_second_secret_are_accepted():
    # Given a signature made with the previous secret during a rotation, in uppercase hex
    raw = _raw()
    header = "sha256=" + wa.compute_signature("old-secret", raw).removeprefix("sha256=").upper()
    # When verified against both secrets / Then accepted
    wa.verify_signature(raw, header, [APP_SECRET, "old-secret"])


def test_verify_signature_no_secret_configured_refuses_everything():
    # Given no app secret / When a body signed with the empty key arrives / Then refused
    raw = _raw()
    with pytest.raises(SignatureError):
        wa.verify_signature(raw, wa.compute_signature("", raw), "")


# --- the subscription handshake -------------------------------------------------------------


def test_verify_subscription_right_token_returns_the_challenge():
    # Given Meta's GET with the configured verify token / When checked / Then the challenge to echo
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok-123", "hub.challenge": "1158201444"}
    assert wa.verify_subscription(params, "tok-123") == "1158201444"


@pytest.mark.parametrize(
    "params, configured",
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, "tok-123"),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "tok-123", "hub.challenge": "1"}, "tok-123"),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, "tok-123"),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, ""),
        ({"hub.mode": "subscribe", "hub.verify_token": "tok-é", "hub.challenge": "1"}, "tok-123"),
        ({"hub.mode": "subscribe", "hub.verify_token": "tok-123", "hub.challenge": "<script>"}, "tok-123"),
        ({"hub.mode": "subscribe", "hub.verify_token": "tok-123"}, "tok-123"),
    ],
)
def test_verify_subscription_wrong_token_mode_or_challenge_is_forbidden(params, configured):
    # Given a wrong token, mode, missing/empty configuration, non-ASCII token or a challenge that
    # is not a plain token (it would be echoed back) / When checked / Then 403
    with pytest.raises(ForbiddenError):
        wa.verify_subscription(params, configured)


# --- one-time codes and the wa.me link ------------------------------------------------------


def test_format_code_then_find_code_round_trips():
    # Given codes from the smallest, largest and a middle number
    for number in (0, wa.CODE_SPACE - 1, 123_456_789_012):
        code = wa.format_code(number)
        # When written inside a member's message / Then found again, canonical
        assert wa.find_code(f"Hello, here is my code {code} thanks") == code


@pytest.mark.parametrize("text", ["mg-7kq4x-2pdhn", "MG 7KQ4X 2PDHN", "MG7KQ4X2PDHN", "code:MG-7KQ4X-2PDHN."])
def test_find_code_retyped_variants_are_found(text):
    # Given the code retyped in lower case, with spaces or without separators
    # When searched / Then the canonical code
    assert wa.find_code(text) == "MG-7KQ4X-2PDHN"


@pytest.mark.parametrize(
    "text",
    [None, "", "hello", "MG-7KQ4X-2PDH", "MG-7KQ4X-2PDHNX", "XMG-7KQ4X-2PDHN", "MG-OOOOO-IIIII",
     "MG-7KQ4X-2PDHN and MG-22222-33333"],
)
def test_find_code_absent_partial_ambiguous_or_confusable_gives_none(text):
    # Given no code, a truncated or extended one, look-alike letters, or two different codes
    # When searched / Then nothing is bound
    assert wa.find_code(text) is None


def test_format_code_out_of_range_is_refused():
    with pytest.raises(ValueError):
        wa.format_code(wa.CODE_SPACE)


def test_wa_me_link_holds_the_business_digits_and_the_encoded_text():
    # Given the business number and a text holding the code (with characters that need encoding)
    text = "Bonjour ! Code : MG-7KQ4X-2PDHN & merci"
    # When the link is built
    link = wa.wa_me_link("+33 1 23 45 67 89", text)
    # Then it opens a chat with the business (digits only) with exactly that text typed in
    parts = urllib.parse.urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "wa.me", "/33123456789")
    assert urllib.parse.parse_qs(parts.query) == {"text": [text]}
    assert wa.find_code(urllib.parse.parse_qs(parts.query)["text"][0]) == "MG-7KQ4X-2PDHN"


# --- the 24-hour window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_inbound, kind",
    [
        (None, wa.MessageKind.TEMPLATE),  # never wrote: template
        (NOW - 60, wa.MessageKind.TEXT),  # wrote a minute ago: text
        (NOW - (24 * 3600 - wa.WINDOW_SAFETY_MARGIN_SECONDS - 1), wa.MessageKind.TEXT),  # just inside, margin kept
        (NOW - (24 * 3600 - wa.WINDOW_SAFETY_MARGIN_SECONDS), wa.MessageKind.TEMPLATE),  # within the margin: template
        (NOW - 24 * 3600, wa.MessageKind.TEMPLATE),  # exactly 24 h: closed
        (NOW - 3 * 24 * 3600, wa.MessageKind.TEMPLATE),
        (NOW + 30, wa.MessageKind.TEXT),  # a webhook stamped slightly ahead of our clock
    ],
)
def test_message_kind_text_inside_window_template_outside(last_inbound, kind):
    # Given when the member last wrote / When a message is due now / Then text inside, template outside
    assert wa.message_kind(last_inbound, NOW) is kind


def test_message_kind_without_margin_uses_the_exact_24_hours():
    assert wa.message_kind(NOW - 24 * 3600 + 1, NOW, margin=0) is wa.MessageKind.TEXT
    assert wa.message_kind(NOW - 24 * 3600, NOW, margin=0) is wa.MessageKind.TEMPLATE


# --- error classes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, retryable, reason",
    [
        (131047, False, "whatsapp_window_closed"),
        (131026, False, "whatsapp_undeliverable"),
        (132001, False, "whatsapp_template_missing"),
        (190, False, "whatsapp_token_invalid"),
        (4, True, "whatsapp_rate_limited"),
        (80007, True, "whatsapp_rate_limited"),
        (131056, True, "whatsapp_rate_limited"),
    ],
)
def test_classify_error_known_codes_have_outcome_and_fix(code, retryable, reason):
    # Given a Graph API error code / When classified / Then retry or a stable reason, with a fix to show
    meaning = wa.classify_error(code)
    assert (meaning.retryable, meaning.reason) == (retryable, reason)
    assert len(meaning.advice) > 40


def test_classify_error_unknown_code_retries_on_5xx_and_names_the_code_otherwise():
    assert wa.classify_error(999_999, 503).retryable
    unknown = wa.classify_error(999_999, 400)
    assert not unknown.retryable and "999999" in unknown.advice
