"""The local Stripe sandbox's promotion codes: a coupon's code typed on a one-time payment's Checkout page."""

from __future__ import annotations

import pytest

from membergate.domain.stripe_events import checkout_completion, parse_event
from tests.integration.test_stripe_sandbox import payment_session, register, stack  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def promotion_code(stack, **body) -> dict:  # noqa: F811
    reply = stack.browser.post("/_control/promotion_codes", json=body)
    assert reply.status_code == 200, reply.json
    return reply.json


def test_promotion_code_on_a_payment_session_charges_less_and_reports_the_discount(stack):  # noqa: F811
    # Given a 25.00 pass, a 20 % code and a session that allows promotion codes
    register(stack, price_id="price_pass_promo", unit_amount=2500, currency="eur", type="one_time")
    code = promotion_code(stack, code="LAUNCH20", percent_off=20)
    session = payment_session(stack, "price_pass_promo")
    # When the page offers the field and the member types the code (any case) and pays by card
    assert "name=promotion_code" in stack.browser.get(f"/pay/{session.id}").get_data(as_text=True)
    paid = stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "promotion_code": "launch20"})
    # Then 20.00 is charged, and the completed session says 25.00 less 5.00 with the code Membergate reads
    assert paid.status_code == 303
    completed = stack.last("checkout.session.completed")
    session_object = completed["data"]["object"]
    assert (session_object["amount_subtotal"], session_object["amount_total"]) == (2500, 2000)
    assert session_object["total_details"]["amount_discount"] == 500
    assert session_object["discounts"] == [{"coupon": code["coupon"]["id"], "promotion_code": code["id"]}]
    assert stack.last("charge.succeeded")["data"]["object"]["amount"] == 2000
    assert checkout_completion(parse_event(completed)).amount_total == 2000


def test_promotion_code_refused_when_unknown_or_not_allowed_and_the_session_stays_open(stack):  # noqa: F811
    # Given a pass, a fixed 3.00 code, and two sessions: one allowing codes, one not
    register(stack, price_id="price_pass_refused", unit_amount=2500, currency="eur", type="one_time")
    promotion_code(stack, code="THREE", amount_off=300, currency="eur")
    allowed = payment_session(stack, "price_pass_refused", member_id="mem_a")
    closed = payment_session(stack, "price_pass_refused", member_id="mem_b", allow_promotion_codes=False)
    # When a member types a code that does not exist, or a real one where codes are not allowed
    unknown = stack.browser.post(f"/pay/{allowed.id}", data={"outcome": "card", "promotion_code": "NOPE"})
    refused = stack.browser.post(f"/pay/{closed.id}", data={"outcome": "card", "promotion_code": "THREE"})
    # Then each page says why, nothing is charged, and the field is not offered where codes are not allowed
    assert unknown.status_code == 400 and "This code is invalid." in unknown.get_data(as_text=True)
    assert refused.status_code == 400 and "does not accept promotion codes" in refused.get_data(as_text=True)
    assert "name=promotion_code" not in stack.browser.get(f"/pay/{closed.id}").get_data(as_text=True)
    assert not [e for e in stack.delivered if e["type"] == "charge.succeeded"]
    # And a bad coupon is refused at the control
    bad = stack.browser.post("/_control/promotion_codes", json={"code": "X", "percent_off": 150})
    assert bad.status_code == 400 and bad.json["error"]["param"] == "percent_off"


def test_control_body_nested_too_deeply_is_a_400_not_a_crash(stack):  # noqa: F811
    # When a control gets JSON nested 5,000 deep (json.loads raises RecursionError, not a decode error)
    reply = stack.browser.post("/_control/promotion_codes", data=b"[" * 5000 + b"]" * 5000,
                               content_type="application/json")
    # Then it is Stripe's error envelope, a 400
    assert reply.status_code == 400 and reply.json["error"]["message"] == "The control body is nested too deeply."
