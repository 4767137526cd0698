"""`membergate`: the creator's command line over the admin API of a deployed stack or of `make dev`.

A client of `/admin/*` with the admin bearer token, so it works the same against `make dev` and a
deployed stack; only `init` and doctor's Stripe checks (given a Stripe key) call Stripe and SSM
directly, through bootstrap.setup_tools. Every read command
takes the global `--json` for scripts. Imported only by the console script: nothing in the Lambda
functions imports it (typer and rich are not shipped in the layer).
"""

from __future__ import annotations

import json
import re
import time
import sys
import urllib.error
import shlex
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Membergate from your terminal: numbers, members, plans, communities, and a health check.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

# Currencies Stripe counts without minor units, and those with three decimals
# (docs.stripe.com/currencies#zero-decimal, #three-decimal).
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
REQUEST_TIMEOUT = 20.0


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units to a human amount, exact (no floats): 900 eur -> '9.00 EUR'."""
    code = currency.lower()
    digits = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}{text} {currency.upper()}"


class CliError(Exception):
    """A problem the creator can fix; the message says how."""


@dataclass
class Api:
    url: str
    token: str | None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, query=query)

    def post(self, path: str, body: Any | None = None) -> Any:
        return self._call("POST", path, body=body if body is not None else {})

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self._call("DELETE", path, query=query)

    def get_text(self, path: str) -> str:
        """A non-JSON answer (a CSV export), as text."""
        return str(self._call("GET", path, raw=True))

    def _call(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None, raw: bool = False
    ) -> Any:
        if not self.url:
            raise CliError("no stack to talk to: pass --url or set MEMBERGATE_URL (e.g. http://127.0.0.1:3000 for `make dev`)")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = self.url.rstrip("/") + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise CliError(self._explain(error.code, error.read(), path)) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                f"cannot reach {self.url} ({reason}): is `make dev` running, or is the URL your stack's "
                "AdminApiUrl output without /admin?"
            ) from None
        if raw:
            return payload.decode("utf-8")
        try:
            return json.loads(payload or b"null")
        except ValueError:
            raise CliError(f"{path} did not answer JSON: is {self.url} a Membergate stack?") from None

    def _explain(self, status: int, raw: bytes, path: str) -> str:
        message = ""
        try:
            envelope = json.loads(raw)
            message = envelope.get("error", {}).get("message", "") if isinstance(envelope, dict) else ""
        except ValueError:
            pass
        if status == 401:
            return (
                "the stack refused the admin token: pass --token or set MEMBERGATE_ADMIN_TOKEN to the value of "
                "the ADMIN_TOKEN secret (`make dev` prints it)"
            )
        return f"{path} answered HTTP {status}" + (f": {message}" if message else "")


@dataclass
class Context:
    api: Api
    as_json: bool
    problems: list[str] = field(default_factory=list)


def _ctx(ctx: typer.Context) -> Context:
    value = ctx.obj
    assert isinstance(value, Context)
    return value


@app.callback()
def main_options(
    ctx: typer.Context,
    url: str = typer.Option(None, "--url", envvar="MEMBERGATE_URL", help="the stack's base URL"),
    token: str = typer.Option(None, "--token", envvar="MEMBERGATE_ADMIN_TOKEN", help="the admin bearer token"),
    as_json: bool = typer.Option(False, "--json", help="print the API's JSON instead of tables"),
) -> None:
    ctx.obj = Context(Api((url or "").strip(), (token or "").strip() or None), as_json)


def _emit_json(data: Any) -> None:
    out.print_json(json.dumps(data))


def _run(fn: Any) -> Any:
    try:
        return fn()
    except CliError as error:
        err.print(f"[red]✘[/red] {error}")
        raise typer.Exit(1) from None


# --- reads ---------------------------------------------------------------------------------


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    """One character per value, scaled between the series' minimum and maximum ('' for no values)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[(v - low) * (len(SPARKS) - 1) // (high - low)] for v in values)


def _history(c: Context, as_of: str, days: int) -> list[dict[str, Any]]:
    """The KPIs of each of the last ``days`` days (one request per day, with progress)."""
    end = datetime.strptime(as_of[:10], "%Y-%m-%d").date()
    series = []
    with err.status("reading the daily numbers…") as status:
        for back in range(days - 1, -1, -1):
            day = (end - timedelta(days=back)).isoformat()
            status.update(f"reading the numbers of {day}…")
            series.append(_run(lambda day=day: c.api.get("/admin/kpis", {"from": day, "to": day})))
    return series


@app.command()
def kpis(
    ctx: typer.Context,
    days: int = typer.Option(14, min=0, max=90, help="days of history shown as sparklines (0: none)"),
) -> None:
    """The numbers: paying, trialing and in-grace members, members with access, MRR per currency."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/kpis"))
    if c.as_json:
        return _emit_json(data)
    series = _history(c, str(data.get("as_of") or ""), days) if days and data.get("as_of") else []
    table = Table(title=f"Membergate KPIs as of {data.get('as_of', '?')}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column(f"last {len(series)} days" if series else "")

    def trend(key: str, currency: str | None = None) -> str:
        if currency is None:
            return sparkline([int(day.get(key) or 0) for day in series])
        return sparkline([int((day.get(key) or {}).get(currency, 0)) for day in series])

    table.add_row("paying members (incl. grace)", str(data.get("active_paying_members", 0)), trend("paying_members"))
    table.add_row("trialing members", str(data.get("trialing_members", 0)), trend("trialing_members"))
    table.add_row("members in grace", str(data.get("members_in_grace", 0)), trend("grace_members"))
    table.add_row("members with access", str(data.get("members_with_access", 0)), "")
    mrr = data.get("mrr") or {}
    for currency, amount in sorted(mrr.items()):
        table.add_row(f"MRR {currency.upper()}", format_amount(int(amount), currency), trend("mrr", currency))
    if not mrr:
        table.add_row("MRR", "0", "")
    out.print(table)


@app.command()
def communities(ctx: typer.Context) -> None:
    """The communities Membergate manages."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/communities"))
    if c.as_json:
        return _emit_json(data)
    table = Table(title="Communities")
    for column in ("id", "platform", "name", "place", "role", "on revoke", "locale"):
        table.add_column(column)
    for item in data.get("communities", []):
        place = item.get("guild_id") or item.get("chat_id") or item.get("external_id") or ""
        table.add_row(item["id"], item.get("platform", ""), item.get("name", ""), str(place),
                      str(item.get("role_id") or "—"), item.get("on_revoke", ""), item.get("locale", ""))
    out.print(table)


@app.command()
def plans(ctx: typer.Context) -> None:
    """The plans on sale, with their Stripe prices and join links."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/plans"))
    if c.as_json:
        return _emit_json(data)
    table = Table(title="Plans")
    for column in ("id", "name", "Stripe prices", "grants", "grace", "disputes", "join link"):
        table.add_column(column)
    for plan in data.get("plans", []):
        grants = ", ".join(g["community_id"] + (f" ({g['role_id']})" if g.get("role_id") else "") for g in plan.get("grants", []))
        table.add_row(plan["id"], plan.get("name", ""), ", ".join(plan.get("stripe_price_ids", [])), grants,
                      f"{plan.get('grace_days', 0)} d, then {plan.get('on_grace_end', '')}",
                      plan.get("dispute_policy") or "default", plan.get("join_url", ""))
    out.print(table)


@app.command()
def members(
    ctx: typer.Context,
    customer: str = typer.Option(None, "--customer", help="a Stripe customer id (cus_...)"),
    discord: str = typer.Option(None, "--discord", help="a Discord user id"),
    member_id: str = typer.Option(None, "--member", help="a Membergate member id (mbr_...)"),
    q: str = typer.Option(None, "--q", "--search",
                          help="search: a member, customer or platform account id (exact), or the start of a name, "
                               "@handle or email (any case)"),
    state: str = typer.Option(None, "--state", help="pending, active, grace, ended, or none"),
    plan: str = typer.Option(None, "--plan", help="members of this plan (pln_...)"),
    community: str = typer.Option(None, "--community", help="members of this community (com_...)"),
    platform: str = typer.Option(None, "--platform", help="discord, telegram or whatsapp"),
    limit: int = typer.Option(50, min=1, max=100, help="members per page"),
    cursor: str = typer.Option(None, "--cursor", help="the next_cursor a previous page printed"),
) -> None:
    """List members a page at a time (filters: state, plan, community, platform), or find one by id."""
    c = _ctx(ctx)
    if customer or discord or member_id:
        query: dict[str, Any] = {"stripe_customer_id": customer, "discord_user_id": discord, "member_id": member_id}
    else:
        query = {"q": q, "state": state, "plan_id": plan, "community_id": community, "platform": platform,
                 "limit": limit, "cursor": cursor}
    data = _run(lambda: c.api.get("/admin/members", query))
    if c.as_json:
        return _emit_json(data)
    found = data.get("members", [])
    if customer or discord or member_id or q:
        if not found:
            out.print("no member matches")
        for item in found:
            _print_member(item)
        if q and data.get("next_cursor"):
            out.print(f"more: membergate members --search {shlex.quote(q)} --cursor {data['next_cursor']}")
        return
    table = Table(title="Members")
    for column in ("id", "accounts", "customer", "entitlements", "since"):
        table.add_column(column)
    for item in found:
        accounts = ", ".join(f"{i.get('platform')}={i.get('external_id')}" for i in item.get("identities") or [])
        held = ", ".join(f"{e['plan_id']}:{e['state']}" for e in item.get("entitlements", []))
        table.add_row(item["id"], accounts or "—", item.get("stripe_customer_id") or "—", held or "—",
                      item.get("created_at", ""))
    out.print(table)
    following = data.get("next_cursor")
    out.print(f"next page: membergate members --cursor {following}" if following else "end of the list")


@app.command()
def member(ctx: typer.Context, member_id: str = typer.Argument(..., help="a member id (mbr_...)")) -> None:
    """One member: identities, entitlements and access, with the reason when something failed."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/members", {"member_id": member_id}))
    if c.as_json:
        return _emit_json(data)
    found = data.get("members", [])
    if not found:
        err.print(f"[red]✘[/red] no member {member_id}")
        raise typer.Exit(1)
    _print_member(found[0])


def _print_member(item: dict[str, Any]) -> None:
    identities = item.get("identities")
    if isinstance(identities, dict):
        shown = ", ".join(f"{k}={v}" for k, v in identities.items() if v)
    else:
        shown = ", ".join(f"{i.get('platform')}={i.get('external_id')}" for i in identities or [])
    out.print(f"[bold]{item['id']}[/bold] · customer {item.get('stripe_customer_id') or '—'} · "
              f"{shown or 'no chat account bound yet'} · since {item.get('created_at', '?')}")
    table = Table(show_header=True)
    for column in ("plan", "community", "entitlement", "until", "access", "reason"):
        table.add_column(column)
    access = {a["community_id"]: a for a in item.get("access", [])}
    for ent in item.get("entitlements", []):
        acc = access.get(ent["community_id"], {})
        reason = acc.get("reason") or ent.get("reason") or ""
        table.add_row(ent["plan_id"], ent["community_id"], ent["state"], ent.get("until") or "—",
                      acc.get("state", "—"), reason)
    out.print(table)


@app.command()
def events(ctx: typer.Context, limit: int = typer.Option(20, min=1, max=200, help="how many, newest first")) -> None:
    """The Stripe event ledger: received, processed, ignored (with the reason) or failed."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/events", {"limit": limit}))
    if c.as_json:
        return _emit_json(data)
    table = Table(title="Stripe events")
    for column in ("received", "type", "status", "customer", "detail"):
        table.add_column(column)
    for event in data.get("events", []):
        table.add_row(event.get("received_at", ""), event.get("type", ""), event.get("status", ""),
                      event.get("customer_id") or "—", event.get("detail") or "")
    out.print(table)


# --- actions -------------------------------------------------------------------------------


@app.command()
def resync(ctx: typer.Context, member_id: str) -> None:
    """After fixing what an access failure named (bot permission, role order): re-apply a member's access."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.post(f"/admin/members/{urllib.parse.quote(member_id, safe='')}/resync"))
    if c.as_json:
        return _emit_json(data)
    out.print(f"queued: {member_id} in {', '.join(data.get('communities', [])) or 'no community'}")


@app.command("claim-link")
def claim_link(ctx: typer.Context, member_id: str) -> None:
    """A link for a member who subscribed outside Membergate, to bind their chat account."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.post(f"/admin/members/{urllib.parse.quote(member_id, safe='')}/claim-link"))
    if c.as_json:
        return _emit_json(data)
    out.print(f"{data['claim_url']}  (valid until {data['expires_at']})")


# --- free -> paid migration ------------------------------------------------------------------

migrate_app = typer.Typer(help="Move a free community to paid: create, import its members, announce, follow, extend.",
                          no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")


def parse_deadline(value: str) -> int:
    """Epoch seconds, or an ISO date / date-time (UTC unless it says otherwise): '2026-12-31', '2026-12-31T18:00'."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter("give a date such as 2026-12-31, 2026-12-31T18:00, or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def _in_dates(error: CliError, typed: str) -> CliError:
    """The API counts a deadline in epoch seconds; the creator typed a date, so say it in dates."""
    if "deadline is not in the future" not in str(error):
        return error
    return CliError(
        f"--deadline {typed} is not in the future: give a later date such as YYYY-MM-DD (members keep access "
        "until then). A stack started with `make dev SEED=1` runs its business clock ahead of yours: "
        "GET /_local/clock on it shows its date"
    )


def _post_csv(api: Api, path: str, data: bytes) -> Any:
    """POST a CSV file (the import route reads text/csv, not JSON)."""
    if not api.url:
        raise CliError("no stack to talk to: pass --url or set MEMBERGATE_URL (e.g. http://127.0.0.1:3000 for `make dev`)")
    headers = {"Accept": "application/json", "Content-Type": "text/csv; charset=utf-8"}
    if api.token:
        headers["Authorization"] = f"Bearer {api.token}"
    request = urllib.request.Request(api.url.rstrip("/") + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT * 6) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise CliError(api._explain(error.code, error.read(), path)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise CliError(f"cannot reach {api.url} ({getattr(error, 'reason', error)})") from None


# Each row is several writes: a request of this many rows ends well within the admin function's timeout.
IMPORT_BATCH = 50


def _import_in_batches(api: Api, path: str, text: str, batch: int) -> dict[str, Any]:
    """Send the file ``batch`` rows at a time (the header repeated), adding up the answers; line numbers
    are given back as they are in the whole file."""
    lines = text.lstrip("\ufeff").splitlines()
    from .domain.migration import header_columns

    header = lines[0] if lines and header_columns(lines[0]) is not None else None
    data = lines[1:] if header is not None else lines
    first_line = 2 if header is not None else 1  # the file's line number of data[0]
    total: dict[str, Any] = {"imported": 0, "already_members": 0, "invalid": []}
    for start in range(0, max(len(data), 1), batch):
        chunk = data[start:start + batch]
        body = "\n".join(([header] if header is not None else []) + chunk) + "\n"
        answer = _post_csv(api, path, body.encode("utf-8"))
        total["imported"] += answer["imported"]
        total["already_members"] += answer["already_members"]
        shift = start + first_line - (2 if header is not None else 1)
        total["invalid"] += [{**i, "line": i["line"] + shift} for i in answer["invalid"]]
    return total


def _migration_path(migration_id: str, tail: str = "") -> str:
    return f"/admin/migrations/{urllib.parse.quote(migration_id, safe='')}{tail}"


@migrate_app.command("create")
def migrate_create(
    ctx: typer.Context,
    community: str = typer.Option(..., "--community", help="the community moving to paid (com_...)"),
    plan: str = typer.Option(..., "--plan", help="the paid offer, e.g. the founder price (pln_...)"),
    deadline: str = typer.Option(..., "--deadline", help="until when imported members keep access: 2026-12-31 or epoch seconds"),
    message: str = typer.Option("", "--message", help="your own words, added to the announcement"),
    regular_plan: str | None = typer.Option(None, "--regular-plan",
                                            help="the plan whose price the founder price is compared with (pln_...)"),
) -> None:
    """Create the migration: who moves, to which offer, until when."""
    c = _ctx(ctx)
    body: dict[str, Any] = {"community_id": community, "plan_id": plan, "deadline": parse_deadline(deadline), "message": message}
    if regular_plan:
        body["regular_plan_id"] = regular_plan
    try:
        data = c.api.post("/admin/migrations", body)
    except CliError as error:
        err.print(f"[red]✘[/red] {_in_dates(error, deadline)}")
        raise typer.Exit(1) from None
    if c.as_json:
        return _emit_json(data)
    out.print(f"migration {data['id']}: offer {data['plan_id']} until {data['deadline']}")
    if data.get("warning"):
        out.print(f"warning: {data['warning']}", markup=False)
    out.print(f"next: membergate migrate import {data['id']} members.csv")


@migrate_app.command("import")
def migrate_import(
    ctx: typer.Context,
    migration_id: str = typer.Argument(..., help="mig_..."),
    file: typer.FileBinaryRead = typer.Argument(..., help="CSV: header platform_id[,email][,name], or one id per line"),
    batch: int = typer.Option(IMPORT_BATCH, "--batch", min=1, max=100, help="rows sent per request (the API takes 100 at most)"),
) -> None:
    """Import the free community's members: each keeps access until the deadline (importing twice changes nothing)."""
    c = _ctx(ctx)
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError:
        err.print("[red]✘[/red] the file is not UTF-8: save it as CSV UTF-8 and try again")
        raise typer.Exit(1) from None
    data = _run(lambda: _import_in_batches(c.api, _migration_path(migration_id, "/members"), text, batch))
    if c.as_json:
        return _emit_json(data)
    out.print(f"imported {data['imported']}, already in the migration {data['already_members']}, "
              f"invalid {len(data['invalid'])}")
    for line in data["invalid"][:20]:
        out.print(f"  line {line['line']}: {line['reason']}", markup=False)
    if len(data["invalid"]) > 20:
        out.print(f"  … and {len(data['invalid']) - 20} more (--json lists them all)")


@migrate_app.command("announce")
def migrate_announce(
    ctx: typer.Context,
    migration_id: str = typer.Argument(..., help="mig_..."),
    page: int = typer.Option(100, "--page", min=1, max=200, help="members handled per request"),
) -> None:
    """Send the offer to every imported member not reached yet (DM where possible, else email)."""
    c = _ctx(ctx)
    # One page per request (the admin function has 15 s); counts are summed, the post is the first page's.
    data: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        body = {"cursor": cursor, "limit": page}
        reply = _run(lambda: c.api.post(_migration_path(migration_id, "/announce"), body))
        if not data:
            data = dict(reply)
        else:
            for key in ("queued", "already_reached", "in_flight"):
                data[key] += reply[key]
        cursor = data["next_cursor"] = reply.get("next_cursor")
        if cursor is None:
            break
        if not c.as_json:
            err.print(f"… {data['queued'] + data['already_reached'] + data['in_flight']} members handled so far")
    if c.as_json:
        return _emit_json(data)
    out.print(f"on its way to {data['queued']}; already reached {data['already_reached']}; "
              f"still being delivered {data['in_flight']}")


@migrate_app.command("status")
def migrate_status(
    ctx: typer.Context,
    migration_id: str = typer.Argument(..., help="mig_..."),
    page: int = typer.Option(50, "--page", min=1, max=100, help="members counted per request"),
) -> None:
    """Who took the offer, who was reached and how, and who would lose access at the deadline."""
    c = _ctx(ctx)
    # One page per request (the admin function has 15 s): the pages' counts are added up.
    data: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        query = {"limit": page, "cursor": cursor}
        reply = _run(lambda: c.api.get(_migration_path(migration_id), query))
        if not data:
            data = dict(reply)
            data["reached"] = dict(reply["reached"])
        else:
            for key in ("imported", "paid", "pending", "would_lose_access_at_deadline"):
                data[key] += reply[key]
            for key, count in reply["reached"].items():
                data["reached"][key] = data["reached"].get(key, 0) + count
        cursor = data["next_cursor"] = reply.get("next_cursor")
        if cursor is None:
            break
        if not c.as_json:
            err.print(f"… {data['imported']} members counted so far")
    if c.as_json:
        return _emit_json(data)
    table = Table(title=f"Migration {migration_id} (deadline {data['deadline']})")
    for column in ("imported", "paid", "pending", "reached (dm/post/email/none)", "would lose access"):
        table.add_column(column, justify="right")
    reached = data["reached"]
    table.add_row(str(data["imported"]), str(data["paid"]), str(data["pending"]),
                  f"{reached['dm']}/{reached['post']}/{reached['email']}/{reached['none']}",
                  str(data["would_lose_access_at_deadline"]))
    out.print(table)


@migrate_app.command("extend")
def migrate_extend(
    ctx: typer.Context,
    migration_id: str = typer.Argument(..., help="mig_..."),
    deadline: str = typer.Option(..., "--deadline", help="the new deadline: 2027-01-15 or epoch seconds"),
    reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)"),
    page: int = typer.Option(50, "--page", min=1, max=200, help="members moved per request"),
    cursor: str | None = typer.Option(None, "--cursor", help="resume an interrupted extension from this page"),
    shorten: bool = typer.Option(False, "--shorten", help="move the deadline earlier on purpose (refused otherwise)"),
) -> None:
    """Move the deadline, and every pending member's access with it (audited)."""
    c = _ctx(ctx)
    # The first request moves the deadline; the pages then move the members' grants, one request
    # each (the admin function has 15 s). Every page is idempotent: one that could not be reached is
    # sent once more, and an interruption says how to resume (running the command again also works).
    data: dict[str, Any] = {}
    epoch = parse_deadline(deadline)
    path = _migration_path(migration_id, "/extend")
    while True:
        body = {"deadline": epoch, "reason": reason, "cursor": cursor, "limit": page, "shorten": shorten}
        try:
            try:
                reply = c.api.post(path, body)
            except CliError as error:
                if not str(error).startswith("cannot reach"):
                    raise
                reply = c.api.post(path, body)  # a timeout: the page may have been done; doing it again is safe
        except CliError as error:
            err.print(f"[red]✘[/red] {_in_dates(error, deadline)}")
            if cursor is not None:
                err.print(f"the deadline already moved; resume with: membergate migrate extend {migration_id} "
                          f"--deadline {epoch} --reason '…' --cursor {cursor}", markup=False)
            raise typer.Exit(1) from None
        if not data:
            data = dict(reply)
        else:
            for key in ("members_moved", "already_moved"):
                data[key] += reply[key]
        cursor = data["next_cursor"] = reply.get("next_cursor")
        if cursor is None:
            break
        if not c.as_json:
            err.print(f"… {data['members_moved'] + data['already_moved']} pending members moved so far "
                      f"(deadline already {data['migration']['deadline']})")
    if c.as_json:
        return _emit_json(data)
    out.print(f"deadline now {data['migration']['deadline']}; {data['members_moved']} pending member(s) moved"
              + (f", {data['already_moved']} already there" if data["already_moved"] else ""))
MAX_GRANT_DAYS = 36_500  # the admin API's limit (a hundred years)
MAX_REASON = 500


def _reason(text: str) -> str:
    """The audit log keeps the reason: say why, on one line, within the API's limit."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise CliError("say why with --reason (it is kept in the audit log), e.g. --reason 'moderator'")
    if len(cleaned) > MAX_REASON:
        raise CliError(f"--reason is {len(cleaned)} characters: keep it to {MAX_REASON}")
    return cleaned


_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the admin API's ID_PATTERN


def _id(value: str, what: str, example: str) -> str:
    """An id as the API takes it, checked here so a typo (or a pasted line break) gets a clear answer."""
    cleaned = value.strip()
    if not _ID.fullmatch(cleaned):
        shown = cleaned.encode("unicode_escape").decode("ascii")[:80]
        raise CliError(f"{shown!r} is not a {what} id: ids are letters, digits, '_' and '-' (e.g. {example})")
    return cleaned


def _action_error(error: CliError, what: str) -> CliError:
    """The API's answer, with the next step for the usual mistakes."""
    text = str(error)
    if "HTTP 404" in text:
        return CliError(f"{text}. Check the id: {what}")
    return error


@app.command()
def grant(
    ctx: typer.Context,
    member_id: str = typer.Argument(..., help="the member (mbr_...; `membergate members --q <any id>` finds it)"),
    plan: str = typer.Option(..., "--plan", help="the plan whose access is given (pln_...; `membergate plans`)"),
    days: int = typer.Option(None, "--days", min=1, max=MAX_GRANT_DAYS, help="for this many days (default: no end)"),
    reason: str = typer.Option(..., "--reason", help="why, kept in the audit log (e.g. 'moderator')"),
) -> None:
    """Give a member a plan's access by hand (a moderator, a guest, compensation), audited."""
    c = _ctx(ctx)

    def give() -> Any:
        who = _id(member_id, "member", "mbr_0123456789abcdef0123")
        body = {"plan_id": _id(plan, "plan", "pln_0123456789abcdef0123"), "days": days, "reason": _reason(reason)}
        try:
            return c.api.post(f"/admin/members/{who}/grants", body)
        except CliError as error:
            raise _action_error(error, "`membergate members --q <id>` for the member, `membergate plans` for the "
                                       "plan") from None

    data = _run(give)
    if c.as_json:
        return _emit_json(data)
    until = data.get("until") or "no end"
    out.print(f"[green]✔[/green] grant {data['id']}: {data['member_id']} has {data['plan_id']} until {until}; "
              f"access follows within seconds. To end it: membergate revoke {data['id']} --reason '…'",
              soft_wrap=True)


@app.command()
def revoke(
    ctx: typer.Context,
    grant_id: str = typer.Argument(..., help="the grant to end (the id `membergate grant` printed)"),
    reason: str = typer.Option(..., "--reason", help="why, kept in the audit log"),
) -> None:
    """End a manual grant now, audited. Access a subscription or purchase still gives stays."""
    c = _ctx(ctx)

    def end() -> Any:
        which, why = _id(grant_id, "grant", "mgr_0123456789abcdef"), _reason(reason)
        try:
            return c.api.delete(f"/admin/grants/{which}", {"reason": why})
        except CliError as error:
            raise _action_error(error, "use the id `membergate grant` printed, or the member's timeline "
                                       "(GET /admin/members/{id}/timeline)") from None

    data = _run(end)
    if c.as_json:
        return _emit_json(data)
    out.print(f"[green]✔[/green] grant {data['id']} of {data['member_id']} ended ({data.get('ended_reason') or 'revoked'}); "
              "what the member still pays for keeps its access", soft_wrap=True)


@app.command()
def switch(
    ctx: typer.Context,
    member_id: str = typer.Argument(..., help="the member (mbr_...; `membergate members --q <any id>` finds it)"),
    plan: str = typer.Argument(..., help="the tier to move to: a plan of the same community (pln_...; `membergate plans`)"),
    reason: str = typer.Option(..., "--reason", help="why, kept in the audit log (e.g. 'asked by email')"),
    price: str = typer.Option(None, "--price", help="one of the plan's prices (default: its first)"),
) -> None:
    """Move a member's live subscription to another tier of its offer: same subscription, prorated, audited."""
    c = _ctx(ctx)

    def move() -> Any:
        who = _id(member_id, "member", "mbr_0123456789abcdef0123")
        body: dict[str, Any] = {"plan_id": _id(plan, "plan", "pln_0123456789abcdef0123"), "reason": _reason(reason)}
        if price:
            body["price_id"] = _id(price, "price", "price_0123456789")
        try:
            return c.api.post(f"/admin/members/{who}/switch", body)
        except CliError as error:
            raise _action_error(error, "`membergate members --q <id>` for the member, `membergate plans` for the "
                                       "tiers") from None

    data = _run(move)
    if c.as_json:
        return _emit_json(data)
    if data.get("effective") == "period_end":
        out.print(f"[green]✔[/green] subscription {data['subscription_id']} moves from {data['from_plan_id']} to "
                  f"{data['plan_id']} ({data['price_id']}) at the period end, {data.get('at')}: the member keeps "
                  f"{data['from_plan_id']} until then (switching back to it cancels the change)", soft_wrap=True)
        return
    out.print(f"[green]✔[/green] subscription {data['subscription_id']} moved from {data['from_plan_id']} to "
              f"{data['plan_id']} ({data['price_id']}); Stripe prorates, access follows within seconds", soft_wrap=True)


@app.command()
def reconcile(
    ctx: typer.Context,
    wait: int = typer.Option(120, min=0, max=3600, help="seconds to wait for the run to finish (0: start only)"),
    latest: bool = typer.Option(False, "--latest", help="print the latest report without starting a run"),
) -> None:
    """Compare Stripe, Membergate and each community's members; print the drift report (fixes as allowed)."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get("/admin/reconcile/latest")) if latest else _start_and_wait(c.api, wait)
    if c.as_json:
        return _emit_json(data)
    _print_reconcile(data)


def _latest_or_none(api: Api) -> dict[str, Any] | None:
    try:
        found = api.get("/admin/reconcile/latest")
    except CliError as error:
        if "HTTP 404" in str(error):
            return None
        raise
    return found if isinstance(found, dict) else None


def _start_and_wait(api: Api, wait: int) -> dict[str, Any]:
    def started_at(data: dict[str, Any] | None) -> int | None:
        report = (data or {}).get("report") or {}
        return report.get("started_at")

    before = started_at(_run(lambda: _latest_or_none(api)))
    _run(lambda: api.post("/admin/reconcile"))
    deadline = time.monotonic() + wait
    while True:
        data = _run(lambda: _latest_or_none(api)) or {"report": None, "running": None}
        if started_at(data) != before and data.get("running") is None:
            return data
        if time.monotonic() >= deadline:
            return data
        time.sleep(1)


def _print_reconcile(data: dict[str, Any]) -> None:
    report = data.get("report")
    running = data.get("running")
    if running:
        out.print(f"a run is in progress: {running.get('pages_read', 0)} pages read so far (it resumes by itself)")
    if not report:
        out.print("no finished reconciliation yet")
        return
    counts = report.get("counts") or {}
    started = report.get("started_at")
    when = datetime.fromtimestamp(int(started), timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if started else "?"
    table = Table(title=f"Reconciliation of {when} ({report.get('auto_fixed', 0)} fixed)")
    table.add_column("drift")
    table.add_column("count", justify="right")
    for kind, count in counts.items():
        table.add_row(kind.replace("_", " "), str(count))
    out.print(table)
    for item in report.get("items") or []:
        who = item.get("member_id") or item.get("user") or item.get("subscription_id") or item.get("event_id") or "?"
        mark = "fixed" if item.get("auto_fixed") else "to do"
        out.print(f"- [{mark}] {item['kind']}: {who} {item.get('detail') or ''} → {item['fix']}", markup=False,
                  soft_wrap=True)
    for note in report.get("notes") or []:
        out.print(f"note: {note}", markup=False, soft_wrap=True)


@app.command()
def export(
    ctx: typer.Context,
    what: str = typer.Argument(..., help="members or payments"),
    output: str = typer.Option(None, "--out", help="write the CSV to this file (default: print it)"),
) -> None:
    """A CSV export: every member (with accounts and entitlements), or the payment events of the last 31 days."""
    c = _ctx(ctx)
    if what not in ("members", "payments"):
        err.print(f"[red]✘[/red] export members or payments, not {what!r}")
        raise typer.Exit(2)
    text = _run(lambda: c.api.get_text(f"/admin/exports/{what}.csv"))
    if output:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        rows = max(0, len(text.splitlines()) - 1)
        out.print(f"written: {output} ({rows} row(s))")
        return
    sys.stdout.write(text)


# --- members' data rights ------------------------------------------------------------------

ERASE_POLL_SECONDS = 2.0


@app.command("export-member")
def export_member(
    ctx: typer.Context,
    member_id: str,
    output: str = typer.Option(None, "--out", help="write the JSON to this file (default: print it)"),
) -> None:
    """Everything Membergate holds on one member, as JSON (a data-access or portability request)."""
    c = _ctx(ctx)
    data = _run(lambda: c.api.get(f"/admin/members/{urllib.parse.quote(member_id, safe='')}/export"))
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
        out.print(f"written: {output} ({len(data.get('subscriptions', []))} subscription(s), "
                  f"{len(data.get('purchases', []))} purchase(s)); what Stripe holds: {data.get('held_elsewhere', '')}")
        return
    _emit_json(data)


@app.command("erase-member")
def erase_member(
    ctx: typer.Context,
    member_id: str,
    reason: str = typer.Option(..., "--reason", help="why, kept as the erasure's record (e.g. 'request by email')"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    wait: int = typer.Option(120, min=0, max=3600, help="seconds to wait for the member's access to be removed"),
) -> None:
    """Erase a member (right to erasure): access removed first, then accounts, tokens and messages.

    Payments stay in Stripe and, pseudonymous, in the numbers. Cancel a live subscription first."""
    c = _ctx(ctx)
    path = f"/admin/members/{urllib.parse.quote(member_id, safe='')}/erase"
    if not yes and not typer.confirm(
        f"Erase {member_id}? They lose their access now; their chat accounts, sessions and messages are deleted "
        "for good.", default=False, err=True
    ):
        err.print("nothing done")
        raise typer.Exit(1)
    data = _run(lambda: c.api.post(path, {"reason": reason}))
    deadline = time.monotonic() + wait
    with err.status("removing the member's access…") as status:
        while data.get("state") != "erased" and time.monotonic() < deadline:
            waiting = ", ".join(f"{w['community_id']} ({w['state']})" for w in data.get("waiting_for", []))
            status.update(f"removing the member's access: waiting for {waiting or 'the dispatcher'}…")
            time.sleep(ERASE_POLL_SECONDS)
            data = _run(lambda: c.api.post(path, {"reason": reason}))
    if c.as_json:
        _emit_json(data)
    elif data.get("state") == "erased":
        removed = ", ".join(f"{n} {what}" for what, n in sorted((data.get("removed") or {}).items()) if n)
        out.print(f"[green]✔[/green] {member_id} erased at {data.get('erased_at')} (removed: {removed or 'nothing left'})")
    if data.get("state") != "erased":
        waiting = ", ".join(f"{w['community_id']} ({w['state']})" for w in data.get("waiting_for", []))
        err.print(f"[red]✘[/red] {member_id} still has access in {waiting}: fix what `membergate member {member_id}` "
                  "shows, then run this again")
        raise typer.Exit(1)


# --- doctor --------------------------------------------------------------------------------

STUCK_AFTER_SECONDS = 3600


@app.command()
def doctor(
    ctx: typer.Context,
    stripe_key: str = typer.Option(None, "--stripe-key", envvar="STRIPE_API_KEY",
                                   help="also check the Stripe account (webhook endpoint, portal) with this key"),
    stripe_api_base: str = typer.Option("https://api.stripe.com", "--stripe-api-base", envvar="STRIPE_API_BASE",
                                        help="Stripe's API base (make dev: <url>/_local/stripe)"),
    stripe_mode: str = typer.Option(None, "--stripe-mode", help="the stack's StripeMode (default: samconfig.toml's, "
                                    "else test)"),
) -> None:
    """Check a stack end to end as far as its admin API shows it; print each problem with its fix.

    Exit status 1 when something is wrong. Checks: the stack answers, the token is accepted, there
    is a community and a plan, every plan grants an existing community, no Stripe event failed and
    none has waited over an hour to be processed; and the stack's own GET /admin/health: every
    secret set, each community's bot able to act (Discord role order), schedules enabled, the
    dead-letter queue empty. With a Stripe key: the key's mode, the webhook endpoint (enabled,
    exactly the handled events, the pinned API version) and the portal configuration."""
    c = _ctx(ctx)
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, fix: str = "") -> bool:
        checks.append((name, ok, fix))
        return ok

    try:
        c.api.get("/admin/openapi.json")
        reachable = check("the stack answers", True)
    except CliError as error:
        reachable = check("the stack answers", False, str(error))
    if reachable:
        try:
            found = c.api.get("/admin/communities").get("communities", [])
            authed = check("the admin token is accepted", True)
        except CliError as error:
            authed = check("the admin token is accepted", False, str(error))
            found = []
        if authed:
            _doctor_catalog(c.api, found, check)
            _doctor_events(c.api, check)
            _doctor_health(c.api, check)
    if stripe_key:
        _doctor_stripe(stripe_key, stripe_api_base, c.api.url, stripe_mode, check)
    problems = [x for x in checks if not x[1]]
    if c.as_json:
        _emit_json({"ok": not problems, "checks": [{"check": n, "ok": ok, "fix": fix or None} for n, ok, fix in checks]})
    else:
        for name, ok, fix in checks:
            out.print(f"[green]✔[/green] {name}" if ok else f"[red]✘[/red] {name}\n    → {fix}")
        out.print("[green]all checks passed[/green]" if not problems else f"[red]{len(problems)} problem(s)[/red]")
    if problems:
        raise typer.Exit(1)


def _doctor_catalog(api: Api, found: list[dict[str, Any]], check: Any) -> None:
    check("at least one community is registered", bool(found),
          "register your server/group: POST /admin/communities (README, Configuring)")
    plans = api.get("/admin/plans").get("plans", [])
    check("at least one plan is on sale", bool(plans), "create a plan: POST /admin/plans with your Stripe price ids")
    known = {item["id"] for item in found}
    for plan in plans:
        missing = [g["community_id"] for g in plan.get("grants", []) if g["community_id"] not in known]
        check(f"plan {plan['id']} grants existing communities", not missing,
              f"plan {plan['id']} grants unknown communities {', '.join(missing)}: fix its grants")


def _doctor_events(api: Api, check: Any) -> None:
    entries = api.get("/admin/events", {"limit": 200}).get("events", [])
    failed = [e for e in entries if e.get("status") == "failed"]
    check("no Stripe event failed recently", not failed,
          f"{len(failed)} event(s) failed (e.g. {failed[0]['event_id']}: {failed[0].get('detail')}); "
          "read `membergate events` and the processor's logs" if failed else "")
    now = datetime.now(timezone.utc)
    stuck = []
    for entry in entries:
        if entry.get("status") not in ("received", "access_unsent"):
            continue
        try:
            received = datetime.strptime(entry["received_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except (KeyError, ValueError):
            continue
        if (now - received).total_seconds() > STUCK_AFTER_SECONDS:
            stuck.append(entry)
    check("no Stripe event waits to be processed for over an hour", not stuck,
          f"{len(stuck)} event(s) still only received (e.g. {stuck[0]['event_id']}): the billing processor is not "
          "running or keeps failing; check its logs and the dead-letter queue (docs/deploy.md)" if stuck else "")


# --- Stripe checks of doctor, and init (these two talk to Stripe and AWS directly) ----------------------


def _samconfig_mode(path: str = "samconfig.toml") -> str | None:
    from .domain.setup import parse_overrides

    try:
        import tomllib

        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        params = data.get("default", {}).get("deploy", {}).get("parameters", {})
        return parse_overrides(params.get("parameter_overrides", "")).get("StripeMode")
    except (OSError, ValueError, AttributeError):
        return None


def _doctor_stripe(key: str, api_base: str, stack_url: str, stack_mode: str | None, check: Any,
                   http_client: Any = None) -> None:
    """The Stripe account as the stack needs it: each problem named with its fix."""
    from . import bootstrap
    from .domain.errors import MembergateError
    from .domain.setup import PLAN_METADATA, endpoint_drift, stripe_key_mode
    from .domain.stripe_events import HANDLED_EVENT_TYPES
    from .services.setup import STRIPE_WEBHOOK_PATH

    try:
        mode = stripe_key_mode(key.strip())
    except MembergateError as error:
        check("the Stripe key is well formed", False, error.message)
        return
    wanted = stack_mode or _samconfig_mode() or "test"
    check(f"the Stripe key is a {wanted} key, as the stack's StripeMode", mode == wanted,
          f"the key is a {mode} key but the stack acts on {wanted} events: use a {wanted} key "
          f"(or deploy with StripeMode={mode})")
    stripe = bootstrap.stripe_setup(key.strip(), api_base.rstrip("/"), http_client)
    url = stack_url.rstrip("/") + STRIPE_WEBHOOK_PATH
    try:
        endpoints = [e for e in stripe.webhook_endpoints() if e.url == url]
    except MembergateError as error:
        check("Stripe answers with this key", False, error.message)
        return
    check("Stripe answers with this key", True)
    if not check(f"a Stripe webhook endpoint posts to {url}", bool(endpoints),
                 "run `membergate init` (it registers it), or add it in Dashboard → Developers → Webhooks"):
        return
    endpoint = endpoints[0]
    drift = endpoint_drift(endpoint.enabled_events, endpoint.api_version, endpoint.status,
                           HANDLED_EVENT_TYPES, stripe.api_version)
    check(f"webhook endpoint {endpoint.id} is enabled", not drift.disabled,
          "enable it in Dashboard → Developers → Webhooks, or re-run `membergate init`")
    check(f"webhook endpoint {endpoint.id} sends every handled event", not drift.missing,
          f"missing: {', '.join(drift.missing)}; re-run `membergate init` (it sets exactly the handled events)")
    check(f"webhook endpoint {endpoint.id} sends only handled events", not drift.extra,
          f"not handled (they cost invocations): {', '.join(drift.extra)}; re-run `membergate init`")
    check(f"webhook endpoint {endpoint.id} uses API version {stripe.api_version}", not drift.wrong_version,
          f"it uses {endpoint.api_version or 'the account default'}; Stripe cannot change an endpoint's version: "
          "delete it in the Dashboard and re-run `membergate init`")
    try:
        portal = stripe.portal_configuration_by_metadata(PLAN_METADATA, None)
    except MembergateError as error:
        check("a Membergate customer-portal configuration exists", False, error.message)
        return
    check("a Membergate customer-portal configuration exists", portal is not None,
          "run `membergate init` (it creates one: cancel at period end, update the card, switch prices)")


@app.command()
def init(
    ctx: typer.Context,
    stripe_key: str = typer.Option(None, "--stripe-key", envvar="STRIPE_API_KEY",
                                   help="a Stripe secret or restricted key (test mode unless --live)"),
    api_url: str = typer.Option(None, "--api-url", "--webhook-url",
                                help="the stack's HttpApiUrl output (default: --url); webhooks go to "
                                     "<api-url>/webhooks/stripe"),
    plan_name: str = typer.Option(None, "--plan-name", help="your first plan's name, e.g. Gold"),
    amount: int = typer.Option(None, "--amount", help="its price in minor units: 900 = 9.00"),
    currency: str = typer.Option(None, "--currency", help="three-letter currency code, e.g. eur"),
    interval: str = typer.Option(None, "--interval", help="day, week, month or year"),
    discord_bot_token: str = typer.Option(None, "--discord-bot-token", envvar="DISCORD_BOT_TOKEN"),
    telegram_bot_token: str = typer.Option(None, "--telegram-bot-token", envvar="TELEGRAM_BOT_TOKEN"),
    stack_name: str = typer.Option("membergate", "--stack-name"),
    region: str = typer.Option("us-east-1", "--region", envvar="AWS_REGION"),
    samconfig: str = typer.Option("samconfig.toml", "--samconfig", help="where to write the deploy settings"),
    stripe_api_base: str = typer.Option("https://api.stripe.com", "--stripe-api-base", envvar="STRIPE_API_BASE",
                                        help="Stripe's API base (make dev: <url>/_local/stripe)"),
    telegram_api_base: str = typer.Option("", "--telegram-api-base", envvar="TELEGRAM_API_BASE"),
    live: bool = typer.Option(False, "--live", help="accept a live-mode key"),
    yes: bool = typer.Option(False, "--yes", "-y", help="ask nothing: every value comes from the flags"),
) -> None:
    """Set up Stripe, the secrets and samconfig.toml for a first deploy; safe to re-run (finds what it made)."""
    c = _ctx(ctx)
    _run(lambda: _init(c, stripe_key, api_url, plan_name, amount, currency, interval, discord_bot_token,
                       telegram_bot_token, stack_name, region, samconfig, stripe_api_base, telegram_api_base,
                       live, yes))


def _ask(value: Any, flag: str, prompt: str, yes: bool, default: Any = None, hide: bool = False,
         kind: Any = str) -> Any:
    if value is not None and value != "":
        return value
    if yes or not sys.stdin.isatty():
        if default is not None:
            return default
        raise CliError(f"{flag} is needed (or run without --yes in a terminal to be asked)")
    return typer.prompt(prompt, default=default, hide_input=hide, type=kind)


def _init(c: Context, stripe_key: str | None, api_url: str | None, plan_name: str | None, amount: int | None,
          currency: str | None, interval: str | None, discord_bot_token: str | None, telegram_bot_token: str | None,
          stack_name: str, region: str, samconfig: str, stripe_api_base: str, telegram_api_base: str, live: bool,
          yes: bool, stripe_http_client: Any = None) -> None:
    from . import bootstrap
    from .domain.errors import MembergateError
    from .services.setup import STRIPE_WEBHOOK_PATH, InitRequest, check_request, run_init

    url = str(_ask(api_url or c.api.url or None, "--api-url", "Your stack's HttpApiUrl (https://…)", yes))
    url = url.strip().removesuffix(STRIPE_WEBHOOK_PATH).rstrip("/")
    request = InitRequest(
        stripe_key=str(_ask(stripe_key, "--stripe-key", "Stripe secret or restricted key", yes, hide=True)).strip(),
        api_url=url,
        plan_name=str(_ask(plan_name, "--plan-name", "First plan's name", yes)).strip(),
        amount=int(_ask(amount, "--amount", "Its price in minor units (900 = 9.00)", yes, kind=int)),
        currency=str(_ask(currency, "--currency", "Currency", yes, default="eur")).strip().lower(),
        interval=str(_ask(interval, "--interval", "Billing interval", yes, default="month")).strip().lower(),
        stack_name=stack_name, region=region, live=live,
        discord_bot_token=(discord_bot_token or "").strip() or None,
        telegram_bot_token=(telegram_bot_token or "").strip() or None,
    )
    try:
        mode = check_request(request)
        if not yes and sys.stdin.isatty():
            typer.confirm(f"Set up {request.plan_name} ({format_amount(request.amount, request.currency)} per "
                          f"{request.interval}) in Stripe {mode} mode, webhooks to {url}{STRIPE_WEBHOOK_PATH}?",
                          abort=True)
        try:
            with open(samconfig, encoding="utf-8") as handle:
                existing = handle.read()
        except FileNotFoundError:
            existing = ""
        tools = bootstrap.setup_tools(request.stripe_key, stripe_api_base.rstrip("/"), region,
                                      request.telegram_bot_token, telegram_api_base, stripe_http_client)
        report = run_init(request, tools.stripe, tools.parameters, tools.telegram, existing)
        with open(samconfig, "w", encoding="utf-8") as handle:
            handle.write(report.samconfig)
    except MembergateError as error:
        raise CliError(error.message) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read or write {samconfig} ({error}): run init where you deploy from") from None
    next_step = f"make build && sam deploy --config-file {samconfig}"
    if c.as_json:
        _emit_json({"steps": [{"step": s.name, "outcome": s.outcome, "detail": s.detail} for s in report.steps],
                    "samconfig": samconfig, "next": next_step, "ok": not report.problems})
    else:
        table = Table(title="membergate init")
        for column in ("step", "outcome", "detail"):
            table.add_column(column)
        colours = {"created": "green", "updated": "yellow", "found": "cyan", "problem": "red"}
        for step in report.steps:
            colour = colours.get(step.outcome, "white")
            table.add_row(step.name, f"[{colour}]{step.outcome}[/{colour}]", step.detail)
        out.print(table)
        out.print(f"{report.count('created')} created, {report.count('updated')} updated, "
                  f"{report.count('found')} found; next: [bold]{next_step}[/bold]")
    if report.problems:
        raise typer.Exit(1)
def _doctor_health(api: Api, check: Any) -> None:
    """The checks only the stack can make (it has the AWS access; this terminal has the admin token)."""
    try:
        report = api.get("/admin/health")
    except CliError as error:
        check("the stack reports its deployment health", False,
              f"{error}; a stack deployed before GET /admin/health existed needs this version deployed (sam deploy)")
        return
    items = report.get("checks") if isinstance(report, dict) else None
    if not isinstance(items, list):
        check("the stack reports its deployment health", False,
              "GET /admin/health answered without checks: deploy this version of Membergate (sam deploy)")
        return
    for item in items:
        if isinstance(item, dict):
            ok = item.get("ok") is True
            fix = str(item.get("fix") or "") if not ok else ""
            detail = item.get("detail")
            check(str(item.get("check") or "a deployment check"), ok,
                  f"{fix} ({detail})" if fix and detail and str(detail) not in fix else fix or "see GET /admin/health")


def main() -> None:
    app(prog_name="membergate")


if __name__ == "__main__":
    sys.exit(main())
