"""Reconciliation through the real handlers under moto, with the Stripe sandbox and the spec-checked Discord fake."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import stripe

from infra.local.stripe_sandbox import WsgiStripeHttpClient

from membergate import bootstrap
from tests.integration.test_member_journey import (
    GUILD,
    PRICE,
    ROLE,
    USER,
    bind_discord,
    member_view,
    pay,
    setup_catalog,
)
from tests.support.apigw import LambdaContext
from tests.support.discord_spec import SpecCheckingDiscordTransport
from tests.support.handlers import load_handler
from tests.support.pipeline import STRIPE_BASE, Pipeline

pytestmark = pytest.mark.integration

STRANGER = "800000000000000009"
FREE_ROLE = "700000000000000099"  # a role no plan grants: the free part of the server


@pytest.fixture
def paid():
    discord = SpecCheckingDiscordTransport()
    discord.add_guild(GUILD, {ROLE, FREE_ROLE})
    discord.add_user(USER)
    with Pipeline(discord) as p:
        plan_id = setup_catalog(p)
        pay(p, bind_discord(p, plan_id), plan_id)
        assert p.discord.guilds[GUILD].members[USER] == {ROLE}
        yield p


def run_reconcile(p: Pipeline) -> dict:
    result = load_handler("reconcile").lambda_handler({"source": "aws.scheduler"}, LambdaContext())
    p.pump()
    return result


def latest(p: Pipeline) -> dict:
    reply = p.admin("GET", "/admin/reconcile/latest")
    assert reply["status"] == 200, reply
    return reply["body"]


def items(report: dict, kind: str) -> list[dict]:
    return [i for i in report["items"] if i["kind"] == kind]


def test_reconcile_member_removed_by_hand_gets_the_role_back_and_stranger_reported(paid):
    p = paid
    # Given the paying member was removed from the server by hand, and a stranger holds the paid role
    del p.discord.guilds[GUILD].members[USER]
    p.discord.guilds[GUILD].members[STRANGER] = {ROLE, FREE_ROLE}
    # When the daily run happens
    result = run_reconcile(p)
    # Then the member is back in the server with the role (through the dispatcher, with their token)
    assert result["complete"] is True
    assert p.discord.guilds[GUILD].members[USER] == {ROLE}
    # And the report says so, and reports the stranger without touching them (the default policy)
    report = latest(p)["report"]
    [missing] = items(report, "paid_without_access")
    assert missing["user"] == USER and missing["auto_fixed"] is True and missing["detail"] == "not in the place"
    [stranger] = items(report, "unknown_member")
    assert stranger["user"] == STRANGER and stranger["auto_fixed"] is False and "claim-link" in stranger["fix"]
    assert p.discord.guilds[GUILD].members[STRANGER] == {ROLE, FREE_ROLE}
    assert report["counts"]["unknown_subscription"] == 0 and report["counts"]["missed_event"] == 0


def test_reconcile_role_removed_by_hand_only_that_role_is_put_back(paid):
    p = paid
    # Given the member lost the role by hand but kept a free role
    p.discord.guilds[GUILD].members[USER] = {FREE_ROLE}
    before = len(p.discord.requests)
    # When reconciling
    run_reconcile(p)
    # Then one role PUT and nothing else changed: no re-add, no member read (the listing was used)
    calls = [(r.method, r.path) for r in p.discord.requests[before:]]
    assert calls == [("GET", f"/guilds/{GUILD}/members?limit=1000&after=0"),
                     ("PUT", f"/guilds/{GUILD}/members/{USER}/roles/{ROLE}")]
    assert p.discord.guilds[GUILD].members[USER] == {ROLE, FREE_ROLE}


def test_reconcile_nothing_to_fix_second_run_is_clean(paid):
    p = paid
    # Given a consistent state
    run_reconcile(p)
    # When running again
    run_reconcile(p)
    # Then the report is empty and complete
    body = latest(p)
    assert body["report"]["items"] == [] and body["running"] is None


def test_reconcile_run_interrupted_after_one_page_resumes_where_it_stopped(paid):
    p = paid
    # Given a server with more than one page of members (the paying member on the second page) who left
    guild = p.discord.guilds[GUILD]
    for n in range(1000):
        guild.members[str(100000000000000000 + n)] = set()
    del guild.members[USER]
    # When a run stops after the Stripe pages (new, live, events) and the first page of members
    report = bootstrap.reconcile().reconciler.run(p.clock.now(), max_pages=4)
    p.pump()
    # Then nothing is finished, the progress is visible, and the member is not judged yet
    assert not report.complete
    body = latest(p)
    assert body["report"] is None and body["running"]["pages_read"] == 4
    assert USER not in guild.members
    # When the next run comes
    run_reconcile(p)
    # Then it read only the remaining page, fixed the member once, and the report is complete
    final = latest(p)["report"]
    assert final["complete"] and final["pages_read"] == 5 and final["invocations"] == 2
    assert [i["user"] for i in items(final, "paid_without_access")] == [USER]
    assert guild.members[USER] == {ROLE}
    pages = [r.path for r in p.discord.requests if r.method == "GET" and r.path.startswith(f"/guilds/{GUILD}/members?")]
    assert pages == [f"/guilds/{GUILD}/members?limit=1000&after=0",
                     f"/guilds/{GUILD}/members?limit=1000&after=100000000000000999"]


def test_admin_reconcile_starts_a_run_and_latest_is_404_before_any(paid):
    p = paid
    # Given no run yet
    assert p.admin("GET", "/admin/reconcile/latest")["status"] == 404
    started: list[bytes] = []
    # When the creator starts one (the invoke is run here as Lambda would)
    with bootstrap.overridden(reconcile_invoke=started.append):
        reply = p.admin("POST", "/admin/reconcile")
    assert reply["status"] == 202 and reply["body"]["started"] is True
    assert [e["action"] for e in p.admin("GET", "/admin/audit")["body"]["entries"]][-1:] == ["reconcile.start"]
    [payload] = started
    load_handler("reconcile").lambda_handler(json.loads(payload), LambdaContext())
    # Then the report is there
    assert latest(p)["report"]["complete"] is True


def test_admin_reconcile_requires_the_token(paid):
    p = paid
    reply = p.call("admin_api", "POST", "/admin/reconcile", headers={"authorization": "Bearer wrong"})
    assert reply["statusCode"] == 401 and json.loads(reply["body"])["error"]["code"]


def test_admin_reconcile_while_one_runs_answers_409_and_the_schedule_skips(paid):
    p = paid
    started: list[bytes] = []
    # Given a run started by the creator and not finished yet (its invoke is held here)
    with bootstrap.overridden(reconcile_invoke=started.append):
        first = p.admin("POST", "/admin/reconcile")
        assert first["status"] == 202, first
        # When the creator starts another
        second = p.admin("POST", "/admin/reconcile")
    # Then it answers 409 reconcile_running, saying when the running one started, and starts nothing
    assert second["status"] == 409, second
    error = second["body"]["error"]
    assert error["code"] == "reconcile_running" and "started 20" in error["message"], error
    assert len(started) == 1
    # When the weekly schedule fires meanwhile, it skips
    skipped = load_handler("reconcile").lambda_handler({"source": "aws.scheduler"}, LambdaContext())
    assert skipped["skipped"] is True
    # When the started run goes (under the lease the request took), it completes and frees the lease
    result = load_handler("reconcile").lambda_handler(json.loads(started[0]), LambdaContext())
    assert result["complete"] is True
    with bootstrap.overridden(reconcile_invoke=started.append):
        assert p.admin("POST", "/admin/reconcile")["status"] == 202


def test_reconcile_lease_two_threads_at_once_one_wins_and_an_expired_lease_is_taken_over(paid):
    import threading

    from membergate.adapters.dynamodb.reconcile import DynamoReconcileStore

    store = DynamoReconcileStore()
    for round_ in range(5):
        # Given two runs starting at the same moment
        barrier = threading.Barrier(2)
        answers: dict[str, int | None] = {}

        def take(holder: str) -> None:
            barrier.wait()
            answers[holder] = store.acquire_lease(holder, 1_000 + round_, 960)

        threads = [threading.Thread(target=take, args=(f"t{round_}{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then exactly one holds the lease; the other learns when that run started
        winners = [h for h, started in answers.items() if started is None]
        assert len(winners) == 1, answers
        assert [s for s in answers.values() if s is not None] == [1_000 + round_]
        store.release_lease(winners[0])
    # Given a run that crashed holding the lease
    assert store.acquire_lease("crashed", 2_000, 960) is None
    # Then another is refused until the lease expires, then takes it over
    assert store.acquire_lease("next", 2_000 + 959, 960) == 2_000
    assert store.acquire_lease("next", 2_000 + 960, 960) is None
    # and the crashed run's late release does not free the new holder's lease
    store.release_lease("crashed")
    assert store.acquire_lease("third", 2_000 + 961, 960) == 2_000 + 960


def test_admin_reconcile_puts_back_the_plan_stripe_bills_and_reports_a_second_subscription_of_one_offer(paid):
    p = paid
    stores = bootstrap.admin().stores
    [member] = stores.members.page(10, None)[0]
    [record] = stores.subscriptions.for_member(member.id)
    monthly = record.plan_id
    com = p.admin("GET", f"/admin/plans/{monthly}")["body"]["grants"][0]["community_id"]
    p.sandbox.register_price("price_recon_year", 9000, "eur", "year")
    annual = p.admin("POST", "/admin/plans", body={
        "name": "Annual", "stripe_price_ids": ["price_recon_year"], "grants": [{"community_id": com}]})["body"]["id"]
    # Given Stripe bills the monthly price while Membergate holds the annual plan for it (a lost update)
    stores.subscriptions.save(replace(record, plan_id=annual))
    # And a second subscription of the same offer, made outside Membergate for the same customer
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": STRIPE_BASE},
                                 http_client=WsgiStripeHttpClient(p.sandbox.wsgi_app, STRIPE_BASE))
    outside = client.v1.checkout.sessions.create({
        "mode": "subscription", "customer": member.stripe_customer_id, "success_url": "https://example.test/ok",
        "line_items": [{"price": PRICE, "quantity": 1}]})
    p.sandbox.pay(outside.id, "card")
    p.pump()
    second = next(r.subscription_id for r in stores.subscriptions.for_member(member.id)
                  if r.subscription_id != record.subscription_id)
    # When the creator runs a reconciliation (the invoke run here as Lambda would)
    started: list[bytes] = []
    with bootstrap.overridden(reconcile_invoke=started.append):
        assert p.admin("POST", "/admin/reconcile")["status"] == 202
    load_handler("reconcile").lambda_handler(json.loads(started[0]), LambdaContext())
    p.pump()
    # Then the mismatch is reported and fixed: Membergate holds the monthly plan Stripe bills again
    report = latest(p)["report"]
    [mismatch] = items(report, "plan_mismatch")
    assert mismatch["subscription_id"] == record.subscription_id and mismatch["auto_fixed"] is True
    assert mismatch["detail"] == f"Stripe bills {monthly}, Membergate holds {annual}"
    assert stores.subscriptions.get(member.id, record.subscription_id).plan_id == monthly
    assert {e["plan_id"] for e in member_view(p)["entitlements"] if e["state"] == "active"} == {monthly}
    # And the second subscription is reported with both ids and what to do, never cancelled
    [duplicate] = items(report, "duplicate_subscriptions")
    assert record.subscription_id in duplicate["detail"] and second in duplicate["detail"]
    assert duplicate["auto_fixed"] is False and "never cancels" in duplicate["fix"]
    assert report["counts"]["plan_mismatch"] == 1 and report["counts"]["duplicate_subscriptions"] == 1
    assert p.sandbox.subscription(second)["status"] == "active"
    # And a second run finds nothing left to fix in the plan
    run_reconcile(p)
    assert items(latest(p)["report"], "plan_mismatch") == []
