"""Payment -> access latency on the local stack, measured from outside over HTTP.

For each sample a member (Discord already connected, Checkout Session started) pays by card on
the Stripe sandbox's page; the sandbox POSTs the signed checkout.session.completed and
subscription events to /webhooks/stripe. The clock starts when the payment is submitted and
stops when the Discord stand-in first lists the role: everything in between (intake, the
asynchronous hand-over, the processor, the access queue, the dispatcher, Discord) is measured,
nothing is drained by hand. Once with one member at a time and once with 10 paying at once.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from infra.local.client import Client
from infra.local.demo import free_port

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / ".local-stack" / "bench-latency.log"
ADMIN_TOKEN = "bench-admin-token"
GUILD, ROLE = "710000000000000001", "710000000000000002"
PRICE = "price_bench_monthly"
BUDGET_P99_S = 2.0
POLL_S = 0.25  # how often the bench asks the stand-in; the times come from the stand-in's record


@dataclass
class LatencyFigures:
    label: str
    members_at_once: int
    samples_s: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_s)
        return ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]

    @property
    def ok(self) -> bool:
        return self.p99 < BUDGET_P99_S


class _Member:
    """One browser: connects Discord, starts a Checkout Session, later submits the payment."""

    def __init__(self, base_url: str, name: str, plan_id: str):
        self.c = Client(base_url, ADMIN_TOKEN)
        to_discord = self.c.get(f"/auth/discord/start?plan_id={plan_id}")
        authorize = urlsplit(to_discord.location)
        params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
        back = self.c.post(authorize.path, form={**params, "username": name, "decision": "allow"})
        landed = self.c.follow(self.c.get(back.location))
        marker = "data-discord-user='"
        start = landed.text.index(marker) + len(marker)
        self.discord_id = landed.text[start:landed.text.index("'", start)]
        to_stripe = self.c.post("/checkout", form={"plan_id": plan_id, "waiver": "on"})
        if to_stripe.status != 303:
            raise RuntimeError(f"checkout did not start: {to_stripe.status} {to_stripe.text[:200]}")
        self.pay_url = to_stripe.location

    def pay(self) -> float:
        # Wall clock, as the Discord stand-in's record of when it gave the role (same machine).
        started = time.time()
        reply = self.c.post(self.pay_url, form={"outcome": "card"})
        if reply.status != 303:
            raise RuntimeError(f"payment failed: {reply.status} {reply.text[:200]}")
        return started


class _Stack:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        LOG.parent.mkdir(exist_ok=True)
        env = {**os.environ, "PORT": str(self.port), "ADMIN_TOKEN": ADMIN_TOKEN, "MEMBERGATE_QUIET": os.environ.get("MEMBERGATE_QUIET", "1"),
               # Every bench member checks out from 127.0.0.1: the per-IP checkout limit would refuse
               # the crowd rounds (429) before anyone pays.
               "MEMBERGATE_PARAMETER_OVERRIDES": "CheckoutRateLimit=1000"}
        for leaked in ("AWS_ENDPOINT_URL", "STRIPE_API_KEY", "DISCORD_BOT_TOKEN", "STRIPE_API_BASE", "DISCORD_API_BASE"):
            env.pop(leaked, None)
        self.process = subprocess.Popen([sys.executable, "-m", "infra.local.stack"], cwd=ROOT, env=env,
                                        stdout=LOG.open("w"), stderr=subprocess.STDOUT)
        self.admin = Client(self.base_url, ADMIN_TOKEN)
        self.admin.wait_healthy(timeout=120)

    def plan(self) -> str:
        self.admin.post("/_local/stripe/_control/prices", json_body={"price_id": PRICE, "unit_amount": 900,
                                                                      "currency": "eur", "interval": "month",
                                                                      "product_name": "Bench monthly"})
        community = self.admin.post("/admin/communities", admin=True, json_body={
            "platform": "discord", "name": "Bench", "guild_id": GUILD, "role_id": ROLE,
            "on_revoke": "remove_role", "locale": "en"}).json()
        return self.admin.post("/admin/plans", admin=True, json_body={
            "name": "Bench monthly", "stripe_price_ids": [PRICE], "grants": [{"community_id": community["id"]}],
            "grace_days": 3}).json()["id"]

    def granted_at(self) -> dict[str, float]:
        """user id -> wall-clock time the Discord stand-in gave them the role."""
        guild = self.admin.get(f"/_local/discord/guilds/{GUILD}").json()
        return {user: roles[ROLE] for user, roles in guild.get("granted_at", {}).items() if ROLE in roles}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _round(stack: _Stack, members: list[_Member], timeout: float = 30.0) -> list[float]:
    """All members pay at once; return each one's payment -> role time."""
    started: dict[str, float] = {}
    errors: list[BaseException] = []

    def pay(member: _Member) -> None:
        try:
            started[member.discord_id] = member.pay()
        except BaseException as error:  # reported below, not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=pay, args=(m,)) for m in members]
    for t in threads:
        t.start()
    seen: dict[str, float] = {}
    # Only this round's members: earlier rounds' members hold the role already. The stand-in
    # records when it gave each role, so a slow poll does not blur the figure nor load the stack.
    waiting = {m.discord_id for m in members}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        time.sleep(POLL_S)
        for user, at in stack.granted_at().items():
            if user in waiting:
                seen[user] = at
                waiting.discard(user)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    missing = [m.discord_id for m in members if m.discord_id not in seen]
    if missing and os.environ.get("BENCH_DUMP_STUCK"):
        import signal

        stack.process.send_signal(signal.SIGUSR1)
        time.sleep(1)
    if missing:
        raise RuntimeError(f"{len(missing)} member(s) never got the role within {timeout:.0f} s")
    return [seen[m.discord_id] - started[m.discord_id] for m in members]


def measure_latency(single_runs: int = 5, crowd: int = 10, crowd_rounds: int = 2) -> list[LatencyFigures]:
    stack = _Stack()
    try:
        plan_id = stack.plan()
        n = iter(range(1_000_000))
        _round(stack, [_Member(stack.base_url, f"warmup{next(n)}", plan_id)])  # first use of each path
        single = LatencyFigures("one member at a time", 1)
        for _ in range(single_runs):
            single.samples_s += _round(stack, [_Member(stack.base_url, f"solo{next(n)}", plan_id)])
        together = LatencyFigures(f"{crowd} members paying at once", crowd)
        for _ in range(crowd_rounds):
            group = [_Member(stack.base_url, f"crowd{next(n)}", plan_id) for _ in range(crowd)]
            together.samples_s += _round(stack, group)
        return [single, together]
    finally:
        stack.stop()


if __name__ == "__main__":
    for figures in measure_latency():
        print(f"{figures.label}: p50 {figures.p50:.2f} s, p99 {figures.p99:.2f} s over {len(figures.samples_s)} payments")
