"""The member-facing HTML pages (join page, errors): small, dependency-free, escaped."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape

from ..domain.messages import format_date

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button,.button{background:#5865f2;color:#fff;border:0;border-radius:6px;padding:.7rem 1.2rem;"
    "font-size:1rem;text-decoration:none;display:inline-block;cursor:pointer}"
    ".note{color:#555}.ok{color:#1a7f37}.err{color:#b42318}"
)

# What the pages need and nothing more: their one inline stylesheet (by hash), same-origin links
# and forms; never framed (clickjacking on "Connect Discord" or "Manage billing"). No form-action:
# Chrome checks it on the redirect to Stripe Checkout too, which it would then block.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; script-src 'none'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",  # join links and claim tokens never leak to Stripe or Discord
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP 2
    "Cache-Control": "no-store",  # pages and answers show one member's state: no shared cache keeps them
}


def _page(title: str, body: str, locale: str = "en") -> str:
    return (
        f"<!doctype html><html lang={escape(locale)}><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style><body>{body}</body></html>"
    )


# The join page in each community's language; French speaks to the member as "tu".
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "paid": "Payment received. Your access arrives within seconds; you can close this page.",
        "your_access": "Your access: {states}",
        "manage_connect": "Connect the Discord account you subscribed with to manage your billing (card, invoices, cancellation).",
        "step1": "Step 1: connect the Discord account that should get access, so it goes to the right person.",
        "connect": "Connect Discord",
        "connected": "Connected Discord account: {user} (<a href='{connect}'>use another</a>)",
        "no_billing": "We found no subscription for this Discord account, so there is no billing to manage yet. "
        "If you subscribed with another Discord account, <a href='{connect}'>connect that one</a> instead.",
        "pay": "Continue to payment",
        "grace": "Your last payment for {plan} didn't go through. You keep your access{until}; "
        "update your card below and nothing changes.",
        "until": " until {date}",
        "active": "You're a member: your {plan} subscription is active.",
        "manage": "Manage billing (card, invoices, cancel)",
        "switched": "Your plan is changing to {plan}: same subscription, prorated by Stripe. "
        "Your access follows within seconds.",
        "switch_from": "You're on {current}. Switching to {plan} keeps your subscription: Stripe "
        "prorates the difference, nobody is charged twice.",
        "switch": "Switch to {plan}",
    },
    "fr": {
        "paid": "Paiement reçu ! Ton accès arrive dans quelques secondes ; tu peux fermer cette page.",
        "your_access": "Ton accès : {states}",
        "manage_connect": "Connecte le compte Discord avec lequel tu t'es abonné pour gérer ta facturation "
        "(carte, factures, résiliation).",
        "step1": "Étape 1 : connecte le compte Discord qui doit recevoir l'accès, pour qu'il arrive à la bonne personne.",
        "connect": "Connecter Discord",
        "connected": "Compte Discord connecté : {user} (<a href='{connect}'>en utiliser un autre</a>)",
        "no_billing": "On n'a trouvé aucun abonnement pour ce compte Discord, donc rien à gérer pour l'instant. "
        "Si tu t'es abonné avec un autre compte Discord, <a href='{connect}'>connecte plutôt celui-là</a>.",
        "pay": "Continuer vers le paiement",
        "grace": "Ton dernier paiement pour {plan} n'est pas passé. Tu gardes ton accès{until} ; "
        "mets à jour ta carte ci-dessous et rien ne change.",
        "until": " jusqu'au {date}",
        "active": "Tu es membre : ton abonnement {plan} est actif.",
        "manage": "Gérer ma facturation (carte, factures, résiliation)",
        "switched": "Ta formule passe à {plan} : même abonnement, Stripe calcule le prorata. "
        "Ton accès suit dans quelques secondes.",
        "switch_from": "Tu as actuellement {current}. Passer à {plan} garde ton abonnement : Stripe "
        "calcule le prorata, tu ne paies jamais deux fois.",
        "switch": "Passer à {plan}",
    },
}


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
    locale: str = "en",
    switched: bool = False,
    switch_from: str | None = None,
) -> str:
    text = _TEXT.get(locale, _TEXT["en"])
    plan, plan_q = escape(plan_name), escape(plan_id)
    connect = f"/auth/discord/start?plan_id={plan_q}"
    parts = [f"<h1>{plan}</h1>"]
    if paid:
        parts.append(f"<p class=ok>{text['paid']}</p>")
    if switched:
        parts.append(f"<p class=ok>{text['switched'].format(plan=plan)}</p>")
    if access_states:
        parts.append(f"<p class=note>{text['your_access'].format(states=escape(', '.join(access_states)))}</p>")
    if discord_user_id is None:
        parts.append(f"<p>{text['manage_connect'] if manage else text['step1']}</p>")
        parts.append(f"<p><a class=button href='{connect}'>{text['connect']}</a></p>")
        return _page(plan_name, "".join(parts), locale)
    user = escape(discord_user_id)
    parts.append(f"<p class=note data-discord-user='{user}'>{text['connected'].format(user=user, connect=connect)}</p>")
    if plan_access is None:
        if manage and not has_billing:
            parts.append(f"<p>{text['no_billing'].format(connect=connect)}</p>")
        label = text["pay"]
        if switch_from:
            parts.append(f"<p>{text['switch_from'].format(current=escape(switch_from), plan=plan)}</p>")
            label = text["switch"].format(plan=plan)
        parts.append(
            "<form method=post action='/checkout'>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            f"<button type=submit>{label}</button></form>"
        )
    elif plan_access.state == "grace":
        until = text["until"].format(date=escape(format_date(plan_access.until, locale))) if plan_access.until else ""
        parts.append(f"<p class=err>{text['grace'].format(plan=plan, until=until)}</p>")
    else:
        parts.append(f"<p class=ok>{text['active'].format(plan=plan)}</p>")
    if has_billing:
        parts.append(
            "<form method=post action='/billing/portal'>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            f"<button type=submit>{text['manage']}</button></form>"
        )
    return _page(plan_name, "".join(parts), locale)


def message_page(title: str, message: str, *, error: bool = True) -> str:
    css = "err" if error else "ok"
    return _page(title, f"<h1>{escape(title)}</h1><p class={css}>{escape(message)}</p>")


def pay_page(*, plan_id: str, plan_name: str, locale: str = "en") -> str:
    """The page a WhatsApp pay link opens: the member is known by phone; one button to Checkout."""
    text = _TEXT.get(locale, _TEXT["en"])
    plan, plan_q = escape(plan_name), escape(plan_id)
    return _page(
        plan_name,
        f"<h1>{plan}</h1><p class=ok>WhatsApp ✓</p>"
        "<form method=post action='/checkout'>"
        f"<input type=hidden name=plan_id value='{plan_q}'>"
        f"<button type=submit>{text['pay']}</button></form>",
        locale,
    )
