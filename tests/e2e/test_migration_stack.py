"""Free -> paid migration through the local stack's HTTP API, as `make demo`'s migration chapter tells it."""

from __future__ import annotations

import pytest

from infra.local.demo import Story
from infra.local.demo_migration import migration_chapter

pytestmark = pytest.mark.e2e


def test_free_community_moves_to_paid_founder_price_then_the_deadline_acts(stack):
    # Given the demo's story teller (a server, price and people of its own in this shared stack)
    lines: list[str] = []
    story = Story(stack, out=lines.append)
    # When the migration chapter runs: 5 free members imported, the offer announced, 2 take it, the deadline passes
    seen = migration_chapter(story, run=7)
    # Then the import was idempotent and the announcement reached 4 by DM and the one with closed DMs by email, once
    assert (seen["imported"], seen["already_members"]) == (5, 5)
    assert seen["announced"] == 5 and seen["second_announce"] == 0
    assert seen["reached"] == {"dm": 4, "post": 0, "email": 1, "none": 0}
    assert (seen["offer_dms"], seen["offer_mail"]) == (4, 1)
    # And the two who paid through their personal link kept the paid role; the three others lost it
    assert seen["paid"] == 2 and seen["would_lose"] == 3
    assert (seen["kept"], seen["lost"]) == (["amelie", "emma"], ["bruno", "chloe", "david"])
    # And the French offer says "tu", names the deadline and carries the creator's words
    dm = stack.get("/_local/discord/dms").json()["dms"]
    offer = next(d["content"] for d in dm if d["user_id"] == seen["ids"]["amelie"] and "/offer/" in d["content"])
    assert "tarif fondateur" in offer and "tu " in offer and "Merci d'avoir fait vivre le Cercle" in offer
    assert any("lost it: bruno, chloe, david" in line for line in lines)
