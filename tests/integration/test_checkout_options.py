"""Checkout options and consumer law: the parameters Membergate sends (checked against Stripe's spec), the sandbox's echo."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pytest
import stripe

from infra.local.stripe_sandbox import WsgiStripeHttpClient
from membergate.adapters.stripe_billing import StripeBillingGateway, checkout_term_params
from membergate.domain.checkout_terms import checkout_terms
from membergate.domain.model import CheckoutOptions
from tests.integration.test_stripe_sandbox import BASE, T0, make_stack, session_params
from tests.support.specs import stripe_openapi

pytestmark = pytest.mark.integration

ALL_ON = CheckoutOptions(allow_promotion_codes=False, automatic_tax=True, phone_number_collection=True)


@lru_cache(maxsize=1)
def session_create_schema() -> dict[str, Any]:
    spec = stripe_openapi("Checkout parameters cannot be checked against Stripe's spec")
    body = spec["paths"]["/v1/checkout/sessions"]["post"]["requestBody"]["content"]
    return body["application/x-www-form-urlencoded"]["schema"]


def spec_violations(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Names and enum values the spec does not allow (a small walker: objects, anyOf, enums, maxLength)."""
    if "anyOf" in schema:
        options = [spec_violations(value, option, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else options[0]
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            return [f"{where}: an object where the spec has {schema.get('type')}"]
        found = [f"{where}.{k}: not in the spec" for k in value if k not in props]
        found += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                found += spec_violations(item, props[key], f"{where}.{key}")
        return found
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not one of {schema['enum']}"]
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        return [f"{where}: longer than {schema['maxLength']}"]
    return []


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("options", [CheckoutOptions(), ALL_ON], ids=["defaults", "all-on"])
def test_checkout_term_params_follow_stripes_spec(options, locale):
    # Given a plan's options, Stripe Tax on, terms and privacy URLs and a long community name
    terms = checkout_terms(options, locale=locale, place="Le Club " * 60, stripe_tax=True,
                           terms_url="https://creator.example/terms", privacy_url="https://creator.example/privacy")
    # When they become Checkout Session parameters
    params = checkout_term_params(terms)
    # Then every name, value and length is one Stripe's spec allows
    # (only these parameters: the ones every session has are checked by the sandbox tests)
    assert spec_violations(params, {**session_create_schema(), "required": []}) == []
    assert params["consent_collection"] == {"terms_of_service": "required"}
    assert params["locale"] == locale and len(params["custom_text"]["submit"]["message"]) <= 1000


def test_checkout_through_the_sandbox_echoes_consent_text_tax_and_phone_like_stripe():
    # Given Membergate's Stripe gateway on the sandbox and a plan with every option on
    stack = make_stack()
    gateway = StripeBillingGateway.build("rk_test_local", BASE, http_client=WsgiStripeHttpClient(stack.sandbox.wsgi_app, BASE))
    customer_id = gateway.create_customer("mem_9", "mem_9:customer")
    terms = checkout_terms(ALL_ON, locale="fr", place="Le Club", stripe_tax=True,
                           terms_url="https://creator.example/cgv", privacy_url="")
    # When it starts a checkout and the member pays
    session = gateway.create_checkout_session(
        customer_id=customer_id, member_id="mem_9", plan_id="plan_gold", price_ids=["price_gold"],
        success_url="http://127.0.0.1:3000/joined", cancel_url="http://127.0.0.1:3000/join",
        expires_at=T0 + 1800, idempotency_key="mem_9:plan_gold:1", terms=terms,
    )
    read = stack.client.v1.checkout.sessions.retrieve(session.id)
    stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "terms_of_service": "accepted"})
    completed = stack.last("checkout.session.completed")["data"]["object"]
    # Then the session shows what was asked, as Stripe shows it, and the completed one the consent given
    assert read.consent_collection.terms_of_service == "required"
    assert read.custom_text.submit.message.startswith("En payant, tu demandes l'accès immédiat à Le Club")
    assert "droit de rétractation de 14 jours" in read.custom_text.submit.message
    assert "https://creator.example/cgv" in read.custom_text.submit.message
    assert read.automatic_tax.enabled is True and read.phone_number_collection.enabled is True
    assert read.allow_promotion_codes is False and read.locale == "fr"
    assert completed["consent"] == {"promotions": None, "terms_of_service": "accepted"}


@pytest.mark.parametrize(("extra", "param"), [
    ({"consent_collection": {"terms_of_service": "yes"}}, "consent_collection[terms_of_service]"),
    ({"consent_collection": {"payment_method_reuse_agreement": {"position": "auto"}}},
     "consent_collection[payment_method_reuse_agreement]"),
    ({"custom_text": {"after_submit": {"message": "x"}}}, "custom_text[after_submit]"),
    ({"custom_text": {"submit": {"message": "x" * 1001}}}, "custom_text[submit][message]"),
    ({"phone_number_collection": {"enabled": "maybe"}}, "phone_number_collection[enabled]"),
    ({"automatic_tax": {"enabled": True}}, "automatic_tax[enabled]"),  # the customer has no address
    ({"locale": "klingon"}, "locale"),
])
def test_checkout_sessions_create_refuses_options_stripe_refuses(extra, param):
    # Given the sandbox and a customer without an address
    stack = make_stack()
    customer = stack.client.v1.customers.create({}, {"idempotency_key": "c"})
    # When a session is asked with an option Stripe's spec (2023-08-16) or rules refuse
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stack.client.v1.checkout.sessions.create(session_params(customer.id, **extra))
    # Then it is a 400 naming the parameter
    assert refused.value.http_status == 400 and refused.value.param == param


def test_checkout_sessions_create_tax_with_customer_update_address_auto_is_accepted():
    # Given a customer without an address
    stack = make_stack()
    customer = stack.client.v1.customers.create({}, {"idempotency_key": "c"})
    # When Stripe Tax is asked with the address collected at checkout
    session = stack.client.v1.checkout.sessions.create(session_params(
        customer.id, automatic_tax={"enabled": True}, customer_update={"address": "auto", "name": "auto"},
        billing_address_collection="required"))
    # Then the session computes tax once the address is typed
    assert session.automatic_tax.enabled is True and session.automatic_tax.status == "requires_location_inputs"


def test_hosted_page_with_terms_required_pays_only_once_the_box_is_ticked():
    # Given a session asking for the terms and showing the waiver text
    stack = make_stack()
    customer = stack.client.v1.customers.create({}, {"idempotency_key": "c"})
    session = stack.client.v1.checkout.sessions.create(session_params(
        customer.id, consent_collection={"terms_of_service": "required"},
        custom_text={"submit": {"message": "You give up your 14-day right of withdrawal."}}))
    page = stack.browser.get(f"/pay/{session.id}").get_data(as_text=True)
    # When the member pays without ticking the box, then ticking it
    refused = stack.browser.post(f"/pay/{session.id}", data={"outcome": "card"})
    accepted = stack.browser.post(f"/pay/{session.id}", data={"outcome": "card", "terms_of_service": "accepted"})
    # Then the page shows the box and the text, refuses the first and completes the second
    assert "name=terms_of_service value=accepted required" in page and "14-day right of withdrawal" in page
    assert refused.status_code == 400 and "agree to the terms" in refused.get_data(as_text=True)
    assert accepted.status_code == 303
    assert stack.types().count("checkout.session.completed") == 1


# --- through the admin API and the checkout handler ------------------------------------------

def test_plan_checkout_options_set_at_creation_patched_and_sent_to_checkout():
    from tests.integration.test_member_journey import FORM, GUILD, ROLE, USER, bind_discord
    from tests.support.discord_spec import SpecCheckingDiscordTransport
    from tests.support.pipeline import Pipeline

    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        # Given a plan created with phone collection, then patched to refuse promotion codes
        p.sandbox.register_price("price_opts", 900, "eur")
        community = p.admin("POST", "/admin/communities", body={
            "platform": "discord", "name": "Club", "guild_id": GUILD, "role_id": ROLE, "on_revoke": "remove_role"})
        plan = p.admin("POST", "/admin/plans", body={
            "name": "Monthly", "stripe_price_ids": ["price_opts"], "grants": [{"community_id": community["body"]["id"]}],
            "checkout": {"phone_number_collection": True}})
        plan_id = plan["body"]["id"]
        patched = p.admin("PATCH", f"/admin/plans/{plan_id}", body={"checkout": {"allow_promotion_codes": False}})
        bad = p.admin("PATCH", f"/admin/plans/{plan_id}", body={"checkout": {"automatic_tax": "yes please"}})
        unknown = p.admin("POST", "/admin/plans", body={
            "name": "X", "stripe_price_ids": ["price_x"], "grants": [{"community_id": community["body"]["id"]}],
            "checkout": {"consent_collection": "none"}})
        # When a member checks out
        cookie = bind_discord(p, plan_id)
        reply = p.call("start_checkout", "POST", "/checkout", body=f"plan_id={plan_id}&waiver=on", cookies=[cookie], headers=FORM)
        session_id = reply["headers"]["Location"].rsplit("/", 1)[1]
        session = p.sandbox.session_dict(p.sandbox.sessions[session_id])
        # Then the plan reads back with both options, hostile values are 400, and Checkout got them with the consent text
        assert plan["status"] == 201 and plan["body"]["checkout"] == {
            "allow_promotion_codes": True, "automatic_tax": False, "phone_number_collection": True}
        assert patched["status"] == 200 and patched["body"]["checkout"] == {
            "allow_promotion_codes": False, "automatic_tax": False, "phone_number_collection": True}
        assert (bad["status"], unknown["status"]) == (400, 400) and "error" in bad["body"]
        assert session["phone_number_collection"]["enabled"] is True and session["allow_promotion_codes"] is False
        assert "14-day right of withdrawal" in session["custom_text"]["submit"]["message"]
        assert session["automatic_tax"]["enabled"] is False  # the deployment has Stripe Tax off
