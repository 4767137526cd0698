"""Extending a migration in bounded pages: the deadline moves at once, grants follow page by page, and a
member no page reached yet keeps access at the old deadline (the sweep reads the migration's deadline)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from typer.testing import CliRunner

from membergate.cli import app as cli_app
from membergate.domain.errors import ConflictError
from membergate.domain.grants import OneTimeGrant
from membergate.domain.migration import Migration, grant_end, migration_grant, migration_grant_id
from membergate.domain.model import CheckoutGate, EntitlementState, PlanKind, Platform, WorkKind
from membergate.ports import AccessWork
from membergate.services.access import AccessDispatcher, Links
from membergate.services import lifecycle
from membergate.services.membership import refresh_member
from membergate.services.migration import extend
from membergate.services.migration_deadline import catch_up
from tests.support.fakes import FakeBilling, FakeQueue
from tests.support.harness import GUILD, ROLE, Harness
from tests.support.migration_doubles import (
    COMMUNITY,
    PLAN,
    Crash,
    CrashingGrants,
    FakeMigrations,
    ScriptedExtendApi,
    extend_reply,
    migration_stores,
    seed,
)

pytestmark = pytest.mark.unit

T0 = 1_800_000_000
DAY = 86_400
OLD = T0 + 14 * DAY
NEW = OLD + 7 * DAY
runner = CliRunner()
MIGRATION = Migration("mig_1", COMMUNITY.id, PLAN.id, OLD, "", T0)


def _ends(stores, members: list[str]) -> list[int | None]:
    return [grant_end(stores.grants.get(m, migration_grant_id(MIGRATION.id, m))) for m in members]


def _projected(stores, member_id: str) -> EntitlementState:
    (entitlement,) = stores.entitlements.for_member(member_id)
    return entitlement.state


def test_extend_pages_move_the_deadline_first_then_grants_and_repeat_writes_nothing():
    # Given 5 imported members with their grants until the old deadline
    stores, migrations = migration_stores()
    members = seed(stores, MIGRATION, 5, T0)
    queue = FakeQueue()
    # When the creator extends in pages of 2, following next_cursor, then runs the first page again
    first = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="holidays", actor="t", now=T0 + DAY, limit=2)
    moved_after_first = _ends(stores, members)
    second = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="holidays", actor="t", now=T0 + DAY,
                    cursor=first.next_cursor, limit=2)
    third = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="holidays", actor="t", now=T0 + DAY,
                   cursor=second.next_cursor, limit=2)
    saves_before_repeat = len(stores.grants.items)
    again = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="holidays", actor="t", now=T0 + DAY, limit=10)
    # Then the first page moved the migration's deadline and two grants; the pages moved the rest once each
    assert first.migration.deadline == NEW and migrations.items["mig_1"].deadline == NEW
    assert moved_after_first == [NEW, NEW, OLD, OLD, OLD]
    assert (first.moved, second.moved, third.moved) == (2, 2, 1) and third.next_cursor is None
    assert first.next_cursor == members[1] and second.next_cursor == members[3]
    assert _ends(stores, members) == [NEW] * 5
    assert (again.moved, again.already, again.next_cursor) == (0, 5, None)
    assert len(stores.grants.items) == saves_before_repeat
    # Then the deadline was saved once (a page after the first, or a repeat, does not write it again)
    assert [m.deadline for m in migrations.saves] == [NEW]


def test_extend_later_page_with_another_deadline_than_the_migration_is_refused():
    # Given an extension started to NEW, then another one to a later date
    stores, _ = migration_stores()
    seed(stores, MIGRATION, 3, T0)
    queue = FakeQueue()
    first = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="r", actor="t", now=T0, limit=1)
    extend(stores, queue, migration_id="mig_1", deadline=NEW + DAY, reason="r", actor="t", now=T0, limit=1)
    # When the first extension's next page arrives / Then it is refused, saying to start again without cursor
    with pytest.raises(ConflictError) as refused:
        extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="r", actor="t", now=T0, cursor=first.next_cursor,
               limit=1)
    assert "without cursor" in refused.value.message


def test_extend_crashed_half_way_members_not_reached_keep_access_at_the_old_deadline():
    # Given 4 members and an extension whose request stops after moving 2 grants (the Lambda timed out)
    grants = CrashingGrants()
    stores, _ = migration_stores(grants)
    members = seed(stores, MIGRATION, 4, T0)
    queue = FakeQueue()
    for member in members:
        refresh_member(stores, queue, member, T0, sweep_now=False)  # projections as the import left them
    queue.take()
    grants.allowed = grants.saves + 2
    with pytest.raises(Crash):
        extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="r", actor="t", now=T0 + DAY, limit=None)
    grants.allowed = None
    assert _ends(stores, members) == [NEW, NEW, OLD, OLD]
    # When the old deadline comes and the sweep wakes every member due then
    report = lifecycle.run_lifecycle(stores=stores, billing=FakeBilling(), access_queue=queue, now=OLD + 60)
    # Then nobody lost access: the grants no page had reached followed the migration's deadline
    assert report.members == 2  # the two not moved were due at the old deadline
    assert [_projected(stores, m) for m in members] == [EntitlementState.ACTIVE] * 4
    assert _ends(stores, members) == [NEW] * 4
    assert not [w for w in queue.take() if w.kind is WorkKind.CONVERGE]
    assert {stores.entitlements.due_at[m] for m in members} == {NEW}
    # When the creator runs the same extension again, it finds nothing left to write
    again = extend(stores, queue, migration_id="mig_1", deadline=NEW, reason="r", actor="t", now=OLD + 120, limit=None)
    assert (again.moved, again.already) == (0, 4)
    # When the new deadline passes, the sweep ends access for all of them (nothing moves them further)
    lifecycle.run_lifecycle(stores=stores, billing=FakeBilling(), access_queue=queue, now=NEW + 60)
    assert [_projected(stores, m) for m in members] == [EntitlementState.ENDED] * 4
    assert {w.member_id for w in queue.take() if w.kind is WorkKind.CONVERGE} == set(members)


def test_catch_up_leaves_a_passed_deadline_and_a_grant_the_creator_ended_alone():
    # Given one member whose grant ends at the (unchanged) deadline and one whose grant the creator ended
    stores, _ = migration_stores()
    passed, ended = seed(stores, MIGRATION, 2, T0)
    own = stores.grants.get(ended, migration_grant_id("mig_1", ended))
    assert own is not None
    stores.grants.save(replace(own, ended_reason="revoked_by_creator"))
    # When the deadline has passed and the sweep's catch-up reads them
    for member in (passed, ended):
        caught = catch_up(stores, stores.grants.for_member(member), OLD + 60)
        # Then nothing moves and nothing is written
        assert caught is None
    assert _ends(stores, [passed]) == [OLD]


def test_extend_skips_members_who_paid_and_counts_only_pending_ones():
    # Given 2 members, one of whom took the founder price (a paid lifetime grant)
    stores, _ = migration_stores()
    payer, pending = seed(stores, MIGRATION, 2, T0)
    stores.grants.save(OneTimeGrant("cs_paid", payer, PLAN.id, PlanKind.LIFETIME, T0 + 1, None, CheckoutGate.PAID,
                                    amount=500, currency="eur"))
    # When the creator extends
    result = extend(stores, FakeQueue(), migration_id="mig_1", deadline=NEW, reason="r", actor="t", now=T0 + DAY, limit=None)
    # Then only the pending member's grant moved
    assert (result.moved, result.already) == (1, 0)
    assert _ends(stores, [payer, pending]) == [OLD, NEW]


def test_dispatcher_converging_after_the_old_deadline_keeps_a_member_no_page_reached_yet():
    # Given a Discord member holding the paid role through a migration grant until the old deadline
    h = Harness()
    h.stores = replace(h.stores, migrations=FakeMigrations())
    h.dispatcher = AccessDispatcher(h.stores, {Platform.DISCORD: h.connector}, h.identity, h.cipher, Links("https://m.example"))
    h.member("mbr_1")
    migration = Migration("mig_1", h.community.id, h.plan.id, OLD, "", T0)
    h.stores.migrations.create(migration)
    h.stores.grants.save(migration_grant(migration, "mbr_1", T0))
    refresh_member(h.stores, h.queue, "mbr_1", T0, sweep_now=False)
    h.run_access()
    assert ROLE in (h.connector.roles_of(GUILD, "555555555555555555") or set())
    # And an extension whose first page moved the deadline but never reached this member's grant
    h.stores.migrations.save(replace(migration, deadline=NEW))
    # When a converge for the member runs after the old deadline, before the sweep got to them
    h.now = OLD + 60
    h.queue.send([AccessWork(WorkKind.CONVERGE, "mbr_1", h.community.id)])
    h.run_access()
    # Then the role stays and the grant now ends at the migration's deadline
    assert ROLE in (h.connector.roles_of(GUILD, "555555555555555555") or set())
    assert _ends(h.stores, ["mbr_1"]) == [NEW]


def test_cli_extend_walks_every_page_and_sends_a_timed_out_page_once_more():
    # Given an API whose second page times out once (the page is idempotent: sending it again is safe)
    api = ScriptedExtendApi([extend_reply(2, 0, "mbr_0001"), None, extend_reply(1, 1, None)])
    with api.serving() as url:
        # When the creator extends
        result = runner.invoke(cli_app, ["--url", url, "--token", "t", "migrate", "extend", "mig_1", "--deadline",
                                         "2027-02-01", "--reason", "holidays", "--page", "2"])
    # Then every page was sent with the same deadline, the timed-out one twice, and the counts add up
    assert result.exit_code == 0, result.output
    assert [b["cursor"] for b in api.bodies] == [None, "mbr_0001", "mbr_0001"]
    assert {b["deadline"] for b in api.bodies} == {1801440000} and {b["limit"] for b in api.bodies} == {2}
    assert "3 pending member(s) moved, 1 already there" in result.output


def test_cli_extend_interrupted_says_how_to_resume_from_the_page_it_reached():
    # Given an API that stops answering after the first page
    api = ScriptedExtendApi([extend_reply(2, 0, "mbr_0001"), None, None])
    with api.serving() as url:
        # When the creator extends
        result = runner.invoke(cli_app, ["--url", url, "--token", "t", "migrate", "extend", "mig_1", "--deadline",
                                         "2027-02-01", "--reason", "holidays"])
    # Then it fails, saying the deadline already moved and the command that resumes from that page
    assert result.exit_code == 1
    assert "--cursor mbr_0001" in result.output and "deadline already moved" in result.output


NOT_FUTURE = {"_status": 400, "error": {"code": "invalid_request", "field": "deadline", "message": (
    "deadline is not in the future: give a later one, in epoch seconds (the CLI takes a date); members keep "
    "access until then")}}


@pytest.mark.parametrize("command", [
    ["migrate", "extend", "mig_1", "--deadline", "2026-12-31", "--reason", "holidays"],
    ["migrate", "create", "--community", "com_1", "--plan", "pln_1", "--deadline", "2026-12-31"],
])
def test_cli_deadline_in_the_past_is_told_in_dates_not_epoch_seconds(command):
    # Given an API that refuses the deadline as not in the future (the stack's clock may run ahead)
    api = ScriptedExtendApi([dict(NOT_FUTURE, error=dict(NOT_FUTURE["error"]))])
    with api.serving() as url:
        # When the creator passes a date
        result = runner.invoke(cli_app, ["--url", url, "--token", "t", *command])
    # Then the error speaks of the date typed and how to read the stack's clock, not of epoch seconds
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "--deadline 2026-12-31 is not in the future" in output and "/_local/clock" in output
    assert "epoch" not in output


def test_cli_extend_shorten_is_sent_only_when_asked():
    # Given an API that accepts every page
    api = ScriptedExtendApi([extend_reply(1, 0, None), extend_reply(1, 0, None)])
    with api.serving() as url:
        # When the creator extends once plainly and once with --shorten
        plain = runner.invoke(cli_app, ["--url", url, "--token", "t", "migrate", "extend", "mig_1", "--deadline",
                                        "2027-02-01", "--reason", "holidays"])
        shorter = runner.invoke(cli_app, ["--url", url, "--token", "t", "migrate", "extend", "mig_1", "--deadline",
                                          "2027-01-20", "--reason", "ending early", "--shorten"])
    # Then only the second request asks to move the deadline earlier
    assert plain.exit_code == 0 and shorter.exit_code == 0, shorter.output
    assert [b["shorten"] for b in api.bodies] == [False, True]


def test_cli_migrate_create_prints_the_apis_warning():
    # Given an API answering the creation with a warning (a Discord community whose removals kick)
    reply = {"id": "mig_1", "plan_id": "pln_1", "deadline": "2027-02-01T00:00:00Z",
             "warning": "Club removes members by kicking them: [use] on_revoke remove_role"}
    api = ScriptedExtendApi([reply])
    with api.serving() as url:
        # When the creator runs migrate create
        result = runner.invoke(cli_app, ["--url", url, "--token", "t", "migrate", "create", "--community", "com_1",
                                         "--plan", "pln_1", "--deadline", "2027-02-01"])
    # Then the warning is printed as is (no markup eaten), after the migration's line
    assert result.exit_code == 0, result.output
    assert "warning: Club removes members by kicking them: [use] on_revoke remove_role" in result.output
