"""The migration's pure rules: the import file per platform, the migration grant, where an announcement reached."""

from __future__ import annotations

import pytest

from membergate.domain.errors import InvalidRequestError
from membergate.domain.grants import statuses
from membergate.domain.migration import (
    Migration,
    migration_grant,
    moved_grant,
    MAX_ROWS,
    parse_import,
    reached,
)
from membergate.domain.model import EntitlementState, Platform

T0 = 1_800_000_000
DAY = 86_400


def test_parse_import_without_header_reads_one_id_per_line_per_platform():
    # Given one file per platform, without a header, with separators people type in phone numbers
    discord = "112233445566778801\n\n112233445566778802\r\n"
    telegram = "123456789\r987654321\n"
    whatsapp = "+33 6 12 34 56 78\n0033612345679\n0612345678\n"
    # When each is parsed for its platform
    d_rows, d_bad = parse_import(discord, Platform.DISCORD)
    t_rows, t_bad = parse_import(telegram, Platform.TELEGRAM)
    w_rows, w_bad = parse_import(whatsapp, Platform.WHATSAPP)
    # Then ids are normalised, empty lines skipped, and a phone without country code is refused on its line
    assert [r.external_id for r in d_rows] == ["112233445566778801", "112233445566778802"] and not d_bad
    assert [(r.line, r.external_id) for r in t_rows] == [(1, "123456789"), (2, "987654321")] and not t_bad
    assert [r.external_id for r in w_rows] == ["+33612345678", "+33612345679"]
    assert [b.line for b in w_bad] == [3] and "country code" in w_bad[0].reason


def test_parse_import_header_columns_in_any_order_and_names_kept_as_text():
    # Given a header with the columns in another order, a BOM, a formula and control characters in names
    text = "\ufeffName,EMAIL,platform_id\n\"=HYPERLINK(\"\"http://x\"\")\",a@b.fr,112233445566778801\n\"Zoé\x1b[2J\",,112233445566778802\n"
    # When parsed
    rows, bad = parse_import(text, Platform.DISCORD)
    # Then the columns are found by name; the formula stays text; control characters are gone
    assert not bad
    assert [(r.name, r.email) for r in rows] == [('=HYPERLINK("http://x")', "a@b.fr"), ("Zoé [2J", None)]


@pytest.mark.parametrize("value", ["1234", "11223344556677880１", "-112233445566778801", "112233445566778801x", "0112233445566778801"])
def test_parse_import_refuses_what_is_not_a_discord_id(value):
    # Given a line that is not a snowflake (too short, a full-width digit, a sign, a suffix, a leading zero)
    # When parsed
    rows, bad = parse_import(value, Platform.DISCORD)
    # Then it is reported on its line, never imported
    assert rows == [] and [b.line for b in bad] == [1]


def test_parse_import_refuses_more_rows_than_one_request_can_write_in_its_fifteen_seconds():
    # Given 101 ids (one request writes about 18 items a row within the admin function's 15 s)
    assert MAX_ROWS == 100
    text = "\n".join(str(100 + n) for n in range(MAX_ROWS + 1))
    # When parsed, then the whole file is refused with what to do
    with pytest.raises(InvalidRequestError, match="split the file"):
        parse_import(text, Platform.TELEGRAM)


@pytest.mark.parametrize("header", ["discord_id,email", "ID;x", "User_ID,Username,E-mail", "id,name"])
def test_parse_import_reads_the_header_names_exports_use(header):
    # Given a file whose header names the id column as an export would
    text = header.replace(";", ",") + "\n112233445566778801,a@b.fr\n"
    # When parsed
    rows, bad = parse_import(text, Platform.DISCORD)
    # Then the header is not reported as a bad line and the row is read
    assert bad == [] and [r.external_id for r in rows] == ["112233445566778801"]


def test_migration_grant_gives_access_until_the_deadline_and_moves_with_it():
    # Given a migration ending in 14 days
    migration = Migration("mig_1", "com_1", "pln_1", T0 + 14 * DAY, "", T0)
    grant = migration_grant(migration, "mbr_1", T0)
    # When its status is read before and after the deadline, and after moving the deadline
    before = statuses([grant], T0 + 13 * DAY)[0][1]
    after = statuses([grant], T0 + 14 * DAY)[0][1]
    moved = statuses([moved_grant(grant, T0 + 21 * DAY)], T0 + 14 * DAY)[0][1]
    # Then it is active until the deadline, then ended; moved, it is active until the new one
    assert (before.state, before.until) == (EntitlementState.ACTIVE, T0 + 14 * DAY)
    assert (after.state, after.reason) == (EntitlementState.ENDED, "grant_expired")
    assert (moved.state, moved.until) == (EntitlementState.ACTIVE, T0 + 21 * DAY)
    assert grant.given and grant.source == "migration"


@pytest.mark.parametrize(
    ("outcomes", "posted", "expected"),
    [
        ([("sent", "")], False, "dm"),
        ([("sent", "and by email")], False, "dm"),
        ([("failed", "dms_closed"), ("sent", "by email (dms_closed)")], True, "email"),
        ([("failed", "dms_closed; no email known")], True, "post"),
        ([("failed", "no_identity")], False, "none"),
        ([], False, "none"),
    ],
)
def test_reached_names_the_best_channel(outcomes, posted, expected):
    # Given a member's offer messages and whether the offer was posted in the group
    # When asked where the announcement reached them, then the best channel is named
    assert reached(outcomes, posted) == expected
