"""The member-facing HTML pages (join page, errors): small, dependency-free, escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..domain.messages import format_date

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button,.button{background:#5865f2;color:#fff;border:0;border-radius:6px;padding:.7rem 1.2rem;"
    "font-size:1rem;text-decoration:none;display:inline-block;cursor:pointer}"
    ".note{color:#555}.ok{color:#1a7f37}.err{color:#b42318}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style><body>{body}</body></html>"
    )


@dataclass(frozen=True)
class PlanAccess:
    """The member's entitlement to the page's plan, when it gives access (active or grace)."""

    state: str
    until: int | None


def join_page(
    *,
    plan_id: str,
    plan_name: str,
    discord_user_id: str | None,
    paid: bool,
    access_states: list[str],
    plan_access: PlanAccess | None = None,
    has_billing: bool = False,
    manage: bool = False,
) -> str:
    plan, plan_q = escape(plan_name), escape(plan_id)
    connect = f"/auth/discord/start?plan_id={plan_q}"
    parts = [f"<h1>{plan}</h1>"]
    if paid:
        parts.append("<p class=ok>Payment received. Your access arrives within seconds; you can close this page.</p>")
    if access_states:
        parts.append(f"<p class=note>Your access: {escape(', '.join(access_states))}</p>")
    if discord_user_id is None:
        if manage:
            parts.append(
                "<p>Connect the Discord account you subscribed with to manage your billing "
                "(card, invoices, cancellation).</p>"
            )
        else:
            parts.append("<p>Step 1: connect the Discord account that should get access, so it goes to the right person.</p>")
        parts.append(f"<p><a class=button href='{connect}'>Connect Discord</a></p>")
        return _page(plan_name, "".join(parts))
    parts.append(
        f"<p class=note>Connected Discord account: {escape(discord_user_id)} "
        f"(<a href='{connect}'>use another</a>)</p>"
    )
    if plan_access is None:
        if manage and not has_billing:
            parts.append(
                "<p>We found no subscription for this Discord account, so there is no billing to manage yet. "
                f"If you subscribed with another Discord account, <a href='{connect}'>connect that one</a> instead.</p>"
            )
        parts.append(
            "<form method=post action='/checkout'>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            "<button type=submit>Continue to payment</button></form>"
        )
    elif plan_access.state == "grace":
        until = f" until {escape(format_date(plan_access.until, 'en'))}" if plan_access.until else ""
        parts.append(
            f"<p class=err>Your last payment for {plan} didn't go through. You keep your access{until}; "
            "update your card below and nothing changes.</p>"
        )
    else:
        parts.append(f"<p class=ok>You're a member: your {plan} subscription is active.</p>")
    if has_billing:
        parts.append(
            "<form method=post action='/billing/portal'>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            "<button type=submit>Manage billing (card, invoices, cancel)</button></form>"
        )
    return _page(plan_name, "".join(parts))


def message_page(title: str, message: str, *, error: bool = True) -> str:
    css = "err" if error else "ok"
    return _page(title, f"<h1>{escape(title)}</h1><p class={css}>{escape(message)}</p>")
