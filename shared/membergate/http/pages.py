"""The member-facing HTML pages (join page, errors): small, dependency-free, escaped."""

from __future__ import annotations

from html import escape

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


def join_page(
    *,
    plan_id: str,
    plan_name: str,
    discord_user_id: str | None,
    paid: bool,
    access_states: list[str],
) -> str:
    parts = [f"<h1>{escape(plan_name)}</h1>"]
    if paid:
        parts.append("<p class=ok>Payment received. Your access arrives within seconds; you can close this page.</p>")
    if access_states:
        parts.append(f"<p class=note>Your access: {escape(', '.join(access_states))}</p>")
    if discord_user_id is None:
        parts.append(
            "<p>Step 1: connect the Discord account that should get access, so it goes to the right person.</p>"
            f"<p><a class=button href='/auth/discord/start?plan_id={escape(plan_id)}'>Connect Discord</a></p>"
        )
    else:
        parts.append(
            f"<p class=note>Connected Discord account: {escape(discord_user_id)} "
            f"(<a href='/auth/discord/start?plan_id={escape(plan_id)}'>use another</a>)</p>"
            "<form method=post action='/checkout'>"
            f"<input type=hidden name=plan_id value='{escape(plan_id)}'>"
            "<button type=submit>Continue to payment</button></form>"
        )
    return _page(plan_name, "".join(parts))


def message_page(title: str, message: str, *, error: bool = True) -> str:
    css = "err" if error else "ok"
    return _page(title, f"<h1>{escape(title)}</h1><p class={css}>{escape(message)}</p>")
