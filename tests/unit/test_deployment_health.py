"""services/health.py: which secrets are needed, how failures read, and the bound on platform calls."""

from __future__ import annotations

import pytest

from membergate.domain.access import Capability
from membergate.domain.errors import RetryableError
from membergate.domain.model import Community, OnRevoke, Platform
from membergate.domain.preflight import Check, Preflight
from membergate.services.health import (
    COMMUNITY_BUDGET_SECONDS,
    MAX_COMMUNITY_CHECKS,
    HealthTargets,
    SecretNeed,
    deployment_health,
)
from tests.support.fakes import fake_stores
from tests.support.health import FakeDeploymentProbe

pytestmark = pytest.mark.unit

DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/mg-dead-letters"
TARGETS = HealthTargets(
    secrets=(SecretNeed("/mg/stripe", "your Stripe restricted key", "StripeApiKeySecretName"),
             SecretNeed("/mg/tg", "the Telegram bot token", "TelegramBotTokenSecretName", Platform.TELEGRAM)),
    schedules=("mg-lifecycle",),
    dead_letter_queues=(DLQ,),
)


class CountingConnector:
    """A platform whose preflight answers from a script and counts the calls."""

    capabilities = frozenset({Capability.PREFLIGHT})

    def __init__(self, result: Preflight | Exception = Preflight((Check("bot_in_guild", True),))):
        self.result = result
        self.checked: list[str] = []

    def preflight(self, community: Community, role_ids):
        self.checked.append(community.id)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def community(n: int, platform: Platform = Platform.DISCORD) -> Community:
    return Community(id=f"com_{n:03d}", platform=platform, name=f"C{n}", external_id=str(700 + n), role_id=None,
                     on_revoke=OnRevoke.KICK, locale="en", created_at=0)


def test_health_optional_platform_secret_skipped_without_its_communities():
    # Given a healthy deployment with only Discord communities
    stores = fake_stores()
    stores.catalog.add_community(community(1))
    probe = FakeDeploymentProbe(secrets={"/mg/stripe": "rk_test_x"}, schedules={"mg-lifecycle": "ENABLED"})
    # When checked
    report = deployment_health(stores, {Platform.DISCORD: CountingConnector()}, probe, TARGETS, elapsed=lambda: 0.0)
    # Then it passes and the Telegram token was never asked for
    assert report.ok, report
    assert "/mg/tg" not in probe.asked


def test_health_unreadable_parts_fail_with_the_role_to_check_and_never_raise():
    # Given SSM and SQS refusing the admin function (a role missing a statement)
    probe = FakeDeploymentProbe(schedules={"mg-lifecycle": "ENABLED"}, unreadable={"/mg/stripe", DLQ})
    # When checked
    report = deployment_health(fake_stores(), {}, probe, TARGETS, elapsed=lambda: 0.0)
    # Then both fail, each pointing at the admin function's role
    failed = {c.check: c.fix for c in report.checks if not c.ok}
    assert set(failed) == {"secret /mg/stripe is set", "dead-letter queue mg-dead-letters is empty"}
    assert all("AdminApiRole" in fix for fix in failed.values())


def test_health_checks_at_most_the_bound_of_communities_and_names_the_rest():
    # Given more communities than one health check visits
    stores = fake_stores()
    for n in range(MAX_COMMUNITY_CHECKS + 3):
        stores.catalog.add_community(community(n))
    connector = CountingConnector()
    # When checked
    report = deployment_health(stores, {Platform.DISCORD: connector}, FakeDeploymentProbe(), HealthTargets(),
                               elapsed=lambda: 0.0)
    # Then exactly the bound is asked of the platform, and the rest are one failed check naming them
    assert len(connector.checked) == MAX_COMMUNITY_CHECKS
    rest = report.checks[-1]
    assert rest.check == "3 more communities' bots" and not rest.ok
    assert rest.detail == "com_020, com_021, com_022" and "POST /admin/communities/{id}/check" in rest.fix


def test_health_stops_starting_community_checks_after_the_time_budget():
    # Given a platform that has already used the time budget after the first community
    stores = fake_stores()
    for n in range(3):
        stores.catalog.add_community(community(n))
    ticks = iter([0.0, COMMUNITY_BUDGET_SECONDS, COMMUNITY_BUDGET_SECONDS])
    connector = CountingConnector()
    # When checked
    report = deployment_health(stores, {Platform.DISCORD: connector}, FakeDeploymentProbe(), HealthTargets(),
                               elapsed=lambda: next(ticks))
    # Then only the first was asked, and the two others are reported as not checked
    assert connector.checked == ["com_000"]
    assert report.checks[-1].check == "2 more communities' bots"


def test_health_platform_that_does_not_answer_is_a_failed_check_not_an_error():
    # Given Discord timing out
    stores = fake_stores()
    stores.catalog.add_community(community(1))
    connector = CountingConnector(RetryableError("Discord did not answer in 10 s"))
    # When checked
    report = deployment_health(stores, {Platform.DISCORD: connector}, FakeDeploymentProbe(), HealthTargets(),
                               elapsed=lambda: 0.0)
    # Then one failed check says to run the doctor again
    assert [(c.check, c.ok) for c in report.checks] == [("discord community com_001 (C1): the bot answers", False)]
    assert "run `membergate doctor` again" in report.checks[0].fix


def test_health_failed_preflight_check_carries_its_fix_and_passing_ones_none():
    # Given a bot below a plan's role
    stores = fake_stores()
    stores.catalog.add_community(community(1))
    connector = CountingConnector(Preflight((Check("bot_in_guild", True),
                                             Check("role_below_bot:9", False, "move the Membergate role above 'VIP'"))))
    # When checked
    report = deployment_health(stores, {Platform.DISCORD: connector}, FakeDeploymentProbe(), HealthTargets(),
                               elapsed=lambda: 0.0)
    # Then the failing check has the move; the passing one has no fix
    assert [(c.ok, c.fix) for c in report.checks] == [(True, None), (False, "move the Membergate role above 'VIP'")]


def test_health_bot_that_cannot_even_be_built_is_a_failed_check_pointing_at_the_secrets():
    # Given the bot token's parameter missing: the SDK raises its own error, not a typed one
    stores = fake_stores()
    stores.catalog.add_community(community(1, Platform.TELEGRAM))
    connector = CountingConnector(LookupError("ParameterNotFound"))
    # When checked
    report = deployment_health(stores, {Platform.TELEGRAM: connector}, FakeDeploymentProbe(), HealthTargets(),
                               elapsed=lambda: 0.0)
    # Then a failed check, not an error, sending the creator to the secret checks
    assert [(c.check, c.ok) for c in report.checks] == [("telegram community com_001 (C1): the bot answers", False)]
    assert "secret checks" in report.checks[0].fix


@pytest.mark.parametrize(("mode", "targets", "check", "ok"), [
    ("official", HealthTargets(), "phone_number_id", False),
    ("official", HealthTargets(whatsapp_phone_number_id_set=True), "phone_number_id", True),
    ("gateway", HealthTargets(), "gateway_url", False),
    ("gateway", HealthTargets(whatsapp_gateway_url_set=True), "gateway_url", True),
])
def test_health_whatsapp_community_needs_what_its_mode_needs(mode, targets, check, ok):
    # Given a WhatsApp community in this mode
    stores = fake_stores()
    stores.catalog.add_community(Community(id="com_wa", platform=Platform.WHATSAPP, name="WA", external_id="g1",
                                           role_id=None, on_revoke=OnRevoke.KICK, locale="en", created_at=0, mode=mode))
    # When checked against a deployment with or without that mode's setting
    report = deployment_health(stores, {}, FakeDeploymentProbe(), targets, elapsed=lambda: 0.0)
    # Then the one mode check passes or says which stack parameter to set (or to switch to manual mode)
    assert [(c.check, c.ok) for c in report.checks] == [(f"whatsapp community com_wa (WA): {check}", ok)]
    assert ok or "manual mode" in report.checks[0].fix


def test_health_gateway_key_is_needed_only_by_gateway_communities():
    # Given the gateway key's parameter missing and a manual-mode WhatsApp community
    stores = fake_stores()
    stores.catalog.add_community(Community(id="com_wa", platform=Platform.WHATSAPP, name="WA", external_id="g1",
                                           role_id=None, on_revoke=OnRevoke.KICK, locale="en", created_at=0,
                                           mode="manual", invite_link="https://chat.whatsapp.com/x"))
    targets = HealthTargets(secrets=(SecretNeed("/mg/gw", "the gateway key", "WhatsAppGatewayKeySecretName",
                                                Platform.WHATSAPP, "gateway"),))
    probe = FakeDeploymentProbe()
    # When checked
    report = deployment_health(stores, {}, probe, targets, elapsed=lambda: 0.0)
    # Then the key is not asked for
    assert report.ok and probe.asked == []
