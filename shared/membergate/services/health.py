"""Deployment health (GET /admin/health): secrets set, bots able to act, schedules on, no dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import deadline
from ..deadline import DeadlineExceededError
from ..domain.errors import MembergateError, RetryableError
from ..domain.model import Community, Platform
from ..ports import DeploymentProbe, Stores
from .admin import granted_roles, run_preflight

# The creator's `membergate doctor` waits on this one request (API Gateway gives up at 30 s, the
# admin function at 15 s), so the platform part is bounded: at most this many communities, each
# one bot preflight (Discord: application, guild, roles, bot member; Telegram: getChat, getMe,
# getChatMember), and no new community started once this many seconds have passed. The rest are
# reported as not checked, with the command that checks them one at a time.
MAX_COMMUNITY_CHECKS = 20
COMMUNITY_BUDGET_SECONDS = 8.0
# A platform that stalls cannot hold the request past the admin function's 15 s either: every call of
# one community's preflight shares at most COMMUNITY_SECONDS (so one stalled community leaves time
# for the others), none runs past HEALTH_DEADLINE_SECONDS from the start, and a community whose
# time ran out is a failed check, as are the next ones on the same platform (it did not answer).
COMMUNITY_SECONDS = 4.0
# The AWS reads (secrets, schedules, queue) come first; once they took this long none more is started
# (each is bounded by the client's own timeouts, bootstrap.HEALTH_AWS_TIMEOUTS).
AWS_BUDGET_SECONDS = 4.0
HEALTH_DEADLINE_SECONDS = 10.0
# A timeout fires a little after the time asked for; within this it still counts as "ran out of time".
_TIMEOUT_SLACK = 0.25


@dataclass(frozen=True)
class HealthCheck:
    check: str
    ok: bool
    fix: str | None = None  # what the creator does to make it pass; None when it passes
    detail: str | None = None


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[HealthCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass(frozen=True)
class SecretNeed:
    """One SSM parameter the deployment reads: its name, what it holds, and the template parameter naming it."""

    name: str
    what: str
    template_parameter: str
    platform: Platform | None = None  # needed only while a community of this platform exists
    mode: str | None = None  # ... and of this mode (WhatsApp's gateway key: gateway communities only)


@dataclass(frozen=True)
class HealthTargets:
    """What the deployment consists of, as the admin function's settings name it."""

    secrets: tuple[SecretNeed, ...] = ()
    schedules: tuple[str, ...] = ()
    dead_letter_queues: tuple[str, ...] = ()
    # WhatsApp per community mode, from settings (no platform call): official mode needs the phone
    # number id, gateway mode the gateway's address.
    whatsapp_phone_number_id_set: bool = False
    whatsapp_gateway_url_set: bool = False
    # TermsUrl set (Checkout then asks the member to tick the terms box; without it the join page asks
    # for the waiver itself); None: not known, no check.
    terms_url_set: bool | None = None


TERMS_CHECK = "the join page and Checkout link your terms of sale (TermsUrl is set)"
TERMS_FIX = (
    "set TermsUrl (your terms of sale, saying that access starts at once and the 14-day withdrawal right "
    "is waived) and deploy, and the same URL in Stripe Dashboard → Settings → Public details: members must "
    "be given your terms before they buy, and Checkout then has them accepted. Until then the join page's "
    "own required box still records each member's express consent to immediate access"
)


def deployment_health(
    stores: Stores,
    connectors: Mapping[Platform, Any],
    probe: DeploymentProbe,
    targets: HealthTargets,
    elapsed: Callable[[], float] | None = None,
) -> HealthReport:
    """Every check in a fixed order: secrets, schedules, dead-letter queues, the consent box, then each
    community's bot."""
    elapsed = elapsed or _stopwatch()  # from the start: the deadline covers the AWS reads too
    communities = stores.catalog.list_communities()
    platforms = {c.platform for c in communities}
    modes = {(c.platform, c.mode or "manual") for c in communities}
    reads: list[tuple[str, Callable[[], HealthCheck]]] = []
    for need in targets.secrets:
        if need.platform is not None and need.platform not in platforms:
            continue  # an unused optional platform needs no secret
        if need.mode is not None and (need.platform, need.mode) not in modes:
            continue
        reads.append((f"secret {need.name} is set", partial(_secret_check, probe, need)))
    for name in targets.schedules:
        reads.append((f"schedule {name} is enabled", partial(_schedule_check, probe, name)))
    for url in targets.dead_letter_queues:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        reads.append((f"dead-letter queue {name} is empty", partial(_dead_letter_check, probe, url)))
    checks: list[HealthCheck] = []
    for check, read in reads:
        spent = elapsed()
        if spent >= AWS_BUDGET_SECONDS:
            # AWS this slow leaves no time for the rest: each unread part fails rather than the request.
            checks.append(HealthCheck(check, False, f"not read: AWS answered slowly ({spent:.1f} s for the parts "
                                      "above); run `membergate doctor` again", detail="not read"))
            continue
        checks.append(read())
    if targets.terms_url_set is not None:
        checks.append(HealthCheck(TERMS_CHECK, targets.terms_url_set, None if targets.terms_url_set else TERMS_FIX))
    checks.extend(_whatsapp_checks(communities, targets))
    checks.extend(_community_checks(stores, connectors, communities, elapsed))
    return HealthReport(tuple(checks))


def _whatsapp_checks(communities: Sequence[Community], targets: HealthTargets) -> list[HealthCheck]:
    """What each WhatsApp community's mode needs from the deployment (manual mode: nothing more)."""
    checks: list[HealthCheck] = []
    for community in sorted(communities, key=lambda c: c.id):
        if community.platform is not Platform.WHATSAPP:
            continue
        label = f"whatsapp community {community.id} ({community.name})"
        mode = community.mode or "manual"
        if mode == "official":
            ok = targets.whatsapp_phone_number_id_set
            checks.append(HealthCheck(f"{label}: phone_number_id", ok, None if ok else (
                "official mode needs the Cloud API: set the stack parameter WhatsAppPhoneNumberId (Meta app "
                "dashboard → WhatsApp → API Setup) and deploy, or switch the community to manual mode")))
        elif mode == "gateway":
            ok = targets.whatsapp_gateway_url_set
            checks.append(HealthCheck(f"{label}: gateway_url", ok, None if ok else (
                "gateway mode needs your gateway: set the stack parameters WhatsAppGatewayUrl and "
                "WhatsAppGatewayKeySecretName and deploy, or switch the community to manual mode")))
    return checks


def _stopwatch() -> Callable[[], float]:
    started = time.monotonic()
    return lambda: time.monotonic() - started


def _secret_check(probe: DeploymentProbe, need: SecretNeed) -> HealthCheck:
    check = f"secret {need.name} is set"
    try:
        state = probe.secret_state(need.name)
    except MembergateError as exc:
        return HealthCheck(check, False, f"could not read the parameter {need.name} ({exc}); check the admin "
                           "function's role may read it (template.yaml, AdminApiRole) and try again")
    if state == "present":
        return HealthCheck(check, True)
    # Never the value: the fix says where it goes and how to put it there.
    how = (f"aws ssm put-parameter --type SecureString --overwrite --name {need.name} --value '<{need.what}>' "
           f"(or point the stack parameter {need.template_parameter} at the parameter that holds it)")
    problem = "is empty" if state == "empty" else "does not exist"
    return HealthCheck(check, False, f"the SSM parameter {need.name} ({need.what}) {problem}: {how}")


def _schedule_check(probe: DeploymentProbe, name: str) -> HealthCheck:
    check = f"schedule {name} is enabled"
    try:
        state = probe.schedule_state(name)
    except MembergateError as exc:
        return HealthCheck(check, False, f"could not read the schedule {name} ({exc}); check the admin function's "
                           "role may read it (template.yaml, AdminApiRole) and try again")
    if state == "ENABLED":
        return HealthCheck(check, True)
    if state == "missing":
        return HealthCheck(check, False, f"the schedule {name} does not exist: deploy the stack again (sam deploy) "
                           "to recreate it")
    return HealthCheck(check, False, f"the schedule {name} is {state.lower()}: enable it in the EventBridge "
                       f"console (Scheduler → Schedules → {name} → Enable), or deploy the stack again (sam deploy)",
                       detail=state)


def _dead_letter_check(probe: DeploymentProbe, url: str) -> HealthCheck:
    name = url.rstrip("/").rsplit("/", 1)[-1]
    check = f"dead-letter queue {name} is empty"
    try:
        depth = probe.queue_depth(url)
    except MembergateError as exc:
        return HealthCheck(check, False, f"could not read the queue {name} ({exc}); check the admin function's "
                           "role may read its attributes (template.yaml, AdminApiRole) and try again")
    if depth == 0:
        return HealthCheck(check, True)
    return HealthCheck(
        check, False,
        f"{depth} message(s) failed for good and wait in {name}: read them (SQS console → {name} → Send and "
        "receive messages → Poll), fix what their error says (the processor's and dispatcher's logs name it), "
        "then redrive them (SQS console → Start DLQ redrive) or delete them",
        detail=f"{depth} message(s)",
    )


def _community_checks(
    stores: Stores, connectors: Mapping[Platform, Any], communities: Sequence[Community], elapsed: Callable[[], float]
) -> list[HealthCheck]:
    checks: list[HealthCheck] = []
    stalled: dict[Platform, str] = {}  # platform -> the community it did not answer for in time
    # Newest first: a community just registered is the likeliest to need a fix, and the one a creator
    # running the doctor after registering it wants to see within the bound.
    ordered = sorted(communities, key=lambda c: (-c.created_at, c.id))
    for index, community in enumerate(ordered):
        started = elapsed()
        if index >= MAX_COMMUNITY_CHECKS or started >= COMMUNITY_BUDGET_SECONDS:
            skipped = len(communities) - index
            checks.append(HealthCheck(
                f"{skipped} more communities' bots", False,
                f"not checked here (at most {MAX_COMMUNITY_CHECKS} communities or {COMMUNITY_BUDGET_SECONDS:g} s per "
                "health check): check each with POST /admin/communities/{id}/check",
                detail=", ".join(c.id for c in ordered[index:]),
            ))
            break
        label = f"{community.platform.value} community {community.id} ({community.name})"
        platform = community.platform.value.capitalize()
        later = f"run POST /admin/communities/{community.id}/check later"
        if community.platform in stalled:
            checks.append(HealthCheck(f"{label}: the bot answers", False,
                                      f"not asked: {platform} did not answer for community {stalled[community.platform]} "
                                      f"just before; {later}"))
            continue
        stop = min(started + COMMUNITY_SECONDS, HEALTH_DEADLINE_SECONDS)
        try:
            with deadline.within(lambda: stop - elapsed()):
                result = run_preflight(connectors, community, granted_roles(stores, community))
        except MembergateError as exc:
            # Not a verdict on the bot, but nothing is known: say why and how to ask again.
            left = stop - elapsed()
            checks.append(_unanswered(label, platform, later, exc, stop - started, left))
            if isinstance(exc, DeadlineExceededError) or left <= _TIMEOUT_SLACK:
                stalled[community.platform] = community.id
            continue
        except Exception as exc:  # noqa: BLE001 - a health check reports, it never fails the request
            # Typically the bot token's parameter is missing (the SDK's own error): its secret check says so.
            checks.append(HealthCheck(f"{label}: the bot answers", False,
                                      f"the bot could not be asked ({type(exc).__name__}): fix the failing secret "
                                      "checks above, then run `membergate doctor` again"))
            continue
        if result is None:
            continue  # no bot check on this platform (or no bot configured here)
        for item in result.checks:
            checks.append(HealthCheck(f"{label}: {item.name}", item.ok, None if item.ok else (item.fix or None)))
    return checks


def _unanswered(label: str, platform: str, later: str, exc: MembergateError, given: float, left: float) -> HealthCheck:
    """A preflight that raised: out of time, asked to wait longer than the time left, or another failure."""
    check = f"{label}: the bot answers"
    wait = exc.retry_after if isinstance(exc, RetryableError) else None
    if wait is not None:
        # Never a sleep here: a wait the adapter did not take inline is longer than this request can afford.
        longer = ", longer than this check has left" if wait > max(left, 0.0) else ""
        return HealthCheck(check, False, f"{platform} asks to wait {wait:.1f} s (rate limit){longer}; {later}",
                           detail=f"retry after {wait:.1f} s")
    if isinstance(exc, DeadlineExceededError) or left <= _TIMEOUT_SLACK:
        return HealthCheck(check, False, f"{platform} did not answer within {given:.1f} s; {later}",
                           detail="timed out")
    return HealthCheck(check, False, f"the platform did not answer ({exc}); run `membergate doctor` again")


class _NoProbe:
    """For an app built without AWS (tests of other routes): asked nothing, since its targets are empty."""

    def secret_state(self, name: str) -> str:
        raise AssertionError("no deployment probe configured")

    def schedule_state(self, name: str) -> str:
        raise AssertionError("no deployment probe configured")

    def queue_depth(self, url: str) -> int:
        raise AssertionError("no deployment probe configured")


NO_PROBE: DeploymentProbe = _NoProbe()
