"""Free -> paid migration through the local stack's HTTP API, as `make demo`'s migration chapter tells it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infra.local.demo import Story
from infra.local.demo_migration import migration_chapter
from membergate.cli import app
from tests.e2e.conftest import ADMIN_TOKEN

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
    # And the offer was posted once in the server's announcement channel (a second announce posts nothing)
    assert seen["posts"] == 1
    # And the two who paid through their personal link kept the paid role; the three others lost it
    assert seen["paid"] == 2 and seen["would_lose"] == 3
    assert (seen["kept"], seen["lost"]) == (["amelie", "emma"], ["bruno", "chloe", "david"])
    # And the French offer says "tu", names the deadline and carries the creator's words
    dm = stack.get("/_local/discord/dms").json()["dms"]
    offer = next(d["content"] for d in dm if d["user_id"] == seen["ids"]["amelie"] and "/offer/" in d["content"])
    assert "tarif fondateur" in offer and "tu " in offer and "Merci d'avoir fait vivre le Cercle" in offer
    assert any("lost it: bruno, chloe, david" in line for line in lines)


def test_cli_migrate_create_import_announce_status_extend(stack, tmp_path):
    # Given a free Telegram group registered with a founder plan, and a CSV of two members and one typo
    def cli(*args: str):
        return CliRunner().invoke(app, ["--url", stack.base_url, "--token", ADMIN_TOKEN, *args])

    stack.post("/_local/telegram/_control/chats", json_body={"id": -1002000000991, "title": "Cercle CLI"})
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "telegram", "name": "Cercle CLI", "chat_id": "-1002000000991"}).json()
    stack.post("/_local/stripe/_control/prices", json_body={"price_id": "price_cli_founder", "unit_amount": 300,
                                                            "currency": "eur", "interval": "month"})
    plan = stack.post("/admin/plans", admin=True, json_body={
        "name": "Founder CLI", "stripe_price_ids": ["price_cli_founder"], "grants": [{"community_id": community["id"]}]}).json()
    members = tmp_path / "members.csv"
    members.write_text("platform_id,name\n7300000001,Ana\n7300000002,=1+1\nnot-a-number,Typo\n")
    # When the creator runs the migrate commands
    created = cli("--json", "migrate", "create", "--community", community["id"], "--plan", plan["id"],
                  "--deadline", "2099-01-01")
    migration_id = json.loads(created.output)["id"]
    imported = cli("migrate", "import", migration_id, str(members), "--batch", "2")  # two requests
    announced = cli("--json", "migrate", "announce", migration_id, "--page", "1")  # two pages of one, summed
    again = cli("--json", "migrate", "announce", migration_id)
    stack.post("/_local/drain")
    posts = [m for m in stack.get("/_local/telegram/messages").json()["messages"]
             if m["chat"]["id"] == -1002000000991 and "/join/" in m["text"]]
    status = cli("--json", "migrate", "status", migration_id, "--page", "1")  # two pages of one, summed
    table = cli("migrate", "status", migration_id)
    extended = cli("--json", "migrate", "extend", migration_id, "--deadline", "2099-02-01", "--reason", "more time")
    past = cli("migrate", "extend", migration_id, "--deadline", "2000-01-01", "--reason", "typo")
    # Then each answers what the API did, and a past deadline is refused with the API's words
    assert created.exit_code == 0, created.output
    assert imported.exit_code == 0 and "imported 2" in imported.output and "line 4:" in imported.output, imported.output
    assert json.loads(announced.output)["queued"] == 2 and json.loads(announced.output)["posted"] is True
    # And the offer was posted once in the group; members the bot may not write to count as reached by the post
    assert len(posts) == 1 and json.loads(again.output)["posted"] is True
    assert json.loads(status.output)["reached"] == {"dm": 0, "post": 2, "email": 0, "none": 0}
    assert json.loads(status.output)["imported"] == 2 and json.loads(status.output)["pending"] == 2
    assert json.loads(status.output)["next_cursor"] is None
    assert table.exit_code == 0 and "would lose access" in table.output
    assert json.loads(extended.output)["members_moved"] == 2
    assert json.loads(extended.output)["migration"]["deadline"] == "2099-02-01T00:00:00Z"
    assert past.exit_code == 1 and "deadline" in past.output


def test_extend_stopped_after_its_first_page_nobody_loses_access_at_the_old_deadline_and_the_post_gives_prices(stack):
    # Given a French Telegram group moving to a founder price of 3 € a month (the regular one 7 €), three members imported
    chat = -1002000000992
    stack.post("/_local/telegram/_control/chats", json_body={"id": chat, "title": "Cercle prix"})
    community = stack.post("/admin/communities", admin=True, json_body={
        "platform": "telegram", "name": "Cercle prix", "chat_id": str(chat), "locale": "fr"}).json()
    plans = []
    for price, amount, name in (("price_e2e_mig_founder", 300, "Fondateur"), ("price_e2e_mig_regular", 700, "Mensuel")):
        stack.post("/_local/stripe/_control/prices", json_body={"price_id": price, "unit_amount": amount,
                                                                "currency": "eur", "interval": "month"})
        plans.append(stack.post("/admin/plans", admin=True, json_body={
            "name": name, "stripe_price_ids": [price], "grants": [{"community_id": community["id"]}]}).json())
    now = stack.get("/_local/clock").json()["epoch"]
    old, new = now + 2 * 86_400, now + 10 * 86_400
    migration = stack.post("/admin/migrations", admin=True, json_body={
        "community_id": community["id"], "plan_id": plans[0]["id"], "regular_plan_id": plans[1]["id"], "deadline": old}).json()
    ids = ["7300000101", "7300000102", "7300000103"]
    imported = stack.request("POST", f"/admin/migrations/{migration['id']}/members", admin=True,
                             data="\n".join(ids).encode(), headers={"Content-Type": "text/csv"})
    assert imported.status == 200, imported.text
    # When the offer is announced, then an extension moves the deadline but stops after its first page of one member
    assert stack.post(f"/admin/migrations/{migration['id']}/announce", admin=True).status == 200
    first = stack.post(f"/admin/migrations/{migration['id']}/extend", admin=True,
                       json_body={"deadline": new, "reason": "vacances", "limit": 1}).json()
    # And the clock passes the old deadline (the sweep runs)
    assert stack.post("/_local/clock", json_body={"advance_seconds": old - now + 3_600}).status == 200
    stack.post("/_local/drain")
    # Then the group post named the founder price with its amount beside the regular one, in French
    posts = [m["text"] for m in stack.get("/_local/telegram/messages").json()["messages"] if m["chat"]["id"] == chat]
    assert any("Fondateur (3,00 € / mois au lieu de 7,00 € / mois)" in text for text in posts), posts
    # And the first page moved one member; every member still has access, until the new deadline
    assert first["members_moved"] == 1 and first["next_cursor"] is not None
    for external_id in ids:
        found = stack.get(f"/admin/members?telegram_user_id={external_id}", admin=True).json()["members"][0]
        assert [(e["state"], e["until"]) for e in found["entitlements"]] == [("active", _iso(new))], found
    # When the rest of the extension runs, nothing is left to write: the sweep already moved them
    rest = stack.post(f"/admin/migrations/{migration['id']}/extend", admin=True,
                      json_body={"deadline": new, "reason": "vacances", "cursor": first["next_cursor"]}).json()
    assert (rest["members_moved"], rest["already_moved"], rest["next_cursor"]) == (0, 2, None)


def _iso(epoch: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
