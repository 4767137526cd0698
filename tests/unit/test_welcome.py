"""The welcome: once per (member, community) ever, on first access, the creator's text or the default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from membergate.domain.errors import InvalidRequestError, RetryableError
from membergate.domain.messages import fill_welcome, welcome_problem
from membergate.domain.model import Identity, MessageKey, MessageStatus, Platform, WorkKind
from membergate.ports import AccessWork
from membergate.services import admin
from membergate.services.access import AccessDispatcher, Links
from membergate.services.relink import relink_member
from tests.support import stripe_events as se
from tests.support.harness import DAY, T0, Harness
from tests.support.mail import FakeContacts, RecordingMailer

pytestmark = pytest.mark.unit

USER = "555555555555555555"
WELCOME_KEY = MessageKey("mbr_1", "welcome", "com_1")


def paid_signup(h: Harness, at: int = T0) -> None:
    h.at(at).deliver(
        se.subscription_event("customer.subscription.created", created=at, member_id="mbr_1"),
        se.checkout_completed(created=at, member_id="mbr_1"),
    )
    h.run_access()


def welcomes(h: Harness) -> list[str]:
    return [t for t in h.dm_texts() if t.startswith("Welcome to") or "Bienvenue" in t]


def with_email(h: Harness, *, always: bool = False) -> RecordingMailer:
    mailer = RecordingMailer()
    h.stores = replace(h.stores, contacts=FakeContacts())
    h.stores.contacts.set_email("mbr_1", "alice@example.com")
    h.dispatcher = AccessDispatcher(h.stores, {Platform.DISCORD: h.connector}, h.identity, h.cipher,
                                    Links("https://m.example"), mailer=mailer, email_always=always)
    h.processor.stores = h.stores
    return mailer


def test_welcome_first_access_sends_default_with_rules_and_manage_link():
    # Given a new member
    h = Harness()
    h.member()
    # When they pay and access is granted
    paid_signup(h)
    # Then one welcome arrives after the role, with the rules, a first step and where to manage
    assert h.roles() == {h.community.role_id}
    [text] = welcomes(h)
    assert "The Club" in text and "rules" in text and "Introduce yourself" in text
    assert "https://m.example/join/pln_monthly?manage=1" in text
    assert h.stores.messages.status(WELCOME_KEY) is MessageStatus.SENT
    assert h.connector.actions.index(("dm", USER)) > 0  # the role came first


def test_welcome_renewal_and_resync_send_nothing_more():
    # Given a welcomed member
    h = Harness()
    h.member()
    paid_signup(h)
    # When the subscription renews and the creator resyncs
    h.at(T0 + 31 * DAY).deliver(se.subscription_event(created=T0 + 31 * DAY, member_id="mbr_1",
                                                      period_end=T0 + 61 * DAY))
    h.queue.send([AccessWork(WorkKind.RESYNC, "mbr_1", "com_1")])
    h.run_access()
    # Then still one welcome
    assert len(welcomes(h)) == 1


def test_welcome_restore_after_removal_is_not_a_first_access():
    # Given a member whose access ended, then who pays again
    h = Harness()
    h.member()
    paid_signup(h)
    h.at(T0 + DAY).deliver(se.subscription_event(created=T0 + DAY, member_id="mbr_1", status="canceled"))
    h.run_access()
    assert h.roles() == set()
    # When they subscribe again and access comes back
    h.at(T0 + 2 * DAY).deliver(
        se.subscription_event("customer.subscription.created", created=T0 + 2 * DAY, member_id="mbr_1", sub_id="sub_2"),
        se.checkout_completed(created=T0 + 2 * DAY, member_id="mbr_1", sub_id="sub_2"),
    )
    h.run_access()
    # Then access is restored without a second welcome
    assert h.roles() == {h.community.role_id}
    assert len(welcomes(h)) == 1


def test_welcome_relink_to_another_account_sends_no_second_welcome():
    # Given a welcomed member
    h = Harness()
    h.member()
    paid_signup(h)
    # When they move their access to another Discord account
    sealed = h.stores.members.load_credentials("mbr_1", Platform.DISCORD)
    relink_member(h.stores, h.queue, {Platform.DISCORD: h.connector}, "mbr_1",
                  Identity(Platform.DISCORD, "666666666666666666", "@new"), h.now, sealed_credentials=sealed)
    h.run_access()
    # Then the new account has the role and nobody is welcomed twice
    assert h.roles("666666666666666666") == {h.community.role_id}
    assert len(welcomes(h)) == 1


def test_welcome_creator_text_fills_placeholders_once():
    # Given the creator's welcome with every placeholder, and a member whose name holds braces
    h = Harness()
    admin.update_plan(h.stores, "pln_monthly",
                      welcome_message="Hi {name}! {community} is yours. Rules: #rules. Billing: {manage_url} {unknown")
    h.member()
    h.stores.members.bind_identity("mbr_1", Identity(Platform.DISCORD, USER, handle="Al {community} (@al)"))
    # When they pay
    paid_signup(h)
    # Then the text is the creator's, filled in one pass (the name is not expanded)
    [text] = [t for _, t in h.connector.dms]
    assert text == ("Hi Al {community}! The Club is yours. Rules: #rules. "
                    "Billing: https://m.example/join/pln_monthly?manage=1 {unknown")


def test_welcome_default_in_french_includes_what_the_plan_offers():
    # Given a French community and a plan with a description
    h = Harness(locale="fr")
    h.stores.catalog.plans["pln_monthly"] = replace(h.plan, description="un live par semaine")
    h.member()
    # When they pay
    paid_signup(h)
    # Then the welcome speaks French ("tu") and says what is included
    [text] = [t for _, t in h.connector.dms]
    assert text.startswith("Bienvenue dans The Club") and "Lis les règles" in text
    assert "Ce que comprend Monthly : un live par semaine" in text


def test_welcome_dms_closed_goes_by_email():
    # Given a member who keeps Discord DMs closed and whose email is known
    h = Harness()
    mailer = with_email(h)
    h.member()
    h.connector.closed_dms.add(USER)
    # When they pay
    paid_signup(h)
    # Then the welcome goes by email and is recorded as sent
    assert [(to, "Welcome to The Club" in body) for to, _, body in mailer.sent] == [("alice@example.com", True)]
    assert h.stores.messages.status(WELCOME_KEY) is MessageStatus.SENT


class _ClaimedMeanwhile:
    """A message store where another sender claims each message between our look and our claim."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner

    def claim(self, key: MessageKey, now: int) -> bool:
        self.inner.claim(key, now)  # the other dispatcher thread got there first
        return self.inner.claim(key, now)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_welcome_claimed_by_a_concurrent_convergence_is_not_emailed_twice():
    # Given a member with DMs closed whose welcome another dispatcher thread claims at the same moment
    h = Harness()
    mailer = with_email(h)
    h.member()
    h.connector.closed_dms.add(USER)
    h.stores = replace(h.stores, messages=_ClaimedMeanwhile(h.stores.messages))
    h.dispatcher.stores = h.stores
    # When this thread's convergence gives access
    paid_signup(h)
    # Then it leaves the welcome to the thread that claimed it: no email from this one
    assert mailer.sent == []
    assert h.stores.messages.status(WELCOME_KEY) is MessageStatus.QUEUED


def test_email_always_sends_each_message_on_discord_and_by_email_and_records_both():
    # Given a deployment with EmailMessages: always, and a member whose email is known and DMs open
    h = Harness()
    mailer = with_email(h, always=True)
    h.member()
    # When they pay, then their renewal fails and the sweep runs in grace
    paid_signup(h)
    failed_at = T0 + 30 * DAY
    h.at(failed_at).deliver(se.subscription_event(created=failed_at, member_id="mbr_1", status="past_due"))
    h.run_access()
    h.at(failed_at + 60).sweep()
    # Then the welcome and the payment-failed notice each went both ways, once, with the same words
    dms = h.dm_texts()
    assert [d.split("!")[0] for d in dms] == ["Welcome to The Club", "Hi"]
    assert [(to, body) for to, _, body in mailer.sent] == [("alice@example.com", d) for d in dms]
    # And each is recorded as sent on the platform and by email
    grace = MessageKey("mbr_1", "grace_started", f"sub_1:{failed_at}")
    assert [h.stores.messages.items[k] for k in (WELCOME_KEY, grace)] == [(MessageStatus.SENT, "and by email")] * 2


def test_welcome_transient_failure_keeps_access_and_retries_once():
    # Given Discord fails the DM once
    h = Harness()
    h.member()
    h.connector.fail_on["send_message"] = [RetryableError("Discord answered HTTP 500")]
    # When they pay and the queued work runs
    paid_signup(h)
    # Then access is granted and the welcome arrives once, on its retry
    assert h.roles() == {h.community.role_id}
    assert len(welcomes(h)) == 1
    assert h.stores.messages.status(WELCOME_KEY) is MessageStatus.SENT


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("x" * 1501, "keep it to 1500"),
        ("Hello {first_name}", "unknown placeholders {first_name}"),
        ("bell\x07", "plain text"),
    ],
)
def test_welcome_problem_bad_text_says_what_to_change(message, problem):
    # Given / When a creator's welcome that cannot be used
    found = welcome_problem(message)
    # Then the reason says what to change
    assert found is not None and problem in found


def test_welcome_problem_plain_text_with_placeholders_is_fine():
    assert welcome_problem("Salut {name} !\nBienvenue dans {community}.\t{manage_url}") is None
    assert fill_welcome("{name}/{name}", {"name": "{name}"}) == "{name}/{name}"


def test_update_plan_bad_welcome_is_refused_with_the_field():
    # Given a plan
    h = Harness()
    # When the creator sets a welcome with an unknown placeholder
    with pytest.raises(InvalidRequestError) as error:
        admin.update_plan(h.stores, "pln_monthly", welcome_message="Hi {prenom}")
    # Then it is refused on that field and the plan is unchanged
    assert error.value.field == "welcome_message"
    assert h.stores.catalog.get_plan("pln_monthly").welcome_message == ""


def test_update_plan_notice_settings_only_given_change():
    # Given a plan with the default notices
    h = Harness()
    # When the creator turns the renewal notice off and leaves the trial notice alone
    plan = admin.update_plan(h.stores, "pln_monthly", notices={"renewal_notice_days": None})
    # Then only that changed, and it is stored
    assert (plan.renewal_notice_days, plan.trial_notice_days) == (None, 3)
    stored = h.stores.catalog.get_plan("pln_monthly")
    assert (stored.renewal_notice_days, stored.trial_notice_days) == (None, 3)


def test_update_plan_welcome_windows_line_ends_are_kept_as_plain_line_breaks():
    h = Harness()
    plan = admin.update_plan(h.stores, "pln_monthly", welcome_message="Hi {name}\r\nRules: #rules\r\n")
    assert plan.welcome_message == "Hi {name}\nRules: #rules"
