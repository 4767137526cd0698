"""What members are told on their platform, in their community's language (texts: i18n.py)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone

from .billing import PriceInfo
from .i18n import CATALOGUES, SUPPORTED_LOCALES, text

__all__ = [
    "SUPPORTED_LOCALES", "WELCOME_MAX", "WELCOME_PLACEHOLDERS", "fill_welcome", "format_date", "money", "price_label",
    "render", "template_key", "welcome_problem",
]


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


def money(amount: int | None, currency: str, locale: str, minimum: int | None = None) -> str:
    """An amount in minor units as a member reads it: "€9.00", "9,00 €", "from €5.00" (pay what you want)."""
    if amount is None:
        if minimum:  # pay what you want with a floor: "from €5.00"
            return text(locale, "page.from").format(amount=money(minimum, currency, locale))
        return text(locale, "page.custom_amount")
    digits = _ZERO_DECIMAL.get(currency, 2)
    value = f"{amount / 10 ** digits:,.{digits}f}"
    if locale == "fr":
        value = value.replace(",", "\u202f").replace(".", ",")
    symbol = _SYMBOLS.get(currency)
    if symbol is None:
        return f"{value} {currency.upper()}"
    return f"{value} {symbol}" if locale == "fr" else f"{symbol}{value}"


_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "chf": "CHF ", "cad": "CA$", "jpy": "¥"}
_ZERO_DECIMAL = {"jpy": 0, "krw": 0, "vnd": 0, "clp": 0, "xof": 0, "xaf": 0}


def price_label(price: PriceInfo, locale: str) -> str:
    """ "€9.00 / month", "9,00 € tous les 3 mois", "€90.00, paid once" (the join page and the messages alike)."""
    amount = money(price.amount, price.currency, locale, price.minimum)
    if price.type != "recurring" or not price.interval:
        label = text(locale, "page.once").format(amount=amount)
    elif price.interval_count == 1:
        label = text(locale, f"page.per.{price.interval}").format(amount=amount)
    else:
        label = text(locale, "page.every").format(
            amount=amount, count=price.interval_count, unit=text(locale, f"unit.{price.interval}"))
    return label


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


# The creator's welcome text: plain text with these placeholders only, filled in one pass (a
# member's name containing "{community}" stays as typed).
WELCOME_MAX = 1_500
WELCOME_PLACEHOLDERS = ("name", "community", "manage_url")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def welcome_problem(message: str) -> str | None:
    """Why the creator's welcome text cannot be used, in words they can act on; None when it can."""
    if len(message) > WELCOME_MAX:
        return f"welcome_message is {len(message)} characters; keep it to {WELCOME_MAX}"
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in message):
        return "welcome_message is plain text: remove control characters (line breaks and tabs are fine)"
    unknown = sorted({m for m in _PLACEHOLDER.findall(message) if m not in WELCOME_PLACEHOLDERS})
    if unknown:
        allowed = " ".join("{" + p + "}" for p in WELCOME_PLACEHOLDERS)
        return f"welcome_message uses unknown placeholders {', '.join('{' + u + '}' for u in unknown)}; use only {allowed}"
    return None


def fill_welcome(message: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), message)
