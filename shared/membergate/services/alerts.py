"""Creator alerts: record what happened where it happens (one write), send one digest an hour."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..domain.alerts import (
    ALL_KINDS,
    DISCORD_LIMIT,
    MAX_ATTEMPTS,
    TELEGRAM_LIMIT,
    Alert,
    AlertKind,
    build_digest,
    plan_digest,
    render_digest,
    subject,
)
from ..domain.errors import PermanentError, RetryableError
from ..domain.stripe_events import PLAN_METADATA_KEY, StripeEvent
from ..ports import AlertChannel, AlertStore, SurveyStore

log = logging.getLogger(__name__)

# What each channel takes in one message: the digest drops quoted lines to fit.
CHANNEL_LIMITS = {"discord": DISCORD_LIMIT, "telegram": TELEGRAM_LIMIT}


class AlertRecorder:
    """Records the enabled kinds; never lets an alert's write fail the member's own work."""

    def __init__(self, store: AlertStore, enabled: frozenset[AlertKind] = ALL_KINDS):
        self.store = store
        self.enabled = enabled

    def record(self, kind: AlertKind, alert_id: str, now: int, *, member_id: str = "", subject: str = "",
               detail: str = "") -> bool:
        if kind not in self.enabled:
            return False
        try:
            self.store.record(Alert(alert_id, kind, now, member_id, subject, detail[:200]))
        except Exception as error:  # noqa: BLE001 - an alert is worth less than the access it reports
            log.warning("creator alert not recorded", extra={"alert_kind": kind.value, "error": repr(error)})
            return False
        return True


def record_alert(recorder: AlertRecorder | None, kind: AlertKind, alert_id: str, now: int, *, member_id: str = "",
                 subject: str = "", detail: str = "") -> bool:
    """The one call a use case makes (None: alerts are off in this deployment, nothing is written)."""
    if recorder is None:
        return False
    return recorder.record(kind, alert_id, now, member_id=member_id, subject=subject, detail=detail)


def billing_alert(event: StripeEvent, detail: str) -> tuple[AlertKind, str, str] | None:
    """The creator alert a processed Stripe event is, if any: (kind, subject, detail)."""
    obj = event.object
    paid = event.type == "checkout.session.completed" and obj.get("payment_status") in ("paid", "no_payment_required")
    if paid or event.type == "checkout.session.async_payment_succeeded":
        metadata = obj.get("metadata")
        plan = metadata.get(PLAN_METADATA_KEY) if isinstance(metadata, dict) else None
        return AlertKind.NEW_MEMBER, str(plan or obj.get("subscription") or ""), ""
    if event.type == "customer.subscription.deleted":
        return AlertKind.CANCELLATION, str(obj.get("id") or ""), ""
    if event.type == "invoice.payment_failed":
        return AlertKind.PAYMENT_FAILED, str(obj.get("id") or ""), detail.partition(": ")[2]
    if event.type == "charge.dispute.created":
        return AlertKind.DISPUTE, str(obj.get("id") or ""), ""
    return None


@dataclass
class DigestReport:
    digest_id: str = ""
    action: str = "skip"  # skip | nothing (no alert in the window) | sent | resumed
    alerts: int = 0
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    given_up: list[str] = field(default_factory=list)


def send_digest(
    store: AlertStore,
    channels: Sequence[AlertChannel],
    now: int,
    *,
    enabled: frozenset[AlertKind] = ALL_KINDS,
    locale: str = "en",
    dashboard_url: str = "",
    surveys: SurveyStore | None = None,
) -> DigestReport:
    """One digest per hour per channel, nothing when nothing happened; a retried run resends only
    to the channels that did not take it (Discord also drops a repeat by its nonce)."""
    if not channels:
        return DigestReport()
    state, revision = store.digest_state()
    plan = plan_digest(state, now, [c.name for c in channels])
    report = DigestReport(plan.state.digest_id, plan.action)
    if plan.action == "skip":
        return report
    current = plan.state
    alerts = store.between(current.since, current.until)
    digest = build_digest(current.digest_id, alerts, enabled, _survey_answers(surveys, alerts), locale)
    report.alerts = digest.total
    if plan.action == "new":
        report.action = "sent"
        if digest.total == 0:
            # Nothing this hour: the hour is done (one write), later alerts wait for the next one.
            current = replace(current, pending=())
            report.action = "nothing"
        if not store.save_digest_state(current, revision):
            return DigestReport(current.digest_id, "skip")  # another run took this hour
        revision += 1
        if not current.pending:
            return report
    else:
        report.action = "resumed"
    by_name = {c.name: c for c in channels}
    pending = list(current.pending)
    for name in list(pending):
        channel = by_name.get(name)
        if channel is None or digest.total == 0:
            pending.remove(name)  # no longer configured, or nothing left to say (kinds turned off)
            continue
        text = render_digest(digest, locale, dashboard_url, CHANNEL_LIMITS.get(name))
        try:
            channel.send(subject(digest, locale), text, digest.digest_id)
        except (RetryableError, PermanentError) as error:
            report.failed[name] = str(error)
            continue
        pending.remove(name)
        report.sent.append(name)
    attempts = current.attempts + 1 if pending else 0
    if pending and attempts >= MAX_ATTEMPTS:
        report.given_up = pending
        log.error("creator alert digest given up", extra={"digest_id": digest.digest_id, "channels": pending,
                                                          "errors": report.failed})
        pending = []
    if tuple(pending) != current.pending or attempts != current.attempts:
        store.save_digest_state(replace(current, pending=tuple(pending), attempts=attempts), revision)
    return report


def _survey_answers(surveys: SurveyStore | None, alerts: Sequence[Alert]) -> dict[str, str]:
    """The exit-survey answer of each cancelling member, read when the digest is written (the alert
    itself holds no personal text, so an erasure never has to look for it)."""
    if surveys is None:
        return {}
    answers: dict[str, str] = {}
    for alert in alerts:
        if alert.kind is AlertKind.CANCELLATION and alert.member_id and alert.member_id not in answers:
            given = sorted(surveys.for_member(alert.member_id), key=lambda a: a.at)
            if given:
                last = given[-1]
                answers[alert.member_id] = " ".join(x for x in (last.choice, last.comment) if x)[:200]
    return answers
