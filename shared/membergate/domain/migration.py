"""Free -> paid migration, pure: the migration, its import file's rules and its members' grants.

A creator moves an existing free community to a paid offer (often a founder price): the current
members are imported from a CSV, each keeps access until the deadline through a grant with source
``migration``, is told about the offer, and either takes it (a paid grant of the community) or
loses the paid places when the migration grant ends. Nothing here reads a clock: ``now`` is given.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace

from .billing import PriceInfo
from .errors import InvalidRequestError
from .grants import OneTimeGrant
from .i18n import text
from .messages import price_label
from .model import CheckoutGate, Community, OnRevoke, Platform, PlanKind
from .whatsapp import normalise_phone

SOURCE_MIGRATION = "migration"
MIGRATION_OFFER = "migration_offer"  # the message kind of the announcement (msg.migration_offer)
# Rows one import request may carry: each new row is about 18 table reads and writes done within
# the request, and the admin function stops after 15 s (about 100 ms a row on DynamoDB). The CLI
# sends 50 a request; a larger file is refused whole, before any write, saying to split it.
MAX_ROWS = 100
MAX_IMPORT_BYTES = 1024 * 1024
MAX_NAME = 100
MAX_MESSAGE = 1000

# Where an announcement reached a member, best first (a member reached two ways counts once).
REACHED_DM = "dm"
REACHED_POST = "post"
REACHED_EMAIL = "email"
REACHED_NONE = "none"

_DISCORD_ID = re.compile(r"[1-9][0-9]{16,19}\Z")  # a snowflake: 17 to 20 digits
_TELEGRAM_ID = re.compile(r"[1-9][0-9]{0,15}\Z")  # a user id: a positive integer (52 bits today)
_EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\Z")
# Control characters (CR, LF, NUL, ESC...) never belong in a name shown to the creator.
# Header names read as columns, as exports name them (Discord bots, Telegram exports, phone lists).
_HEADERS = {
    **dict.fromkeys(("platform_id", "id", "user_id", "discord_id", "telegram_id", "phone", "phone_number",
                     "whatsapp", "number"), "platform_id"),
    **dict.fromkeys(("email", "e-mail", "mail"), "email"),
    **dict.fromkeys(("name", "username", "display_name"), "name"),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Migration:
    id: str
    community_id: str
    plan_id: str  # the paid offer members are invited to take (e.g. the founder price)
    deadline: int  # epoch seconds: the migration grants end then
    message: str  # the creator's own words, added to the announcement
    created_at: int
    announcements: int = 0  # how many times announce ran (each round reaches the not yet reached)
    # Where the offer is posted for everyone (Discord: a channel of the server; Telegram: the group itself).
    announcement_channel_id: str | None = None
    posted_at: int | None = None  # when the offer was posted in the place (once per migration)
    # The plan the founder price is compared with ("instead of €9.00 / month"); None: the offer alone.
    regular_plan_id: str | None = None


@dataclass(frozen=True)
class ImportRow:
    line: int  # 1-based line of the file, as the creator's editor shows it
    external_id: str  # normalised: a snowflake, a Telegram user id, an E.164 phone
    email: str | None
    name: str | None


@dataclass(frozen=True)
class InvalidLine:
    line: int
    reason: str


@dataclass(frozen=True)
class MigrationMember:
    """One imported person in one migration: only the member id (their identity and email live with
    the member, so erasing the member's personal data leaves nothing personal here)."""

    migration_id: str
    member_id: str
    imported_at: int


def check_deadline(deadline: int, now: int) -> None:
    if deadline <= now:
        raise InvalidRequestError(
            "deadline is not in the future: give a later one, in epoch seconds (the CLI takes a date); members "
            "keep access until then",
            field="deadline",
        )


def migration_grant_id(migration_id: str, member_id: str) -> str:
    """One grant per (migration, member): importing the same person twice gives nothing more."""
    return f"mgg_{migration_id}_{member_id}"


def migration_grant(migration: Migration, member_id: str, now: int) -> OneTimeGrant:
    """Access from now until the migration's deadline, as the offer's plan gives it."""
    return OneTimeGrant(
        grant_id=migration_grant_id(migration.id, member_id),
        member_id=member_id,
        plan_id=migration.plan_id,
        kind=PlanKind.PASS,
        paid_at=now,
        access_seconds=migration.deadline - now,
        gate=CheckoutGate.PAID,
        source=SOURCE_MIGRATION,
        reason=f"migration {migration.id}",
    )


def moved_grant(grant: OneTimeGrant, deadline: int) -> OneTimeGrant:
    """The migration grant ending at the new deadline (earlier or later; it never ends before it began)."""
    return replace(grant, access_seconds=max(deadline - grant.paid_at, 1))


def grant_end(grant: OneTimeGrant) -> int | None:
    """When a migration grant ends (None: it never does, which a migration grant never is)."""
    return None if grant.access_seconds is None else grant.paid_at + grant.access_seconds


def migration_of(grant: OneTimeGrant) -> str | None:
    """The migration a grant was given by (its id reads ``mgg_<migration>_<member>``); None for other grants."""
    prefix, suffix = "mgg_", f"_{grant.member_id}"
    if grant.source != SOURCE_MIGRATION or not grant.grant_id.startswith(prefix) or not grant.grant_id.endswith(suffix):
        return None
    return grant.grant_id[len(prefix):-len(suffix)] or None


def lapsed(grants: list[OneTimeGrant], now: int) -> list[OneTimeGrant]:
    """Migration grants that ended by time alone (not ended by the creator): the ones an extension
    still being applied may not have reached yet."""
    out = []
    for grant in grants:
        end = grant_end(grant)
        if migration_of(grant) and not grant.end_reason and end is not None and end <= now:
            out.append(grant)
    return out


MAX_PRICES_SHOWN = 3  # a plan in several currencies and intervals: the first few, as the join page lists them


def offer_words(plan_name: str, prices: list[PriceInfo], regular: list[PriceInfo], locale: str) -> str:
    """The offer as the announcement names it: "Founder (€5.00 / month instead of €9.00 / month)".

    ``prices``: the offer plan's prices (as the join page reads them); ``regular``: the regular plan's,
    when the migration names one. Only prices on sale are shown; none known: the plan's name alone
    (Stripe unreachable must not stop the announcement: the join page the link opens shows the prices)."""
    shown = _prices(prices, locale)
    if not shown:
        return plan_name
    usual = _prices(regular, locale)
    if usual:
        return text(locale, "msg.migration_price_regular").format(plan=plan_name, price=shown, regular=usual)
    return text(locale, "msg.migration_price").format(plan=plan_name, price=shown)


def _prices(prices: list[PriceInfo], locale: str) -> str:
    on_sale = [p for p in prices if p.active][:MAX_PRICES_SHOWN]
    return text(locale, "msg.or").join(price_label(p, locale) for p in on_sale)


def normalise_id(platform: Platform, raw: str) -> str:
    """The platform id as stored, or InvalidRequestError saying what a valid one looks like."""
    value = raw.strip(" \t\ufeff")
    if platform is Platform.WHATSAPP:
        return normalise_phone(value)
    pattern, example = (
        (_DISCORD_ID, "a Discord user id: 17 to 20 digits (Developer Mode, right click, Copy User ID)")
        if platform is Platform.DISCORD
        else (_TELEGRAM_ID, "a Telegram user id: digits only, such as 123456789")
    )
    if not pattern.match(value):
        raise InvalidRequestError(f"{_shown(value)} is not {example}", field="platform_id")
    return value


def _shown(value: str) -> str:
    clean = _CONTROL.sub("?", value)
    return repr(clean[:40] + ("…" if len(clean) > 40 else ""))


def clean_name(raw: str) -> str | None:
    """A name kept as plain text (a leading '=' stays text: exports escape it), without control characters."""
    name = _CONTROL.sub(" ", raw).strip()
    return name[:MAX_NAME] or None


def header_columns(first_line: str) -> dict[str, int] | None:
    """The columns (platform_id, email, name) a header line names; None when the line is data."""
    names = [c.strip().lower() for c in _cells(first_line.lstrip("\ufeff")) or []]
    found = {_HEADERS[n]: i for i, n in reversed(list(enumerate(names))) if n in _HEADERS}
    return found if "platform_id" in found else None


def parse_import(text: str, platform: Platform) -> tuple[list[ImportRow], list[InvalidLine]]:
    """Rows to import and the lines refused, with why. Header ``platform_id[,email][,name]`` (or
    the names exports use: ``discord_id``, ``telegram_id``, ``phone``, ``username``...) or one id per line. Duplicate ids keep the first line (the later ones are reported)."""
    lines = text.lstrip("\ufeff").splitlines()
    rows: list[ImportRow] = []
    invalid: list[InvalidLine] = []
    columns = {"platform_id": 0}
    start = 0
    found = header_columns(lines[0]) if lines else None
    if found is not None:
        columns, start = found, 1
    data = [(n, line) for n, line in enumerate(lines[start:], start=start + 1) if line.strip(" \t,;")]
    if len(data) > MAX_ROWS:
        raise InvalidRequestError(
            f"the file has {len(data)} rows; import at most {MAX_ROWS} per request (split the file, or let "
            "`membergate migrate import` send it in batches)", field="body"
        )
    seen: set[str] = set()
    for number, line in data:
        cells = _cells(line)
        if cells is None:
            invalid.append(InvalidLine(number, "not a CSV line (a quote is not closed, or a NUL character)"))
            continue
        try:
            external_id = normalise_id(platform, _cell(cells, columns, "platform_id"))
        except InvalidRequestError as error:
            invalid.append(InvalidLine(number, error.message))
            continue
        email = _cell(cells, columns, "email").strip() or None
        if email is not None and not _EMAIL.match(email):
            invalid.append(InvalidLine(number, f"email {_shown(email)} is not an address; fix it or leave it empty"))
            continue
        if external_id in seen:
            invalid.append(InvalidLine(number, f"{external_id} is already on an earlier line"))
            continue
        seen.add(external_id)
        rows.append(ImportRow(number, external_id, email, clean_name(_cell(cells, columns, "name"))))
    return rows, invalid


def _cell(cells: list[str], columns: dict[str, int], key: str) -> str:
    index = columns.get(key)
    return cells[index] if index is not None and index < len(cells) else ""


def _cells(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error:
        return None


def reached(outcomes: list[tuple[str, str]], posted: bool) -> str:
    """Where the announcement reached one member: ``outcomes`` are (status, reason) of their offer
    messages (status sent/failed...; reason "by email (...)" when email carried it); ``posted``
    when it was posted in the community's group or channel."""
    if any(status == "sent" and not reason.startswith("by email") for status, reason in outcomes):
        return REACHED_DM
    if any(status == "sent" for status, _ in outcomes):
        return REACHED_EMAIL
    return REACHED_POST if posted else REACHED_NONE


def kick_warning(community: Community) -> str | None:
    """What a migration of a Discord community whose removals kick does at the deadline, with the fix;
    None when removals only take roles (or the platform has no roles to keep)."""
    if community.platform is not Platform.DISCORD or community.on_revoke is not OnRevoke.KICK:
        return None
    return (
        f"{community.name} removes members by kicking them: at the deadline every imported member who has not "
        "paid is removed from the whole Discord server, not only from the paid channels. To keep them in the "
        f"server without the paid role, switch to a role mode first: PATCH /admin/communities/{community.id} "
        'with {"on_revoke": "remove_role"}'
    )
