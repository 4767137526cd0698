"""The L215-1 annual renewal notice through the sweep: sent even late, and a late one alerts the creator."""

from __future__ import annotations

import pytest

from membergate.domain.alerts import AlertKind
from membergate.domain.lifecycle import RENEWAL_LEGAL_NOTICE
from membergate.domain.model import MessageKey, MessageStatus
from membergate.services.alerts import AlertRecorder
from membergate.services.lifecycle import run_lifecycle
from tests.support import stripe_events as se
from tests.support.alerts import MemoryAlertStore
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit


def _yearly_member(period_end: int) -> Harness:
    h = Harness()
    h.member()
    h.deliver(
        se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1", interval="year",
                              period_start=period_end - 365 * DAY, period_end=period_end),
        se.checkout_completed(created=T0, member_id="mbr_1"),
    )
    h.run_access()
    return h


def _sweep(h: Harness, store: MemoryAlertStore, when: int, time_zone: str = "UTC") -> None:
    h.at(when)
    run_lifecycle(stores=h.stores, billing=h.billing, access_queue=h.queue, now=when, alerts=AlertRecorder(store),
                  time_zone=time_zone)
    h.run_access()


def _legal_texts(h: Harness) -> list[str]:
    return [t for t in h.dm_texts() if "renews automatically" in t]


def test_sweep_legal_notice_first_due_inside_the_last_month_is_sent_and_alerts_the_creator_once():
    # Given a yearly subscription first seen 20 days before its renewal (the window closed 10 days ago)
    renewal = T0 + 20 * DAY
    h, store = _yearly_member(renewal), MemoryAlertStore()
    # When the sweep runs, then again ten minutes later
    _sweep(h, store, T0 + 60)
    _sweep(h, store, T0 + 660)
    # Then the member still gets the notice once, and the creator one alert saying what it means
    assert len(_legal_texts(h)) == 1
    assert h.stores.messages.status(MessageKey("mbr_1", RENEWAL_LEGAL_NOTICE, f"sub_1:{renewal}")) is MessageStatus.SENT
    [alert] = [a for a in store.between(0, T0 + DAY) if a.kind is AlertKind.LEGAL_NOTICE_LATE]
    assert alert.member_id == "mbr_1" and alert.subject == "pln_monthly"
    assert "terminate at any time" in alert.detail and "sub_1" in alert.detail


def test_sweep_legal_notice_inside_its_window_raises_no_alert():
    # Given a yearly subscription renewing in 60 days (inside the 3-to-1-month window)
    renewal = T0 + 60 * DAY
    h, store = _yearly_member(renewal), MemoryAlertStore()
    # When the sweep runs
    _sweep(h, store, T0 + 60)
    # Then the notice goes out and the creator is not alerted
    assert len(_legal_texts(h)) == 1
    assert [a for a in store.between(0, T0 + DAY) if a.kind is AlertKind.LEGAL_NOTICE_LATE] == []


def test_sweep_schedules_the_legal_notice_at_the_window_opening_in_the_creators_time_zone():
    # Given a yearly subscription renewing on 2027-07-01 00:30 in Paris (2027-06-30 22:30 UTC): three
    # months before is 2027-04-01 00:30 in Paris, but 2027-03-30 22:30 counted in UTC, a day earlier
    renewal, paris_opening = 1_814_394_600, 1_806_532_200
    h, store = _yearly_member(renewal), MemoryAlertStore()
    # When the sweep of a creator in Europe/Paris runs at the UTC opening (the processor scheduled it in UTC)
    _sweep(h, store, paris_opening - DAY, "Europe/Paris")
    # Then nothing is sent yet, and the member is next due at the Paris opening, when the notice goes out on time
    assert _legal_texts(h) == []
    assert h.stores.entitlements.due(paris_opening - 1, 10) == []
    assert h.stores.entitlements.due(paris_opening, 10) == ["mbr_1"]
    _sweep(h, store, paris_opening, "Europe/Paris")
    assert len(_legal_texts(h)) == 1 and store.between(0, renewal) == []
