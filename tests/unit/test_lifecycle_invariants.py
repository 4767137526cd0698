"""The lifecycle's safety invariants, over random mixes of sources, shuffled and repeated events, and sweeps.

Issue 6: no removal while any grant is live; every removal preceded by the notices its plan promises
(a failed payment's event delivered after its grace ran out included: a webhook outage); no access without a
live grant after grace. The oracle below is written from the rules, not from the
code: each source's window is plain arithmetic on the drawn story, counted from when the system could
know it (its event delivered, or the creator's action done).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from membergate.domain.billing import GRACE_MIN_NOTICE
from membergate.domain.lifecycle import CANCELLATION_RECEIPT, GRACE_ENDING, GRACE_STARTED
from membergate.domain.model import OnGraceEnd, OnRevoke, Plan, PlanGrant, PlanKind
from membergate.services import controls
from tests.support import stripe_events as se
from tests.support.harness import DAY, ROLE, T0, Harness
from tests.support.timeline import timed_harness

pytestmark = pytest.mark.unit

HOUR = 3_600
MAX_DELAY = 6 * HOUR  # a first delivery's lateness (Stripe delivers in seconds; its retries are repeats)
MAX_REPEAT_DELAY = 3 * DAY  # a duplicate may come much later
HORIZON = 45 * DAY
PERIOD = 30 * DAY  # se.subscription's default period length
REMOVALS = ("remove_role", "kick")
FOREVER = 2**62
PASS_PLAN = "pln_pass"
LIFE_PLAN = "pln_life"


@dataclass
class Story:
    """What happens, in Stripe time (``at``) and delivery time: the input and the oracle's facts."""

    grace_days: int
    on_grace_end: OnGraceEnd
    on_revoke: OnRevoke
    sweep_every: int
    pass_days: int = 30
    events: list[tuple[int, dict]] = field(default_factory=list)  # (delivered at, event)
    creator: list[tuple[int, str, dict]] = field(default_factory=list)  # (at, action, arguments)
    sweeps: list[int] = field(default_factory=list)
    # Oracle: each source as (known from, live until); the subscription's notices promised.
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    sub_failed_at: int | None = None  # failed and never recovered: grace notices are owed before removal
    sub_cancel_end: int | None = None  # cancelled at period end: the receipt is owed before removal
    sub_late: bool = False  # the failure was first delivered after its grace had run out

    def live(self, t: int) -> bool:
        return any(start <= t < end for start, end in self.windows.values())


def _delays(draw, events: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Each event delivered once a little late, some again much later (duplicates)."""
    out = [(at + draw(st.integers(0, MAX_DELAY)), event) for at, event in events]
    for at, event in events:
        if draw(st.booleans()):
            out.append((at + draw(st.integers(0, MAX_REPEAT_DELAY)), event))
    return out


def _days(draw) -> int | None:
    """A given grant's length; now and then forever (which then hides every other source's end)."""
    days = draw(st.integers(0, 20))
    return days or None


@st.composite
def stories(draw) -> Story:
    story = Story(
        grace_days=draw(st.integers(1, 4)),
        on_grace_end=draw(st.sampled_from(list(OnGraceEnd))),
        on_revoke=draw(st.sampled_from([OnRevoke.REMOVE_ROLE, OnRevoke.KICK])),
        sweep_every=draw(st.sampled_from([2 * HOUR, 6 * HOUR])),
    )
    grace = story.grace_days * DAY
    sources = set(draw(st.lists(st.sampled_from(["subscription", "pass", "manual", "code", "lifetime"]), min_size=1,
                                max_size=5, unique=True)))

    def moment(low: int = 0, high: int = 30 * DAY) -> int:
        return T0 + draw(st.integers(low // HOUR, high // HOUR)) * HOUR

    if "subscription" in sources:
        start = moment(0, 10 * DAY)
        paid = [(start, se.subscription_event("customer.subscription.created", created=start, member_id="mbr_1")),
                (start, se.checkout_completed(created=start, member_id="mbr_1"))]
        later: list[tuple[int, dict]] = []
        end = FOREVER
        # Weighted towards the plots that end in a removal, the ones the invariants are about.
        plot = draw(st.sampled_from(["keeps", "fails", "fails", "recovers", "cancels", "cancels"]))
        late_failure: list[tuple[int, dict]] = []
        if plot in ("fails", "recovers"):
            failed = start + draw(st.integers(1, 15)) * DAY
            failure = se.subscription_event(created=failed, member_id="mbr_1", status="past_due")
            if plot == "fails" and draw(st.booleans()):
                # A webhook outage: the failure is first delivered after its grace already ran out.
                late_failure.append((failed + grace + draw(st.integers(0, 48)) * HOUR, failure))
            else:
                later.append((failed, failure))
            if plot == "recovers":
                # Paid again inside grace, its event delivered before grace runs out.
                back = failed + draw(st.integers(1, story.grace_days * 24 - 7)) * HOUR
                later.append((back, se.subscription_event(created=back, member_id="mbr_1", status="active")))
            else:
                end = failed + grace
                story.sub_failed_at = failed
        elif plot == "cancels":
            said = start + draw(st.integers(1, PERIOD // HOUR - 48)) * HOUR
            later.append((said, se.subscription_event(created=said, member_id="mbr_1", cancel_at_period_end=True,
                                                      period_start=start, period_end=start + PERIOD)))
            end = story.sub_cancel_end = start + PERIOD
        delivered = _delays(draw, paid + later) + late_failure
        if story.sub_failed_at is not None:
            # Grace runs from the failure, but never ends sooner than the minimum notice after it was first known.
            known = min(d for d, e in delivered if e["data"]["object"].get("status") == "past_due")
            end = max(end, known + GRACE_MIN_NOTICE)
            story.sub_late = bool(late_failure)
        # Access needs both the subscription and its paid checkout: known once the later of the first two lands.
        first_sub = min(d for d, e in delivered if e["type"].startswith("customer.subscription"))
        first_checkout = min(d for d, e in delivered if e["type"] == "checkout.session.completed")
        story.windows["subscription"] = (max(first_sub, first_checkout), end)
        story.events += delivered
    if "pass" in sources:
        paid_at = moment()
        days = draw(st.integers(1, 20))
        story.pass_days = days
        delivered = _delays(draw, [(paid_at, se.payment_completed(created=paid_at, member_id="mbr_1", plan_id=PASS_PLAN,
                                                                  session_id="cs_pass", payment_intent="pi_pass"))])
        story.windows["pass"] = (min(d for d, _ in delivered), paid_at + days * DAY)
        story.events += delivered
    if "lifetime" in sources:
        paid_at = moment(0, HORIZON)
        bought = [(paid_at, se.payment_completed(created=paid_at, member_id="mbr_1", plan_id=LIFE_PLAN,
                                                 session_id="cs_life", payment_intent="pi_life"))]
        refund = []
        if draw(st.booleans()):  # refunded in full later: access ends once the refund is known
            refunded_at = paid_at + draw(st.integers(1, 20 * 24)) * HOUR
            refund = [(refunded_at, se.charge_refunded(created=refunded_at, refunded=4900, payment_intent="pi_life",
                                                       plan_id=LIFE_PLAN))]
        delivered = _delays(draw, bought + refund)
        known = min(d for d, e in delivered if e["type"] == "checkout.session.completed")
        ends = [d for d, e in delivered if e["type"] == "charge.refunded"]
        story.windows["lifetime"] = (known, min(ends) if ends else FOREVER)
        story.events += delivered
    if "manual" in sources:
        given_at = moment() + 17  # off the hour: never in the same second as a delivery
        days = _days(draw)
        plan = draw(st.sampled_from(["pln_monthly", PASS_PLAN]))
        story.creator.append((given_at, "give", {"plan_id": plan, "days": days}))
        end = FOREVER if days is None else given_at + days * DAY
        if draw(st.booleans()):
            ended_at = given_at + draw(st.integers(1, 20 * 24)) * HOUR
            story.creator.append((ended_at, "revoke", {}))
            end = min(end, ended_at)
        story.windows["manual"] = (given_at, end)
    if "code" in sources:
        redeemed_at = moment() + 29
        days = _days(draw)
        plan = draw(st.sampled_from(["pln_monthly", PASS_PLAN]))
        story.creator.append((redeemed_at, "redeem", {"plan_id": plan, "days": days}))
        story.windows["code"] = (redeemed_at, FOREVER if days is None else redeemed_at + days * DAY)
    grid = range(T0 + story.sweep_every, T0 + HORIZON, story.sweep_every)
    extra = draw(st.lists(st.integers(0, HORIZON // 60), max_size=6))
    story.sweeps = sorted(set(grid) | {T0 + m * 60 + 41 for m in extra})
    return story


def _harness(story: Story) -> Harness:
    h = timed_harness(on_revoke=story.on_revoke, on_grace_end=story.on_grace_end, grace_days=story.grace_days)
    # Every source gives the same place and role: access is their union.
    h.stores.catalog.add_plan(Plan(PASS_PLAN, "Pass", ("price_pass",), (PlanGrant("com_1"),), story.grace_days,
                                   story.on_grace_end, T0, PlanKind.PASS, story.pass_days))
    h.stores.catalog.add_plan(Plan(LIFE_PLAN, "Lifetime", ("price_life",), (PlanGrant("com_1"),), story.grace_days,
                                   story.on_grace_end, T0, PlanKind.LIFETIME))
    h.member()
    return h


def _do(h: Harness, action: str, args: dict, given: dict[str, str]) -> None:
    if action == "give":
        grant = controls.give_grant(h.stores, h.queue, member_id="mbr_1", plan_id=args["plan_id"], days=args["days"],
                                    reason="moderator", actor="creator", now=h.now)
        given["manual"] = grant.grant_id
    elif action == "revoke":
        controls.revoke(h.stores, h.queue, grant_id=given["manual"], reason="stepped down", actor="creator", now=h.now)
    else:
        typed, _ = controls.create_code(h.stores, plan_id=args["plan_id"], days=args["days"], uses=1, expires_at=None,
                                        actor="creator", now=h.now)
        assert controls.redeem_code(h.stores, h.queue, typed=typed, plan_id=args["plan_id"], member_id="mbr_1",
                                    now=h.now).refusal == ""


def _check_new(story: Story, h: Harness, seen: int, after_sweep: bool) -> int:
    timeline = h.connector.timeline
    for i in range(seen, len(timeline)):
        stamp = timeline[i]
        if stamp.what not in REMOVALS:
            continue
        # (i) no removal while any source is live
        assert not story.live(stamp.at), f"removed at {stamp.at - T0}s while live: {story.windows}"
        # (ii) told before access goes: the access-ended receipt right before, and what the plan promised earlier
        before = timeline[:i]
        said = {(s.kind, s.period) for s in before if s.what == "dm"}
        receipt = [s for s in before if s.what == "dm"][-1:]
        assert receipt and receipt[0].kind == "access_ended", f"removal without its receipt: {before[-3:]}"
        tally(f"removal: {stamp.what}")
        if story.windows.get("lifetime", (0, FOREVER))[1] <= stamp.at:
            tally("removal after the lifetime's refund")
        if story.sub_failed_at is not None and stamp.at >= story.sub_failed_at + story.grace_days * DAY:
            tally("removal after grace ran out" + (" (failure delivered late)" if story.sub_late else ""))
            period = f"sub_1:{story.sub_failed_at}"
            assert {(GRACE_STARTED, period), (GRACE_ENDING, period)} <= said, f"grace notices missing: {sorted(said)}"
        if story.sub_cancel_end is not None and stamp.at >= story.sub_cancel_end:
            tally("removal after a cancellation took effect")
            assert (CANCELLATION_RECEIPT, f"sub_1:{story.sub_cancel_end}") in said, f"no receipt: {sorted(said)}"
    held = ROLE in (h.roles() or set())
    live = story.live(h.now)
    # Access follows a live source at once (the event's own work), and (iii) a sweep takes away what none gives.
    assert held or not live, f"live but not held at {h.now - T0}s: {story.windows}"
    if after_sweep:
        assert live or not held, f"held with nothing live at {h.now - T0}s: {story.windows}"
    return len(timeline)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(story=stories())
def test_lifecycle_never_removes_a_live_member_tells_before_removing_and_removes_the_rest(story):
    # Given a member with a random mix of sources for one place, and their events shuffled and repeated
    h = _harness(story)
    tally(f"{len(story.windows)} sources")
    steps = ([(at, 0, "deliver", event) for at, event in story.events]
             + [(at, 1, "creator", (action, args)) for at, action, args in story.creator]
             + [(at, 2, "sweep", None) for at in story.sweeps])
    given: dict[str, str] = {}
    seen = 0
    ordered = sorted(steps, key=lambda s: (s[0], s[1]))
    # When time runs: each event, creator action and sweep at its moment, access work run after each
    for n, (at, _, what, payload) in enumerate(ordered):
        h.at(at)
        if what == "deliver":
            h.deliver(payload)
            h.run_access()
        elif what == "creator":
            _do(h, *payload, given)
            h.run_access()
        else:
            h.sweep()
        # Then the invariants hold once everything due at this moment was done (a sweep comes last)
        if n + 1 == len(ordered) or ordered[n + 1][0] != at:
            seen = _check_new(story, h, seen, after_sweep=what == "sweep")
