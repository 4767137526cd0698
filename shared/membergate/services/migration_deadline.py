"""A migration's deadline as the sweep and the dispatcher read it: a grant an extension has not reached yet follows it.

``POST /admin/migrations/{id}/extend`` writes the new deadline on the migration item first, at once,
then moves the members' migration grants in bounded pages (services/migration.py::extend): a
5,000-member community cannot be walked within one 15 s request. Until the last page is done some
grants still end at the old deadline. Rather than require the walk to finish before the old deadline
(nothing can promise that: the creator may extend an hour before it, the CLI may crash), the two
places that act on a grant's end read the migration itself when a migration grant has just lapsed:
the projection's refresh (the sweep wakes the member at the grant's end) and the dispatcher before it
removes access. A lapsed grant whose migration now ends later is moved there on the spot, exactly as
the walk would have moved it; anything else (the deadline really passed, the creator ended the
grant) is left alone. The read happens only when a member is about to lose access and holds a lapsed
migration grant, so the billing path's call budget is untouched otherwise.
"""

from __future__ import annotations

from ..domain.grants import OneTimeGrant
from ..domain.migration import grant_end, lapsed, migration_of, moved_grant
from ..ports import Stores


def catch_up(stores: Stores, grants: list[OneTimeGrant], now: int) -> list[OneTimeGrant] | None:
    """``grants`` with each lapsed migration grant moved (and saved) to its migration's later deadline;
    None when none was moved (then nothing was written)."""
    if stores.migrations is None:
        return None
    found = lapsed(grants, now)
    if not found:
        return None
    deadlines: dict[str, int | None] = {}
    moved: dict[str, OneTimeGrant] = {}
    for grant in found:
        migration_id = migration_of(grant) or ""
        if migration_id not in deadlines:
            migration = stores.migrations.get(migration_id)
            deadlines[migration_id] = migration.deadline if migration is not None else None
        deadline, end = deadlines[migration_id], grant_end(grant)
        if deadline is None or end is None or deadline <= end or deadline <= now:
            continue
        fresh = moved_grant(grant, deadline)
        stores.grants.save(fresh)
        moved[grant.grant_id] = fresh
    if not moved:
        return None
    return [moved.get(g.grant_id, g) for g in grants]
