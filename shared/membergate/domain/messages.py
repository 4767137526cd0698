"""What members are told on their platform, in their community's language (texts: i18n.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from .i18n import CATALOGUES, SUPPORTED_LOCALES, text

__all__ = ["SUPPORTED_LOCALES", "format_date", "render", "template_key"]


def template_key(kind: str, reason: str = "", on_grace_end: str = "") -> str:
    if kind != "access_ended":
        return kind
    if reason == "grace_expired":
        return f"access_ended.grace_expired.{on_grace_end or 'cancel'}"
    if reason in ("cancelled_at_period_end", "refunded", "dispute"):
        return f"access_ended.{reason}"
    return "access_ended"


def format_date(epoch: int, locale: str) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    if locale == "fr":
        return moment.strftime("%d/%m/%Y à %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render(key: str, locale: str, **context: str) -> str:
    # The texts live in the one catalogue per language (i18n.py), under msg.<key>.
    name = f"msg.{key}" if f"msg.{key}" in CATALOGUES["en"] else f"msg.{key.split('.')[0]}"
    reason = context.get("reason", "")
    if f"reason.{reason}" in CATALOGUES["en"]:
        context = {**context, "reason": text(locale, f"reason.{reason}")}
    return text(locale, name).format_map(_Defaults(context))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "—"
