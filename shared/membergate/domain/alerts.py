"""Creator alerts: what happened that the creator should know, batched into one digest an hour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

HOUR = 3_600
# A first digest (or one after a long outage) looks back this far; alert items live a little longer.
LOOKBACK_SECONDS = 7 * 86_400
ALERT_TTL_SECONDS = LOOKBACK_SECONDS + 86_400
# How many lines of each kind a digest quotes before "and N more" (the dashboard has them all).
FIRST_LINES = 5
# A channel refusing a digest this many runs in a row is given up for that digest (logged), so one
# misconfigured channel never holds the others back.
MAX_ATTEMPTS = 3
# What each channel takes in one message (Discord: 2,000 characters; Telegram: 4,096).
DISCORD_LIMIT = 2_000
TELEGRAM_LIMIT = 4_096


class AlertKind(str, Enum):
    NEW_MEMBER = "new_member"
    CANCELLATION = "cancellation"
    PAYMENT_FAILED = "payment_failed"
    DISPUTE = "dispute"
    REMOVAL = "removal"
    UNDELIVERABLE = "undeliverable"  # a member message or an access change that could not be done
    DRIFT = "drift"  # reconciliation found Stripe, Membergate and a community disagreeing
    REMOVAL_TASK = "removal_task"  # a member the creator must remove by hand (WhatsApp, manual mode)
    # An annual renewal's legal notice (L215-1) went out after its window: the member may terminate at any time.
    LEGAL_NOTICE_LATE = "legal_notice_late"


ALL_KINDS = frozenset(AlertKind)


@dataclass(frozen=True)
class Alert:
    id: str  # stable for one fact (a Stripe event id, member:community:at...): a retry records it once
    kind: AlertKind
    at: int
    member_id: str = ""
    subject: str = ""  # a plan, community or event id: what the line is about
    detail: str = ""  # no personal data: codes and ids only (an erasure never has to find alerts)


@dataclass(frozen=True)
class DigestState:
    """The last digest: its id (the hour), the window it covers and the channels still to send it to."""

    digest_id: str
    since: int
    until: int
    pending: tuple[str, ...] = ()
    attempts: int = 0


@dataclass(frozen=True)
class DigestPlan:
    action: str  # "skip" (this hour's digest is done), "resume" (send state's digest again), "new"
    state: DigestState


@dataclass(frozen=True)
class Digest:
    digest_id: str
    counts: dict[AlertKind, int]
    lines: dict[AlertKind, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parse_kinds(text: str) -> frozenset[AlertKind]:
    """``all`` (or empty), ``none``, or a comma list such as ``new_member,dispute``."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if not words or words == ["all"]:
        return ALL_KINDS
    if words == ["none"]:
        return frozenset()
    known = {k.value: k for k in AlertKind}
    unknown = [w for w in words if w not in known]
    if unknown:
        raise ValueError(f"unknown alert kind(s) {', '.join(unknown)}: use all, none or some of {', '.join(known)}")
    return frozenset(known[w] for w in words)


def digest_id(now: int) -> str:
    """One digest per clock hour: the id a retry within the hour finds already sent."""
    return f"digest-{now // HOUR}"


def plan_digest(state: DigestState | None, now: int, channels: Sequence[str]) -> DigestPlan:
    """What this run does: finish the last digest, do nothing more this hour, or start a new one."""
    if state is not None and state.pending:
        return DigestPlan("resume", state)
    this_hour = digest_id(now)
    if state is not None and state.digest_id == this_hour:
        return DigestPlan("skip", state)
    since = state.until if state is not None else now - LOOKBACK_SECONDS
    since = max(since, now - LOOKBACK_SECONDS)
    return DigestPlan("new", DigestState(this_hour, since, now, tuple(channels)))


def build_digest(
    digest: str, alerts: Sequence[Alert], enabled: frozenset[AlertKind], survey_answers: Mapping[str, str],
    locale: str, first: int = FIRST_LINES,
) -> Digest:
    """Count the enabled alerts by kind (each id once) and word the first few of each kind."""
    seen: set[str] = set()
    counts: dict[AlertKind, int] = {}
    lines: dict[AlertKind, list[str]] = {}
    for alert in sorted(alerts, key=lambda a: (a.at, a.id)):
        if alert.kind not in enabled or alert.id in seen:
            continue
        seen.add(alert.id)
        counts[alert.kind] = counts.get(alert.kind, 0) + 1
        quoted = lines.setdefault(alert.kind, [])
        if len(quoted) < first:
            quoted.append(_line(alert, survey_answers.get(alert.member_id, ""), locale))
    return Digest(digest, counts, lines)


TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "Membergate: {n} thing(s) happened in your community",
        "title": "Membergate digest: {n} event(s) since the last one",
        "more": "  … and {n} more",
        "dashboard": "Details in your dashboard: {url}",
        "kind.new_member": "New members: {n}",
        "kind.cancellation": "Cancellations: {n}",
        "kind.payment_failed": "Failed payments: {n}",
        "kind.dispute": "Disputes (answer them in Stripe before their deadline): {n}",
        "kind.removal": "Removals: {n}",
        "kind.undeliverable": "Could not be delivered (fix, then resync the member): {n}",
        "kind.drift": "Reconciliation drift: {n}",
        "kind.removal_task": "Members to remove by hand: {n}",
        "kind.legal_notice_late": ("Annual renewal notices sent less than a month before renewal (French law, "
                                   "L215-1: these members may terminate at any time, refund what they ask): {n}"),
        "survey": "exit survey: {answer}",
    },
    "fr": {
        "subject": "Membergate : {n} événement(s) dans ta communauté",
        "title": "Résumé Membergate : {n} événement(s) depuis le dernier",
        "more": "  … et {n} de plus",
        "dashboard": "Le détail dans ton tableau de bord : {url}",
        "kind.new_member": "Nouveaux membres : {n}",
        "kind.cancellation": "Résiliations : {n}",
        "kind.payment_failed": "Paiements échoués : {n}",
        "kind.dispute": "Litiges (réponds-y dans Stripe avant l'échéance) : {n}",
        "kind.removal": "Retraits : {n}",
        "kind.undeliverable": "Non délivrés (corrige, puis resynchronise le membre) : {n}",
        "kind.drift": "Écarts de réconciliation : {n}",
        "kind.removal_task": "Membres à retirer à la main : {n}",
        "kind.legal_notice_late": ("Avis de reconduction annuelle envoyés moins d'un mois avant l'échéance "
                                   "(art. L215-1 : ces membres peuvent résilier à tout moment) : {n}"),
        "survey": "questionnaire de départ : {answer}",
    },
}


def _texts(locale: str) -> dict[str, str]:
    return TEXTS.get(locale, TEXTS["en"])


def _line(alert: Alert, survey_answer: str, locale: str) -> str:
    parts = [p for p in (alert.member_id, alert.subject, alert.detail) if p]
    if alert.kind is AlertKind.CANCELLATION and survey_answer:
        parts.append(_texts(locale)["survey"].format(answer=survey_answer))
    return " · ".join(" ".join(p.split()) for p in parts)  # one line each, whatever a detail held


def subject(digest: Digest, locale: str) -> str:
    return _texts(locale)["subject"].format(n=digest.total)


def render_digest(digest: Digest, locale: str, dashboard_url: str, limit: int | None = None) -> str:
    """The digest's text: a title, each kind's count with its first lines, the dashboard link.

    Cut to ``limit`` characters by dropping quoted lines (never the counts or the link)."""
    t = _texts(locale)
    order = [k for k in AlertKind if digest.counts.get(k)]
    shown = {k: list(digest.lines.get(k, [])) for k in order}

    def text() -> str:
        out = [t["title"].format(n=digest.total)]
        for kind in order:
            out.append("")
            out.append(t[f"kind.{kind.value}"].format(n=digest.counts[kind]))
            out += [f"  - {line}" for line in shown[kind]]
            hidden = digest.counts[kind] - len(shown[kind])
            if hidden > 0:
                out.append(t["more"].format(n=hidden))
        if dashboard_url:
            out += ["", t["dashboard"].format(url=dashboard_url)]
        return "\n".join(out)

    said = text()
    while limit is not None and len(said) > limit and any(shown.values()):
        longest = max(order, key=lambda k: len(shown[k]))
        shown[longest].pop()
        said = text()
    return said[:limit] if limit is not None else said
