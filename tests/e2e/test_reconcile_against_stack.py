"""Reconciliation from outside: through `make dev`'s HTTP API, with the Discord stand-in changed by hand."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_local_stack import buy_through_the_stack

pytestmark = pytest.mark.e2e

GUILD, ROLE = "966600000000000001", "966600000000000002"
BOT = {"Authorization": "Bot local-bot-token"}


def finished_report(stack, before: int | None, timeout: float = 60) -> dict:
    """POST /admin/reconcile started a run (an asynchronous invoke): wait for a newer finished report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.post("/_local/drain")
        reply = stack.get("/admin/reconcile/latest", admin=True)
        if reply.status == 200:
            body = reply.json()
            if body["report"] and body["report"]["started_at"] != before and body["running"] is None:
                return body["report"]
        time.sleep(0.2)
    raise AssertionError(f"no reconciliation finished within {timeout:.0f} s")


def test_reconcile_through_the_stack_puts_back_a_member_removed_by_hand(stack):
    # Given a paying member in the stand-in's server
    user_id, _ = buy_through_the_stack(stack, guild=GUILD, role=ROLE, kind="subscription", username="recon-rita",
                                       price={"price_id": "price_e2e_recon", "unit_amount": 700, "currency": "eur",
                                              "interval": "month", "product_name": "Recon monthly"})
    latest = stack.get("/admin/reconcile/latest", admin=True)
    before = latest.json()["report"]["started_at"] if latest.status == 200 and latest.json()["report"] else None
    # When a moderator removes them from the server by hand, and the creator asks for a reconciliation
    removed = stack.request("DELETE", f"/_local/discord/api/v10/guilds/{GUILD}/members/{user_id}", headers=BOT)
    assert removed.status == 204, removed.text
    assert user_id not in stack.get(f"/_local/discord/guilds/{GUILD}").json()["members"]
    started = stack.post("/admin/reconcile", admin=True)
    assert started.status == 202, started.text
    report = finished_report(stack, before)
    # Then the report names them as paid without access, fixed, and they are back with the role
    mine = [i for i in report["items"] if i.get("user") == user_id]
    assert [(i["kind"], i["auto_fixed"]) for i in mine] == [("paid_without_access", True)], report
    stack.post("/_local/drain")
    assert ROLE in stack.get(f"/_local/discord/guilds/{GUILD}").json()["members"][user_id]
