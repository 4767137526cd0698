"""Disputes follow the disputed plan's own policy (else the deployment's), recorded when first seen."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from membergate.cli import app
from membergate.domain.errors import InvalidRequestError
from membergate.domain.grants import dispute_policy_for
from membergate.domain.model import EntitlementState, OnGraceEnd, Plan, PlanGrant, PlanKind
from membergate.ports import PaidInvoice
from membergate.services import admin
from membergate.services.billing_events import BillingEventProcessor
from tests.support import stripe_events as se
from tests.support.billing_fakes import FakeAudit, FakePayments
from tests.support.fake_admin_api import serving
from tests.support.harness import DAY, ROLE, T0, Harness

pytestmark = pytest.mark.unit

ACTIVE, ENDED = EntitlementState.ACTIVE, EntitlementState.ENDED
LIFETIME = Plan("pln_life", "Founder, for life", ("price_life",), (PlanGrant("com_1"),), 3, OnGraceEnd.CANCEL, T0,
                PlanKind.LIFETIME)


@pytest.mark.parametrize(
    ("plan_policy", "default", "expected"),
    [("", "revoke", "revoke"), ("", "keep", "keep"), ("keep", "revoke", "keep"), ("revoke", "keep", "revoke"),
     ("maybe", "keep", "keep")],
)
def test_dispute_policy_for_plan_setting_or_default_gives_the_policy(plan_policy, default, expected):
    # Given a plan's own setting and the deployment's
    # When the policy of a new dispute is chosen
    # Then the plan's wins when it names one
    assert dispute_policy_for(plan_policy, default) == expected


def lifetime_buyer(plan_policy: str, deployment: str) -> Harness:
    h = Harness()
    h.stores.catalog.add_plan(replace(LIFETIME, dispute_policy=plan_policy))
    h.member()
    h.processor = BillingEventProcessor(h.stores, h.queue, dispute_policy=deployment)
    h.deliver(se.payment_completed(created=T0, member_id="mbr_1", plan_id="pln_life"))
    h.run_access()
    assert h.roles() == {ROLE}
    return h


@pytest.mark.parametrize(("plan_policy", "deployment", "state"),
                         [("keep", "revoke", ACTIVE), ("revoke", "keep", ENDED), ("", "keep", ACTIVE), ("", "revoke", ENDED)])
def test_grant_dispute_plan_policy_overrides_the_deployment(plan_policy, deployment, state):
    # Given a lifetime buyer of a plan with its own dispute policy (or none)
    h = lifetime_buyer(plan_policy, deployment)
    # When the payment is disputed
    outcome = h.processor.apply(json.dumps(se.dispute_event(created=T0 + DAY)), T0 + DAY)
    h.run_access()
    # Then the plan's policy decides, and the creator is alerted either way
    assert h.states() == {"pln_life": state}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").dispute_policy == (plan_policy or deployment)
    assert outcome.alert


@pytest.mark.parametrize(("first", "edited", "state"), [("keep", "revoke", ACTIVE), ("revoke", "keep", ENDED)])
def test_grant_dispute_policy_edited_after_the_dispute_opened_does_not_change_it(first, edited, state):
    # Given a dispute opened under the plan's policy
    h = lifetime_buyer(first, "revoke")
    h.processor.apply(json.dumps(se.dispute_event(created=T0 + DAY)), T0 + DAY)
    # When the creator switches the plan's policy, and the dispute is then lost
    admin.update_plan(h.stores, "pln_life", dispute_policy=edited)
    h.at(T0 + 9 * DAY).deliver(se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="lost"))
    h.run_access()
    # Then the policy recorded when the dispute was first seen still counts
    assert h.states() == {"pln_life": state}
    assert h.stores.grants.get("mbr_1", "cs_test_pay_1").dispute_policy == first


@pytest.mark.parametrize(("first", "edited", "state"), [("keep", "revoke", ACTIVE), ("revoke", "keep", ENDED)])
def test_subscription_dispute_policy_edited_after_the_dispute_opened_does_not_change_it(first, edited, state):
    # Given a subscription dispute opened under the plan's policy
    h = subscriber(first)
    h.at(T0 + DAY).deliver(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal"))
    # When the creator switches the plan's policy, and the dispute is then lost
    admin.update_plan(h.stores, "pln_monthly", dispute_policy=edited)
    h.at(T0 + 9 * DAY).deliver(se.dispute_event("charge.dispute.closed", created=T0 + 9 * DAY, status="lost",
                                                payment_intent="pi_renewal"))
    h.run_access()
    # Then the first policy still counts
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute_policy == first
    assert h.states() == {"pln_monthly": state}


def subscriber(plan_policy: str, deployment: str = "revoke") -> Harness:
    h = Harness()
    h.stores.catalog.update_plan(replace(h.plan, dispute_policy=plan_policy))
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"), se.invoice_event("invoice.paid", created=T0))
    h.run_access()
    h.stores = replace(h.stores, audit=FakeAudit())
    h.processor = BillingEventProcessor(h.stores, h.queue, dispute_policy=deployment,
                                        payments=FakePayments({"pi_renewal": PaidInvoice("in_1", "sub_1", "cus_1")}))
    return h


@pytest.mark.parametrize(("plan_policy", "deployment", "state"), [("keep", "revoke", ACTIVE), ("revoke", "keep", ENDED)])
def test_subscription_dispute_plan_policy_overrides_the_deployment(plan_policy, deployment, state):
    # Given a subscriber of a plan with its own dispute policy
    h = subscriber(plan_policy, deployment)
    # When a payment of the subscription is disputed
    h.at(T0 + DAY).deliver(se.dispute_event(created=T0 + DAY, payment_intent="pi_renewal"))
    h.run_access()
    # Then the plan's policy is recorded with the dispute and decides access
    assert h.stores.subscriptions.get("mbr_1", "sub_1").dispute_policy == plan_policy
    assert h.states() == {"pln_monthly": state}


def test_update_plan_unknown_dispute_policy_is_refused_naming_the_field():
    # Given a plan
    h = Harness()
    # When an unknown policy is set
    with pytest.raises(InvalidRequestError) as refused:
        admin.update_plan(h.stores, "pln_monthly", dispute_policy="maybe")
    # Then the field is named with the choices, and "" goes back to the deployment's policy
    assert refused.value.field == "dispute_policy" and "revoke, keep" in refused.value.message
    assert admin.update_plan(h.stores, "pln_monthly", dispute_policy="keep").dispute_policy == "keep"
    assert admin.update_plan(h.stores, "pln_monthly", dispute_policy="").dispute_policy == ""
    assert admin.update_plan(h.stores, "pln_monthly").dispute_policy == ""


def test_cli_plans_shows_each_plans_dispute_policy_or_default():
    # Given two plans, one keeping access during disputes and one on the deployment's policy
    plan = {"stripe_price_ids": ["price_1"], "grants": [{"community_id": "com_1"}], "grace_days": 3,
            "on_grace_end": "cancel", "join_url": "http://x/j"}
    plans = {"/admin/plans": {"plans": [{**plan, "id": "pln_1", "name": "A", "dispute_policy": "keep"},
                                        {**plan, "id": "pln_2", "name": "B", "dispute_policy": None}]}}
    # When the creator lists plans
    with serving(plans) as url:
        result = CliRunner().invoke(app, ["--url", url, "--token", "t0ken", "plans"], env={"COLUMNS": "200"})
    # Then the disputes column says keep for one and default for the other
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "pln_" in line}
    assert "keep" in rows["pln_1"] and "default" in rows["pln_2"]
