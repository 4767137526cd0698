"""Test doubles for free -> paid migrations: an in-memory migration store, and a grant store that crashes half-way."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from membergate.domain.grants import OneTimeGrant
from membergate.domain.migration import Migration, MigrationMember, migration_grant
from membergate.domain.model import Community, Member, MemberOrigin, OnGraceEnd, OnRevoke, Plan, PlanGrant, Platform, Identity
from membergate.ports import Stores
from tests.support.billing_fakes import FakeAudit
from tests.support.fakes import FakeGrants, fake_stores


class FakeMigrations:
    """Records every save: tests read what was written and in which order."""

    def __init__(self) -> None:
        self.items: dict[str, Migration] = {}
        self.entries: dict[str, dict[str, MigrationMember]] = {}
        self.saves: list[Migration] = []

    def create(self, migration: Migration) -> None:
        self.items[migration.id] = migration

    def get(self, migration_id: str) -> Migration | None:
        return self.items.get(migration_id)

    def save(self, migration: Migration) -> None:
        self.items[migration.id] = migration
        self.saves.append(migration)

    def add_member(self, entry: MigrationMember) -> bool:
        members = self.entries.setdefault(entry.migration_id, {})
        if entry.member_id in members:
            return False
        members[entry.member_id] = entry
        return True

    def members(self, migration_id: str, after: str | None, limit: int) -> tuple[list[MigrationMember], str | None]:
        ordered = [m for k, m in sorted(self.entries.get(migration_id, {}).items()) if after is None or k > after]
        page = ordered[:limit]
        return page, (page[-1].member_id if len(ordered) > limit else None)


class Crash(Exception):
    """The Lambda stopped here (a timeout, a lost connection): nothing after it ran."""


class CrashingGrants(FakeGrants):
    """Saves ``allowed`` grants, then crashes on the next save (the request timed out half-way)."""

    def __init__(self, allowed: int | None = None) -> None:
        super().__init__()
        self.allowed = allowed
        self.saves = 0

    def save(self, grant: OneTimeGrant) -> None:
        if self.allowed is not None and self.saves >= self.allowed:
            raise Crash(f"stopped before saving {grant.grant_id}")
        self.saves += 1
        super().save(grant)


COMMUNITY = Community("com_club", Platform.DISCORD, "Le Cercle", "100000000000000001", "200000000000000001",
                      OnRevoke.REMOVE_ROLE, "fr", 0)
PLAN = Plan("pln_founder", "Fondateur", ("price_founder",), (PlanGrant(COMMUNITY.id),), 0, OnGraceEnd.CANCEL, 0)


def migration_stores(grants: FakeGrants | None = None) -> tuple[Stores, FakeMigrations]:
    """Fake stores with a community, its founder plan, a migration store and an audit log."""
    stores = replace(fake_stores(), migrations=FakeMigrations(), audit=FakeAudit())
    if grants is not None:
        stores = replace(stores, grants=grants)
    stores.catalog.add_community(COMMUNITY)  # type: ignore[attr-defined]
    stores.catalog.add_plan(PLAN)  # type: ignore[attr-defined]
    assert isinstance(stores.migrations, FakeMigrations)
    return stores, stores.migrations


def seed(stores: Stores, migration: Migration, count: int, now: int) -> list[str]:
    """``count`` imported members, each with their migration grant until the migration's deadline."""
    assert stores.migrations is not None
    stores.migrations.create(migration)
    ids = []
    for n in range(count):
        member_id = f"mbr_{n:04d}"
        stores.members.create(Member(member_id, now, identities=(Identity(Platform.DISCORD, f"1122334455667788{n:02d}"),),
                                     origin=MemberOrigin.MIGRATION))
        stores.grants.save(migration_grant(migration, member_id, now))
        stores.migrations.add_member(MigrationMember(migration.id, member_id, now))
        ids.append(member_id)
    return ids


class ScriptedExtendApi:
    """A loopback admin API for ``membergate migrate extend``: answers each POST with the next scripted
    reply (a dict; one with ``_status`` is sent with that HTTP status), or drops the connection for
    ``None`` (the request timed out); records the bodies."""

    def __init__(self, replies: list[dict[str, Any] | None]) -> None:
        self.replies = list(replies)
        self.bodies: list[dict[str, Any]] = []

    @contextmanager
    def serving(self) -> Iterator[str]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                api.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                reply = api.replies.pop(0)
                if reply is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = int(reply.pop("_status", 200))
                raw = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()


def extend_reply(moved: int, already: int, next_cursor: str | None, deadline: str = "2027-02-01T00:00:00Z") -> dict[str, Any]:
    return {"migration": {"id": "mig_1", "deadline": deadline}, "members_moved": moved, "already_moved": already,
            "next_cursor": next_cursor}
