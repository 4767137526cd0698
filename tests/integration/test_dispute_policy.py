"""A plan's dispute policy through the admin handler under moto, and the processor following it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from membergate import bootstrap
from membergate.domain.billing import SubscriptionRecord
from membergate.domain.model import EntitlementState
from membergate.services.billing_events import BillingEventProcessor
from membergate.services.catalog_snapshot import CatalogSnapshot
from membergate.services.membership import current_view
from tests.integration.test_creator_controls import DAY, T0, call, stack_at
from tests.support import stripe_events as se
from tests.support.fakes import FakeQueue

pytestmark = pytest.mark.integration


def _community() -> str:
    _, community = call("POST", "/admin/communities", {"platform": "discord", "name": "Club", "guild_id": "1", "role_id": "2"})
    return community["id"]


def test_plan_dispute_policy_is_set_shown_edited_and_reset_through_the_admin_api():
    with stack_at():
        # Given a plan created with "keep" and one created without a policy
        community = _community()
        status, kept = call("POST", "/admin/plans", {"name": "Life", "kind": "lifetime", "stripe_price_ids": ["price_l"],
                                                      "grants": [{"community_id": community}], "dispute_policy": "keep"})
        assert status == 201, kept
        _, plain = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"],
                                                  "grants": [{"community_id": community}]})
        # Then each shows its policy (null: the deployment's)
        assert (kept["dispute_policy"], plain["dispute_policy"]) == ("keep", None)
        assert call("GET", f"/admin/plans/{kept['id']}")[1]["dispute_policy"] == "keep"
        # When the creator edits it, then resets it with null
        assert call("PATCH", f"/admin/plans/{plain['id']}", {"dispute_policy": "revoke"})[1]["dispute_policy"] == "revoke"
        assert call("PATCH", f"/admin/plans/{plain['id']}", {"name": "M2"})[1]["dispute_policy"] == "revoke"
        assert call("PATCH", f"/admin/plans/{plain['id']}", {"dispute_policy": None})[1]["dispute_policy"] is None
        # Then the stored plan follows, and the audit log names the change
        assert bootstrap.admin().stores.catalog.get_plan(plain["id"]).dispute_policy == ""
        _, audit = call("GET", "/admin/audit")
        changes = [e["detail"].get("dispute_policy") for e in audit["entries"] if e["action"] == "plan.update"]
        assert sorted(c for c in changes if c) == ["default", "revoke"]


@pytest.mark.parametrize("value", ["maybe", "", 1, ["keep"], {"a": "keep"}, "KEEP", "keep\r\n", "révoquer"])
def test_plan_dispute_policy_not_revoke_or_keep_is_refused_with_the_envelope(value):
    with stack_at():
        # Given a plan
        community = _community()
        _, plan = call("POST", "/admin/plans", {"name": "M", "stripe_price_ids": ["price_m"],
                                                 "grants": [{"community_id": community}]})
        # When a policy other than revoke or keep is sent, at creation or in an edit
        created = call("POST", "/admin/plans", {"name": "N", "stripe_price_ids": ["price_n"],
                                                 "grants": [{"community_id": community}], "dispute_policy": value})
        edited = call("PATCH", f"/admin/plans/{plan['id']}", {"dispute_policy": value})
        # Then both are refused with a 400 naming the field, and nothing changed
        for status, body in (created, edited):
            assert status == 400, body
            assert body["error"]["field"] == "dispute_policy" and body["error"]["message"]
        assert bootstrap.admin().stores.catalog.get_plan(plan["id"]).dispute_policy == ""


def test_processor_follows_the_stored_plan_policy_read_fresh_after_an_edit():
    with stack_at():
        # Given a lifetime plan with no policy, a buyer, and a processor over DynamoDB under revoke
        community = _community()
        _, plan = call("POST", "/admin/plans", {"name": "Life", "kind": "lifetime", "stripe_price_ids": ["price_l"],
                                                 "grants": [{"community_id": community}]})
        base = bootstrap.admin().stores
        # The processor's catalog as bootstrap wires it: a per-container snapshot
        stores = replace(base, catalog=CatalogSnapshot(base.catalog))
        processor = BillingEventProcessor(stores, FakeQueue(), dispute_policy="revoke")
        processor.apply(json.dumps(se.payment_completed(created=T0, member_id=None, plan_id=plan["id"])), T0)
        member = stores.members.find_by_customer("cus_1")
        assert [e.state for e in current_view(stores, member.id, T0).entitlements] == [EntitlementState.ACTIVE]
        # When the creator switches the plan to keep (after the processor read its catalog) and a dispute opens
        assert call("PATCH", f"/admin/plans/{plan['id']}", {"dispute_policy": "keep"})[0] == 200
        outcome = processor.apply(json.dumps(se.dispute_event(created=T0 + DAY)), T0 + DAY)
        # Then the plan's keep counts: access stays, the creator is alerted, and keep is recorded
        assert outcome.status == "processed" and "access kept" in outcome.alert
        assert [e.state for e in current_view(stores, member.id, T0 + DAY).entitlements] == [EntitlementState.ACTIVE]
        (grant,) = stores.grants.for_member(member.id)
        assert (grant.dispute, grant.dispute_policy) == ("open", "keep")


def test_subscription_record_keeps_whether_membergate_paused_it_for_a_dispute():
    with stack_at():
        # Given a disputed subscription Membergate paused, and a plain one
        stores = bootstrap.admin().stores
        stores.subscriptions.save(SubscriptionRecord("sub_1", "mbr_1", "cus_1", "pln_1", dispute="open",
                                                     dispute_policy="revoke", dispute_paused=True))
        stores.subscriptions.save(SubscriptionRecord("sub_2", "mbr_1", "cus_1", "pln_1"))
        # When they are read back from DynamoDB
        paused, plain = stores.subscriptions.get("mbr_1", "sub_1"), stores.subscriptions.get("mbr_1", "sub_2")
        # Then the pause is remembered (so a won dispute resumes only Membergate's own pause)
        assert (paused.dispute, paused.dispute_paused) == ("open", True)
        assert plain.dispute_paused is False
        # And clearing it is stored too
        stores.subscriptions.save(replace(paused, dispute="won", dispute_paused=False))
        assert stores.subscriptions.get("mbr_1", "sub_1").dispute_paused is False


def test_processor_is_wired_to_pause_disputed_billing_at_stripe_without_reading_the_key_until_needed():
    with stack_at():
        # Given the processor function's environment (STRIPE_API_KEY_NAME set, as the template sets it)
        import sys

        had_stripe = "stripe" in sys.modules
        # When its container is built
        collection = bootstrap.processor().processor.collection
        # Then it can pause billing, and building it neither imported the Stripe SDK nor read the key
        assert collection is not None and collection.settings.stripe_api_key_name == "/membergate/stripe-api-key"
        assert had_stripe or "stripe" not in sys.modules
