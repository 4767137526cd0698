"""Creator alerts: recorded where things happen, batched into one digest an hour per channel."""

from __future__ import annotations

import pytest

from membergate.domain.alerts import (
    ALL_KINDS,
    DISCORD_LIMIT,
    HOUR,
    MAX_ATTEMPTS,
    Alert,
    AlertKind,
    build_digest,
    digest_id,
    parse_kinds,
    render_digest,
)
from membergate.domain.survey import SurveyAnswer
from membergate.services.alerts import AlertRecorder, record_alert, send_digest
from tests.support import stripe_events as se
from tests.support.alerts import BrokenAlertStore, MemoryAlertStore, RecordingChannel, refusing
from tests.support.harness import DAY, T0, Harness

pytestmark = pytest.mark.unit

H0 = T0 - T0 % HOUR  # the start of a clock hour


def alert(n: int, kind: AlertKind = AlertKind.NEW_MEMBER, at: int = H0 + 60, member: str = "") -> Alert:
    return Alert(f"evt_{n}", kind, at, member or f"mbr_{n}", "pln_monthly")


class Answers:
    def __init__(self, *answers: SurveyAnswer):
        self.answers = list(answers)

    def for_member(self, member_id: str) -> list[SurveyAnswer]:
        return [a for a in self.answers if a.member_id == member_id]


# --- settings and wording -----------------------------------------------------------------------


def test_parse_kinds_all_none_and_a_list_unknown_refused():
    assert parse_kinds("") == ALL_KINDS and parse_kinds("all") == ALL_KINDS
    assert parse_kinds("none") == frozenset()
    assert parse_kinds(" dispute, new_member ") == {AlertKind.DISPUTE, AlertKind.NEW_MEMBER}
    with pytest.raises(ValueError, match="disputes"):
        parse_kinds("disputes")


def test_build_digest_counts_each_alert_once_and_quotes_the_first_five_of_a_kind():
    # Given 8 new members (one recorded twice, as a retried event is) and a dispute
    alerts = [alert(n, at=H0 + n) for n in range(8)] + [alert(3, at=H0 + 3), alert(99, AlertKind.DISPUTE)]
    # When the digest is built
    digest = build_digest("digest-1", alerts, ALL_KINDS, {}, "en")
    # Then each id counts once, and five lines of the eight are quoted, oldest first
    assert digest.counts == {AlertKind.NEW_MEMBER: 8, AlertKind.DISPUTE: 1}
    assert [line.split(" · ")[0] for line in digest.lines[AlertKind.NEW_MEMBER]] == [f"mbr_{n}" for n in range(5)]
    text = render_digest(digest, "en", "https://m.example/admin/dashboard")
    assert "New members: 8" in text and "… and 3 more" in text and "Disputes" in text
    assert text.endswith("https://m.example/admin/dashboard")


def test_build_digest_leaves_out_switched_off_kinds():
    digest = build_digest("d", [alert(1), alert(2, AlertKind.REMOVAL)], frozenset({AlertKind.REMOVAL}), {}, "en")
    assert digest.counts == {AlertKind.REMOVAL: 1}


def test_render_digest_in_french_with_the_exit_survey_answer_of_a_cancellation():
    digest = build_digest("d", [alert(1, AlertKind.CANCELLATION, member="mbr_x")], ALL_KINDS,
                          {"mbr_x": "too_expensive trop cher"}, "fr")
    text = render_digest(digest, "fr", "https://m.example/admin/dashboard")
    assert "Résiliations : 1" in text
    assert "questionnaire de départ : too_expensive trop cher" in text
    assert "tableau de bord" in text


def test_render_digest_fits_discords_limit_by_dropping_quoted_lines_never_counts_or_link():
    # Given a very busy hour whose details are long
    alerts = [Alert(f"e{n}", kind, H0 + n, f"mbr_{n}", "x" * 60, "y" * 200) for n, kind in
              enumerate(list(AlertKind) * 5)]
    digest = build_digest("d", alerts, ALL_KINDS, {}, "en")
    # When rendered for Discord
    text = render_digest(digest, "en", "https://m.example/admin/dashboard", DISCORD_LIMIT)
    # Then it fits, with every kind's count and the link
    assert len(text) <= DISCORD_LIMIT
    assert all(f": {5}" in text for _ in AlertKind) and "Members to remove by hand: 5" in text
    assert "https://m.example/admin/dashboard" in text


def test_line_of_an_alert_keeps_one_line_whatever_its_detail_holds():
    digest = build_digest("d", [Alert("e", AlertKind.UNDELIVERABLE, H0, "mbr_1", "com_1", "dms_closed\r\nFAKE: line")],
                          ALL_KINDS, {}, "en")
    assert "\r" not in digest.lines[AlertKind.UNDELIVERABLE][0] and "\n" not in digest.lines[AlertKind.UNDELIVERABLE][0]


# --- batching -------------------------------------------------------------------------------------


def test_send_digest_nothing_happened_sends_nothing_and_marks_the_hour():
    # Given no alert at all
    store, discord = MemoryAlertStore(), RecordingChannel("discord")
    # When the schedule runs twice within the hour
    first = send_digest(store, [discord], H0 + 300)
    second = send_digest(store, [discord], H0 + 600)
    # Then nothing is sent; the hour is marked once, the second run only reads the state
    assert (first.action, second.action) == ("nothing", "skip")
    assert discord.sent == [] and store.state_writes == 1


def test_send_digest_busy_hour_is_one_message_per_channel_and_the_next_hour_another():
    # Given alerts arriving all hour while the 5-minute schedule runs
    store = MemoryAlertStore()
    discord, telegram, email = RecordingChannel("discord"), RecordingChannel("telegram"), RecordingChannel("email")
    channels = [discord, telegram, email]
    n = 0
    for minute in range(0, 120, 5):
        now = H0 + minute * 60
        for _ in range(3):
            n += 1
            store.record(alert(n, at=now))
        send_digest(store, channels, now + 1)
    # Then each channel got one digest per clock hour, never more, each naming its hour
    for channel in channels:
        assert [d for _, _, d in channel.sent] == [digest_id(H0), digest_id(H0 + HOUR)]
    # And every alert was counted in exactly one digest
    counted = [int(text.split("New members: ")[1].split("\n")[0]) for _, text, _ in discord.sent]
    assert sum(counted) <= n and counted[0] == 3
    # (the alerts of the last run after its hour's digest wait for the next hour's)
    later = send_digest(store, channels, H0 + 2 * HOUR + 1)
    assert later.action == "sent"
    total = counted + [int(discord.sent[-1][1].split("New members: ")[1].split("\n")[0])]
    assert sum(total) == n
    assert email.sent[0][0] == "Membergate: 3 thing(s) happened in your community"


def test_send_digest_retry_resends_only_to_the_channel_that_failed_with_the_same_id():
    # Given a digest Telegram could not take (timeout)
    store = MemoryAlertStore()
    store.record(alert(1))
    discord, telegram = RecordingChannel("discord"), refusing("telegram")
    first = send_digest(store, [discord, telegram], H0 + 300)
    assert first.sent == ["discord"] and "telegram" in first.failed
    # When the next run comes and Telegram answers again
    telegram.fail_with = None
    second = send_digest(store, [discord, telegram], H0 + 600)
    # Then only Telegram gets it, with the same digest id; Discord is not posted to twice
    assert second.action == "resumed" and second.sent == ["telegram"]
    assert len(discord.sent) == 1 and [d for _, _, d in telegram.sent] == [digest_id(H0)]
    assert send_digest(store, [discord, telegram], H0 + 900).action == "skip"


def test_send_digest_channel_refusing_for_good_is_given_up_after_a_few_runs():
    store = MemoryAlertStore()
    store.record(alert(1))
    broken = refusing("discord", permanent=True)
    reports = [send_digest(store, [broken], H0 + 300 * (k + 1)) for k in range(MAX_ATTEMPTS + 1)]
    assert reports[MAX_ATTEMPTS - 1].given_up == ["discord"]
    assert reports[MAX_ATTEMPTS].action == "skip" and store.state is not None and store.state.pending == ()


def test_send_digest_two_runs_racing_for_the_hour_send_once():
    # Given a run that read the state, then another run saved the hour first
    store = MemoryAlertStore()
    store.record(alert(1))
    discord = RecordingChannel("discord")
    original = store.digest_state
    store.digest_state = lambda: (None, 0)  # type: ignore[method-assign]
    store.revision = 1  # the other run's save
    # When this run tries to claim the hour
    report = send_digest(store, [discord], H0 + 300)
    store.digest_state = original  # type: ignore[method-assign]
    # Then it sends nothing
    assert report.action == "skip" and discord.sent == []


def test_send_digest_without_channels_reads_nothing():
    store = BrokenAlertStore()
    assert send_digest(store, [], H0).action == "skip"


def test_send_digest_quotes_the_cancelling_members_exit_survey_answer():
    store = MemoryAlertStore()
    store.record(alert(1, AlertKind.CANCELLATION, member="mbr_c"))
    answers = Answers(SurveyAnswer("mbr_c", "pln_monthly", "sub_1", "p", "too_expensive", "", H0 + 100))
    discord = RecordingChannel("discord")
    send_digest(store, [discord], H0 + 300, surveys=answers)
    assert "exit survey: too_expensive" in discord.sent[0][1]


# --- recording ------------------------------------------------------------------------------------


def test_recorder_records_enabled_kinds_only_and_never_raises():
    store = MemoryAlertStore()
    recorder = AlertRecorder(store, frozenset({AlertKind.DISPUTE}))
    assert not record_alert(recorder, AlertKind.NEW_MEMBER, "e1", H0)
    assert record_alert(recorder, AlertKind.DISPUTE, "e2", H0, member_id="mbr_1")
    assert [a.id for a in store.between(0, H0 + 1)] == ["e2"]
    assert not record_alert(None, AlertKind.DISPUTE, "e3", H0)
    assert not AlertRecorder(BrokenAlertStore()).record(AlertKind.DISPUTE, "e4", H0)


def _harness_with_alerts() -> tuple[Harness, MemoryAlertStore]:
    h, store = Harness(), MemoryAlertStore()
    h.processor.alerts = AlertRecorder(store)
    h.dispatcher.alerts = AlertRecorder(store)
    return h, store


def test_billing_events_record_new_member_failed_payment_and_cancellation():
    # Given a member who pays, fails a renewal, then cancels
    h, store = _harness_with_alerts()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1", event_id="evt_checkout"))
    h.run_access()
    failed = se.invoice_event("invoice.payment_failed", created=T0 + DAY, status="open")
    h.at(T0 + DAY).deliver({**failed, "id": "evt_failed"})
    h.at(T0 + 2 * DAY).deliver(se.subscription_event("customer.subscription.deleted", created=T0 + 2 * DAY,
                                                     member_id="mbr_1", status="canceled", event_id="evt_deleted"))
    h.run_access()
    # When reading what was recorded
    found = {(a.kind, a.id) for a in store.between(0, T0 + 3 * DAY)}
    # Then each fact is one alert keyed by its Stripe event, and the removal that followed is one too
    assert (AlertKind.NEW_MEMBER, "evt_checkout") in found
    assert (AlertKind.PAYMENT_FAILED, "evt_failed") in found
    assert (AlertKind.CANCELLATION, "evt_deleted") in found
    assert [k for k, _ in found if k is AlertKind.REMOVAL] == [AlertKind.REMOVAL]
    # And a subscription update or a renewal is no alert
    assert len(found) == 4


def test_dispatcher_records_an_undeliverable_message():
    # Given a member whose DMs are closed and who has no email
    h, store = _harness_with_alerts()
    h.member()
    h.deliver(se.subscription_event("customer.subscription.created", created=T0, member_id="mbr_1"),
              se.checkout_completed(created=T0, member_id="mbr_1"))
    h.run_access()
    h.connector.closed_dms.add("555555555555555555")
    # When their subscription ends and the receipt cannot be delivered
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    # Then the creator is told, with the reason
    undeliverable = [a for a in store.between(0, T0 + 2 * DAY) if a.kind is AlertKind.UNDELIVERABLE]
    assert len(undeliverable) == 1 and "dms_closed" in undeliverable[0].detail


def test_alert_recorder_is_off_without_a_channel_and_a_mistyped_setting_never_stops_billing(monkeypatch):
    from membergate import bootstrap

    for name in ("ALERT_DISCORD_CHANNEL_ID", "ALERT_TELEGRAM_CHAT_ID", "ALERT_EMAIL", "ALERT_KINDS"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.alert_recorder.cache_clear()
    assert bootstrap.alert_recorder() is None  # no channel: nothing is ever written
    monkeypatch.setenv("ALERT_EMAIL", "creator@example.com")
    monkeypatch.setenv("ALERT_KINDS", "disputes")
    bootstrap.alert_recorder.cache_clear()
    assert bootstrap.alert_recorder() is None  # logged; billing goes on without alerts
    monkeypatch.setenv("ALERT_KINDS", "dispute")
    bootstrap.alert_recorder.cache_clear()
    recorder = bootstrap.alert_recorder()
    assert recorder is not None and recorder.enabled == {AlertKind.DISPUTE}
    bootstrap.alert_recorder.cache_clear()


def test_billing_alert_names_each_alert_worthy_stripe_event_and_nothing_else():
    from membergate.domain.stripe_events import parse_event
    from membergate.services.alerts import billing_alert

    def of(event: dict, detail: str = ""):
        return billing_alert(parse_event(event), detail)

    assert of(se.dispute_event(created=T0)) == (AlertKind.DISPUTE, "dp_test_1", "")
    assert of(se.dispute_event("charge.dispute.closed", created=T0, status="won")) is None
    assert of(se.checkout_completed(created=T0, member_id="mbr_1", payment_status="unpaid")) is None
    assert of(se.invoice_event("invoice.payment_failed", created=T0, status="open"),
              "invoice in_1 payment_failed: 900 eur") == (AlertKind.PAYMENT_FAILED, "in_1", "900 eur")
    assert of(se.subscription_event(created=T0, status="past_due")) is None
