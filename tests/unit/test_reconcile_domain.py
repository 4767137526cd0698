"""domain/reconcile.py: every kind of drift, the creator's policy, windows and the report."""

from __future__ import annotations

import pytest

from membergate.domain.reconcile import (
    MAX_ITEMS_PER_KIND,
    Drift,
    DriftKind,
    FixKind,
    HeldSubscription,
    KnownAccount,
    PlaceMember,
    Policy,
    Report,
    StripeEvent,
    StripeSubscription,
    Window,
    compare_billing,
    compare_live_subscriptions,
    compare_place,
    granted_only,
)

NOW = 1_800_000_000
COM, ROLE, VIP = "com_1", "500", "501"
ALL = Window()


def known(user: str, *, entitled: bool = True, roles: tuple[str, ...] = (ROLE,), refusal: str = "",
          member: str | None = None) -> KnownAccount:
    return KnownAccount(member or f"mbr_{user}", user, entitled, roles if entitled else (), refusal)


def place(*members: tuple[str, set[str]]) -> list[PlaceMember]:
    return [PlaceMember(user, frozenset(roles)) for user, roles in members]


def compare(known_accounts, listed, policy=Policy(), window=ALL, **kw):
    return compare_place(COM, known_accounts, listed, window, {ROLE, VIP}, policy, NOW, **kw)


def test_compare_place_entitled_member_with_role_no_drift():
    # Given an entitled member holding the role
    # When compared
    result = compare([known("10")], place(("10", {ROLE, "999"})))
    # Then nothing is reported and nothing fixed
    assert result.drifts == () and result.fixes == ()


def test_compare_place_entitled_member_gone_from_place_reported_and_requeued_by_default():
    # Given an entitled member who is not in the guild
    # When compared with the default policy
    result = compare([known("10")], place(("11", set())))
    # Then paid-without-access is reported as auto-fixed and a convergence saying "absent" is asked for
    [drift] = result.drifts
    assert drift.kind is DriftKind.PAID_WITHOUT_ACCESS and drift.auto_fixed and drift.detail == "not in the place"
    assert [(f.kind, f.member_id, f.present) for f in result.fixes] == [(FixKind.CONVERGE, "mbr_10", False)]


def test_compare_place_entitled_member_back_without_role_gets_only_the_missing_role_fixed():
    # Given a member entitled to two roles who came back holding one of them
    result = compare([known("10", roles=(ROLE, VIP))], place(("10", {VIP, "42"})))
    # Then only the missing role is named, and the fix carries what the platform showed
    [drift] = result.drifts
    assert drift.detail == f"missing role(s) {ROLE}"
    [fix] = result.fixes
    assert fix.present is True and fix.held == ("42", VIP)


def test_compare_place_missing_access_only_reported_when_the_creator_disallows_fixing():
    # Given a policy that fixes nothing
    result = compare([known("10")], [], Policy(fix_missing_access=False))
    # Then the drift is reported with the way to fix it and no fix is queued
    [drift] = result.drifts
    assert not drift.auto_fixed and "resync" in drift.fix and result.fixes == ()


def test_compare_place_remembered_refusal_is_reported_not_retried():
    # Given an entitled member whose access failed for a missing permission
    result = compare([known("10", refusal="missing_permissions")], [])
    # Then it is reported with the refusal and not queued again (it would only be refused again)
    [drift] = result.drifts
    assert "missing_permissions" in drift.fix and not drift.auto_fixed and result.fixes == ()


def test_compare_place_known_member_not_entitled_holding_role_reported_only_by_default():
    # Given a member whose payment ended, still holding the role
    result = compare([known("10", entitled=False)], place(("10", {ROLE})))
    # Then access-without-payment is reported, nothing removed
    [drift] = result.drifts
    assert drift.kind is DriftKind.ACCESS_WITHOUT_PAYMENT and not drift.auto_fixed and result.fixes == ()


def test_compare_place_extra_access_removed_when_the_creator_allows():
    # Given the creator allows removals
    result = compare([known("10", entitled=False)], place(("10", {ROLE})), Policy(remove_extra_access=True))
    # Then the member's access is converged (the dispatcher removes the managed role)
    assert result.drifts[0].auto_fixed
    assert [(f.kind, f.member_id, f.present) for f in result.fixes] == [(FixKind.CONVERGE, "mbr_10", True)]


def test_compare_place_not_entitled_member_without_managed_role_is_fine():
    # Given a former member still in the guild with only unmanaged roles
    result = compare([known("10", entitled=False)], place(("10", {"42"})))
    # Then it is not drift (the free part of a community is not managed)
    assert result.drifts == ()


def test_compare_place_stranger_with_managed_role_reported_as_unknown():
    # Given an account no member owns holding a managed role, and one holding only other roles
    result = compare([], place(("77", {VIP, "1"}), ("78", {"1"})))
    # Then only the first is reported, with its managed roles, and nothing is removed by default
    [drift] = result.drifts
    assert (drift.kind, drift.user, drift.member_id, drift.detail) == (DriftKind.UNKNOWN_MEMBER, "77", None,
                                                                       f"holds {VIP}")
    assert result.fixes == ()


def test_compare_place_stranger_roles_revoked_when_allowed():
    # Given removals allowed
    result = compare([], place(("77", {VIP, ROLE, "1"})), Policy(remove_extra_access=True))
    # Then exactly the managed roles are revoked
    [fix] = result.fixes
    assert (fix.kind, fix.user, fix.roles) == (FixKind.REVOKE_ROLES, "77", (ROLE, VIP))


def test_compare_place_only_judges_accounts_inside_the_window():
    # Given a page covering ids 1..20 (a full page of limit 2)
    listed = place(("5", {ROLE}), ("20", {ROLE}))
    window = Window.page("0", listed, limit=2)
    # When a member with id 30 (next page) and one with id 15 (this page, absent) are compared
    result = compare([known("30"), known("15")], listed, window=window)
    # Then only the one inside the window is reported: the other waits for its page
    assert [d.user for d in result.drifts if d.kind is DriftKind.PAID_WITHOUT_ACCESS] == ["15"]


def test_window_page_short_page_reaches_the_end():
    # Given a short last page after id 20
    window = Window.page("20", place(("25", set())), limit=1000)
    # Then it covers everything after 20, and nothing at or before it
    assert window.covers("9" * 25) and window.covers("21") and not window.covers("20")
    assert not window.covers("abc")


def test_window_only_covers_the_checked_accounts():
    window = Window(only=frozenset({"1", "2"}))
    assert window.covers("1") and not window.covers("3")


def test_compare_place_roleless_platform_presence_is_access_and_strangers_unseen():
    # Given Telegram (presence is access; members checked one by one, no listing)
    listed = place(("1", set()), ("2", set()))
    accounts = [known("1", roles=()), known("2", entitled=False), known("3", roles=())]
    window = Window(only=frozenset({"1", "2", "3"}))
    # When compared
    result = compare(accounts, listed, window=window, roles_based=False, can_list=False)
    # Then 3 (entitled, absent) and 2 (present, not entitled) are reported; no stranger can be
    kinds = {(d.kind, d.user) for d in result.drifts}
    assert kinds == {(DriftKind.PAID_WITHOUT_ACCESS, "3"), (DriftKind.ACCESS_WITHOUT_PAYMENT, "2")}


def test_compare_billing_unknown_live_subscription_reported_with_member_or_claim_fix():
    # Given two live subscriptions Membergate never recorded (one customer is a member) and one it knows
    subs = [StripeSubscription("sub_a", "cus_a", "active", NOW), StripeSubscription("sub_b", "cus_b", "trialing", NOW),
            StripeSubscription("sub_k", "cus_k", "active", NOW)]
    drifts = compare_billing(subs, {"sub_k"}, {"cus_a": "mbr_a", "cus_b": None}, [], set(), NOW)
    # Then both unknown ones are reported, each with the fix that fits
    assert [(d.kind, d.subscription_id, d.member_id) for d in drifts] == [
        (DriftKind.UNKNOWN_SUBSCRIPTION, "sub_a", "mbr_a"), (DriftKind.UNKNOWN_SUBSCRIPTION, "sub_b", None)]
    assert "resend" in drifts[0].fix and "claim-link" in drifts[1].fix


@pytest.mark.parametrize("status", ["canceled", "incomplete_expired", "incomplete", "unpaid", "paused"])
def test_compare_billing_unknown_subscription_giving_no_access_is_not_drift(status):
    drifts = compare_billing([StripeSubscription("sub_a", "cus_a", status, NOW)], set(), {}, [], set(), NOW)
    assert drifts == ()


def test_compare_billing_failed_event_missing_from_ledger_reported_within_30_days():
    # Given three undelivered events: one the ledger has, one missing, one older than Stripe keeps
    events = [StripeEvent("evt_seen", "invoice.paid", NOW - 10), StripeEvent("evt_lost", "invoice.paid", NOW - 100),
              StripeEvent("evt_old", "invoice.paid", NOW - 31 * 86_400)]
    drifts = compare_billing([], set(), {}, events, {"evt_seen"}, NOW)
    # Then only the missing recent one is reported, with how to resend it
    assert [(d.kind, d.event_id) for d in drifts] == [(DriftKind.MISSED_EVENT, "evt_lost")]
    assert "Resend" in drifts[0].fix


def test_report_counts_every_item_keeps_a_bounded_list_and_round_trips():
    # Given more drift of one kind than a report keeps
    report = Report(NOW)
    report.add(Drift(DriftKind.UNKNOWN_MEMBER, "fix", False, COM, None, str(n)) for n in range(MAX_ITEMS_PER_KIND + 5))
    report.note("telegram: checked known members only")
    report.note("telegram: checked known members only")
    # When stored and read back
    data = Report.from_dict(report.to_dict()).to_dict()
    # Then the count is exact, the list bounded and flagged, notes not repeated
    assert data["counts"]["unknown_member"] == MAX_ITEMS_PER_KIND + 5
    assert len(data["items"]) == MAX_ITEMS_PER_KIND and data["truncated"] is True
    assert data["notes"] == ["telegram: checked known members only"] and data["complete"] is False


# --- live subscriptions: the plan billed, and a second subscription of one offer ---------------------

PRICES = {"price_month": "pln_month", "price_year": "pln_year", "price_other": "pln_other"}
OFFERS = {"pln_month": frozenset({COM}), "pln_year": frozenset({COM}), "pln_other": frozenset({"com_2"})}


def live(sub_id: str, price: str, status: str = "active", customer: str = "cus_1") -> StripeSubscription:
    return StripeSubscription(sub_id, customer, status, NOW, (price,))


@pytest.mark.parametrize("listed, held, policy, kinds, read_back", [
    # Stripe bills the plan Membergate holds: nothing
    ([live("sub_1", "price_month")], [HeldSubscription("sub_1", "pln_month", True)], Policy(), [], ()),
    # Stripe bills monthly, Membergate holds annual (a lost update): reported and read back by default
    ([live("sub_1", "price_month")], [HeldSubscription("sub_1", "pln_year", True)], Policy(),
     [(DriftKind.PLAN_MISMATCH, True, "Stripe bills pln_month, Membergate holds pln_year")], ("sub_1",)),
    # ... only reported when the creator does not let reconciliation fix
    ([live("sub_1", "price_month")], [HeldSubscription("sub_1", "pln_year", True)], Policy(fix_missing_access=False),
     [(DriftKind.PLAN_MISMATCH, False, "Stripe bills pln_month, Membergate holds pln_year")], ()),
    # a price no plan sells is not a mismatch (Membergate cannot say which plan it would be)
    ([live("sub_1", "price_unknown")], [HeldSubscription("sub_1", "pln_year", True)], Policy(), [], ()),
    # ended at Stripe: not compared
    ([live("sub_1", "price_month", "canceled")], [HeldSubscription("sub_1", "pln_year", True)], Policy(), [], ()),
    # two live subscriptions of one offer, both listed on this page: one item for the pair
    ([live("sub_1", "price_month"), live("sub_2", "price_year")],
     [HeldSubscription("sub_1", "pln_month", True), HeldSubscription("sub_2", "pln_year", True)], Policy(),
     [(DriftKind.DUPLICATE_SUBSCRIPTIONS, False, "sub_1 (pln_month) and sub_2 (pln_year)")], ()),
    # the second one made outside Membergate (no record) is still seen from Stripe's list
    ([live("sub_1", "price_month"), live("sub_9", "price_month")], [HeldSubscription("sub_1", "pln_month", True)],
     Policy(), [(DriftKind.DUPLICATE_SUBSCRIPTIONS, False, "sub_1 (pln_month) and sub_9 (pln_month)")], ()),
    # the other one on another page, known live from Membergate's record: reported under the smaller id
    ([live("sub_1", "price_month")],
     [HeldSubscription("sub_1", "pln_month", True), HeldSubscription("sub_2", "pln_year", True)], Policy(),
     [(DriftKind.DUPLICATE_SUBSCRIPTIONS, False, "sub_1 (pln_month) and sub_2 (pln_year)")], ()),
    # another offer, or an ended one: not a duplicate
    ([live("sub_1", "price_month"), live("sub_2", "price_other")],
     [HeldSubscription("sub_1", "pln_month", True), HeldSubscription("sub_0", "pln_year", False)], Policy(), [], ()),
    # another customer's subscription of the same offer is theirs
    ([live("sub_1", "price_month"), live("sub_2", "price_month", customer="cus_2")],
     [HeldSubscription("sub_1", "pln_month", True)], Policy(), [], ()),
])
def test_compare_live_subscriptions_reports_plan_mismatch_and_duplicates(listed, held, policy, kinds, read_back):
    # Given Stripe's live subscriptions of cus_1 (mbr_1) and the records Membergate holds for mbr_1
    members = {"cus_1": "mbr_1", "cus_2": "mbr_2"}
    # When compared
    result = compare_live_subscriptions(listed, members, {"mbr_1": held}, PRICES, OFFERS, policy)
    # Then exactly the expected drift, with who and what to do, and the reads back to make
    assert [(d.kind, d.auto_fixed, d.detail) for d in result.drifts] == kinds
    assert result.read_back == read_back
    for drift in result.drifts:
        assert drift.member_id == "mbr_1" and drift.customer_id == "cus_1" and drift.fix
    if any(k is DriftKind.DUPLICATE_SUBSCRIPTIONS for k, _, _ in kinds):
        assert "never cancels" in result.drifts[0].fix and "Stripe Dashboard" in result.drifts[0].fix
        assert result.drifts[0].community_id == COM  # the place both pay for


@pytest.mark.parametrize("sources, kind, detail", [
    ({"migration"}, DriftKind.GRANTED_WITHOUT_ACCESS, "not in the place; given by a free migration grant, not a payment"),
    ({"access_code", "manual"}, DriftKind.GRANTED_WITHOUT_ACCESS,
     "not in the place; given by a free access code grant and manual grant, not a payment"),
    (set(), DriftKind.PAID_WITHOUT_ACCESS, "not in the place"),
])
def test_granted_only_relabels_a_member_held_by_free_grants_and_keeps_the_fix(sources, kind, detail):
    # Given a member entitled here, gone from the place (fixed by default)
    [drift] = compare([known("10")], place()).drifts
    # When the sources of their access are known
    labelled = granted_only(drift, sources)
    # Then the kind says whether anything was paid, and the fix is unchanged
    assert (labelled.kind, labelled.detail) == (kind, detail)
    assert (labelled.fix, labelled.auto_fixed, labelled.member_id) == (drift.fix, drift.auto_fixed, drift.member_id)
