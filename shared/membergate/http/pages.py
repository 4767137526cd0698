"""The member-facing HTML pages (join, success, manage, errors): render a view model, escaped."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from ..domain.billing import PriceInfo
from ..domain.i18n import text
from ..domain.messages import format_date, price_label
from ..services.member_pages import BEFORE_PAYMENT, JoinPageView

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "button,.button{background:#5865f2;color:#fff;border:0;border-radius:6px;padding:.7rem 1.2rem;"
    "font-size:1rem;text-decoration:none;display:inline-block;cursor:pointer}"
    ".secondary{background:#fff;color:#5865f2;border:1px solid #5865f2;margin-top:.6rem}"
    ".note{color:#555}.ok{color:#1a7f37}.err{color:#b42318}.lang{text-align:right;margin:0}"
    "fieldset{border:1px solid #ddd;border-radius:6px;margin:0 0 1rem;padding:.5rem .8rem}"
    ".price{display:block;padding:.5rem 0;font-size:1.05rem}.price input{margin-right:.5rem}"
    "ul{padding-left:1.2rem}li{margin:.3rem 0}.desc{white-space:pre-line}"
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


def state_words(state: str | None, locale: str) -> str:
    """An access state as the member reads it ("actif"), never the machine word ("granted")."""
    return text(locale, f"state.{state or 'none'}")


def _lang_switch(view: JoinPageView, query: str) -> str:
    other = "fr" if view.locale == "en" else "en"
    return f"<p class=lang><a href='/join/{escape(view.plan_id)}?lang={other}{query}' hreflang={other} lang={other}>{text(view.locale, 'page.lang_switch')}</a></p>"


def join_page(view: JoinPageView) -> str:
    """The join page, which is also the success page (?paid=1) and the manage page (?manage=1)."""
    loc = view.locale
    t = lambda key: text(loc, key)  # noqa: E731
    plan, plan_q = escape(view.plan_name), escape(view.plan_id)
    discord = view.discord
    connect = escape(discord.connect_url) if discord and discord.connect_url else f"/auth/discord/start?plan_id={plan_q}"
    keep = "&manage=1" if view.manage else ""
    parts = [_lang_switch(view, keep), f"<h1>{plan}</h1>"]
    if view.manage:
        parts.append(f"<p class=note>{escape(t('page.manage_title'))}</p>")
    if view.manage and view.relinked:
        bound = next((s for s in view.identity_steps if s.bound and s.bound_as), None)
        user = f"<b class=handle>{escape(bound.bound_as)}</b>" if bound and bound.bound_as else ""
        key = {"1": "page.relinked", "partial": "page.relinked_partial"}.get(view.relinked, "page.relink_same") if user else "page.relink_same"
        parts.append(f"<p class=ok id=relinked>{t(key).format(user=user)}</p>")
    if view.paid:
        parts.append(f"<p class=ok>{t('page.paid')}</p>")
        parts.append(_next_steps(view))
    if view.redeemed:
        parts.append(f"<p class=ok>{t('page.redeemed')}</p>")
    if view.switched:
        parts.append(f"<p class=ok>{t('page.switched').format(plan=plan)}</p>")
    if view.description and not view.paid:
        parts.append(f"<h2>{t('page.included')}</h2><p class=desc>{escape(view.description)}</p>")
    if view.seats_left is not None and view.plan_access_state is None and not view.paid:
        parts.append(_seats_line(view.seats_left, loc))
    if view.trial_days and view.plan_access_state is None and not view.paid:
        if view.trial_used:
            parts.append(f"<p class=note id=trial-used>{escape(t('page.trial_used'))}</p>")
        else:
            parts.append(f"<p class=note id=trial>{escape(t('page.trial').format(days=view.trial_days))}</p>")
    if any(p.state for p in view.places):
        parts.append("<ul class=places>" + "".join(
            f"<li data-state='{escape(p.state or 'none')}'>"
            f"{escape(t('page.place_state').format(place=p.name, state=state_words(p.state, loc)))}</li>"
            for p in view.places) + "</ul>")
    elif view.places and not view.paid:
        parts.append(f"<h2>{t('page.places')}</h2><ul class=places>"
                     + "".join(f"<li>{escape(p.name)}</li>" for p in view.places) + "</ul>")
    for step in view.identity_steps:
        if step.kind not in BEFORE_PAYMENT:
            place = next((p for p in view.places if p.platform == step.platform), None)
            if place and not view.paid:
                parts.append(f"<p class=note>{escape(t('page.step_invite').format(place=place.name, platform=step.platform.title()))}</p>")
    telegram = view.telegram
    if not view.bound:
        if view.prices and not view.manage:
            # What it costs comes before who you are: the member sees the prices before connecting.
            parts.append(f"<h2>{t('page.prices')}</h2><ul class=prices>"
                         + "".join(f"<li>{_price_text(p, loc)}</li>" for p in view.prices) + "</ul>")
    if discord is not None and not discord.bound:
        parts.append(f"<p>{t('page.manage_connect') if view.manage else t('page.step_discord')}</p>")
        parts.append(f"<p><a class=button href='{connect}'>{t('page.connect')}</a></p>")
    elif discord is not None:
        user = f"<b class=handle>{escape(discord.bound_as)}</b>" if discord.bound_as else t("page.your_discord")
        # On the manage page "use another" is the relink form below (the membership moves), not a new binding.
        key = "page.connected_as" if view.manage and view.relink_proof else "page.connected"
        parts.append(f"<p class=note data-discord-user='{escape(discord.external_id or '')}'>{t(key).format(user=user, connect=connect)}</p>")
    if telegram is not None and not telegram.bound:
        # The bot (t.me deep link) binds the account and sends the pay link that brings the member back.
        start = escape(telegram.connect_url or f"/telegram/start/{view.plan_id}")
        parts.append(f"<p>{t('page.step_telegram')}</p>")
        parts.append(f"<p><a class=button href='{start}'>{t('page.connect_telegram')}</a></p>")
    elif telegram is not None:
        user = f"<b class=handle>{escape(telegram.bound_as)}</b>" if telegram.bound_as else t("page.your_telegram")
        parts.append(f"<p class=note data-telegram-user='{escape(telegram.external_id or '')}'>{t('page.connected_telegram').format(user=user)}</p>")
    whatsapp = view.whatsapp
    if whatsapp is not None and not whatsapp.bound:
        # wa.me with a one-time code typed in: sending it binds the phone; the reply brings the member back.
        start = escape(whatsapp.connect_url or f"/whatsapp/start/{view.plan_id}")
        parts.append(f"<p>{t('page.step_whatsapp')}</p>")
        parts.append(f"<p><a class=button href='{start}'>{t('page.connect_whatsapp')}</a></p>")
    elif whatsapp is not None:
        phone = escape(whatsapp.bound_as or whatsapp.external_id or "")
        parts.append(f"<p class=note data-whatsapp-phone='{escape(whatsapp.external_id or '')}'>"
                     f"{t('page.connected_whatsapp').format(phone=phone)}</p>")
    if not view.bound:
        return _page(view.plan_name, "".join(parts) + _footer(view), loc)
    if view.plan_access_state is None:
        if view.manage and not view.has_billing and discord is not None:
            parts.append(f"<p>{t('page.no_billing').format(connect=connect)}</p>")
        label = t("page.pay")
        if view.switch_from:
            parts.append(f"<p>{t('page.switch_from').format(current=escape(view.switch_from), plan=plan)}</p>")
            label = t("page.switch").format(plan=plan)
        if view.seats_left != 0:  # sold out: the line above says so, and no checkout starts
            parts.append(_checkout_form(view, label))
        parts.append(
            f"<form method=post action='/join/{plan_q}/code' class=code>"
            f"<label>{t('page.code_label')} <input name=code maxlength=32 autocomplete=off required></label> "
            f"<button type=submit>{t('page.code_redeem')}</button></form>"
        )
    elif view.plan_access_state == "grace":
        until = t("page.until").format(date=escape(format_date(view.plan_access_until, loc))) if view.plan_access_until else ""
        parts.append(f"<p class=err>{t('page.grace').format(plan=plan, until=until)}</p>")
    else:
        parts.append(f"<p class=ok>{t('page.active').format(plan=plan)}</p>")
    parts.append(_other_tiers(view))
    if view.has_billing:
        parts.append(
            "<form method=post action='/billing/portal'>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            f"<button type=submit>{t('page.manage')}</button></form>"
        )
    parts.append(_relink_forms(view))
    return _page(view.plan_name, "".join(parts) + _footer(view), loc)


def _other_tiers(view: JoinPageView) -> str:
    """The manage page's "change plan": the offer's other tiers, each a form to the same /checkout the join
    page uses (the session cookie says who; start_checkout switches the live subscription, prorated)."""
    pending = _pending_switch(view)
    if not view.manage or not view.other_tiers:
        return pending
    loc = view.locale
    items = []
    for tier in view.other_tiers:
        name, plan_q = escape(tier.name), escape(tier.plan_id)
        prices = " · ".join(_price_text(p, loc) for p in tier.prices)
        head = f"<b>{name}</b>" + (f" : {prices}" if prices and loc == "fr" else f": {prices}" if prices else "")
        if tier.sold_out:
            items.append(f"<li data-plan='{plan_q}' class=sold-out>{head}<br><span class=note>"
                         f"{escape(text(loc, 'page.sold_out'))}</span></li>")
            continue
        if tier.missing_currency:  # Stripe cannot move the subscription to another currency: no button
            why = text(loc, "page.tier_no_currency").format(plan=tier.name, currency=tier.missing_currency)
            items.append(f"<li data-plan='{plan_q}' class=no-currency><b>{name}</b><br><span class=note>"
                         f"{escape(why)}</span></li>")
            continue
        checked = tier.checked or (tier.prices[0].id if tier.prices else None)
        if len(tier.prices) > 1:
            choice = "".join(
                f"<label class=price><input type=radio name=price_id value='{escape(p.id)}'{' checked' if p.id == checked else ''}> "
                f"{_price_text(p, loc)}</label>" for p in tier.prices)
        else:
            choice = "".join(f"<input type=hidden name=price_id value='{escape(p.id)}'>" for p in tier.prices)
        items.append(
            f"<li data-plan='{plan_q}'>{head}<form method=post action='/checkout' class=switch>"
            f"<input type=hidden name=plan_id value='{plan_q}'>{choice}"
            f"<button type=submit class=secondary>{text(loc, 'page.switch').format(plan=name)}</button></form></li>"
        )
    return (pending + f"<h2>{escape(text(loc, 'page.other_tiers'))}</h2><p class=note>{escape(text(loc, 'page.other_tiers_note'))}</p>"
            f"<ul class=tiers>{''.join(items)}</ul>")


def _pending_switch(view: JoinPageView) -> str:
    """A downgrade waiting for the period end: where and when, and a button to keep the current tier (the
    same /checkout, for the tier held: start_checkout then releases the change)."""
    if not view.manage or view.pending_switch is None:
        return ""
    loc = view.locale
    target, at = view.pending_switch
    current, plan_q = escape(view.plan_name), escape(view.plan_id)
    line = text(loc, "page.pending_switch").format(plan=escape(target), date=escape(format_date(at, loc)), current=current)
    return (f"<p class=pending-switch>{line}</p><form method=post action='/checkout' class=keep>"
            f"<input type=hidden name=plan_id value='{plan_q}'>"
            f"<button type=submit class=secondary>{text(loc, 'page.keep_tier').format(current=current)}</button></form>")


def _seats_line(left: int, locale: str) -> str:
    """A founder price's places: how many are left, or that the offer is sold out."""
    if left == 0:
        return f"<p class=err id=sold-out>{escape(text(locale, 'page.sold_out'))}</p>"
    key = "page.seat_left" if left == 1 else "page.seats_left"
    return f"<p class=note id=seats-left data-seats-left='{left}'>{escape(text(locale, key).format(n=left))}</p>"


def _footer(view: JoinPageView) -> str:
    """The creator's terms and privacy policy, on every join, success and manage page."""
    links = [text(view.locale, key).format(url=escape(url)) for key, url in
             (("page.terms_link", view.terms_url), ("page.privacy_link", view.privacy_url)) if url]
    return f"<footer class=note>{' · '.join(links)}</footer>" if links else ""


def _relink_forms(view: JoinPageView) -> str:
    """The manage page's "use another account" buttons: plain form posts carrying the session's proof."""
    if not view.manage or not view.relink_proof:
        return ""
    proof, plan_q = escape(view.relink_proof), escape(view.plan_id)
    forms = []
    for step in view.identity_steps:
        if not step.bound:
            continue
        if step.platform == "discord":
            action, label = "/auth/discord/relink", text(view.locale, "page.relink")
        elif step.platform == "telegram":
            action, label = f"/telegram/relink/{plan_q}", text(view.locale, "page.relink_telegram")
        else:
            continue
        forms.append(
            f"<form method=post action='{action}' class=relink data-platform='{escape(step.platform)}'>"
            f"<input type=hidden name=plan_id value='{plan_q}'><input type=hidden name=proof value='{proof}'>"
            f"<button type=submit class=secondary>{label}</button></form>"
        )
    return "".join(forms)


def _price_text(price: PriceInfo, locale: str) -> str:
    extra = []
    if price.nickname:
        extra.append(escape(price.nickname))
    if price.trial_days:
        extra.append(escape(text(locale, "page.trial").format(days=price.trial_days)))
    note = f" <span class=note>({' · '.join(extra)})</span>" if extra else ""
    return f"<span class=amount>{escape(price_label(price, locale))}</span>{note}"


def _checkout_form(view: JoinPageView, label: str) -> str:
    loc = view.locale
    choices = ""
    if view.prices:
        options = []
        for index, price in enumerate(view.prices):
            checked = " checked" if index == 0 else ""
            options.append(
                f"<label class=price><input type=radio name=price_id value='{escape(price.id)}'{checked}> "
                f"{_price_text(price, loc)}</label>"
            )
        choices = f"<fieldset><legend>{text(loc, 'page.choose_price')}</legend>{''.join(options)}</fieldset>"
    elif view.prices_unavailable:
        choices = f"<p class=note>{text(loc, 'page.no_prices')}</p>"
    return (
        "<form method=post action='/checkout'>"
        f"<input type=hidden name=plan_id value='{escape(view.plan_id)}'>{choices}{_waiver_box(view)}"
        f"<button type=submit>{label}</button></form>" + _legal(view)
    )


def _waiver_box(view: JoinPageView) -> str:
    """Without TermsUrl Stripe Checkout shows no box to tick, so the page asks for the express consent
    (required: the checkout is refused without it)."""
    if view.terms_url:
        return ""
    return (f"<label class='note waiver'><input type=checkbox name=waiver value=on required> "
            f"{escape(text(view.locale, 'page.waiver_box'))}</label>")


def _legal(view: JoinPageView) -> str:
    """Beside the pay button: access starts at once (the 14-day withdrawal right waived), the terms, the privacy policy."""
    loc = view.locale
    parts = [escape(text(loc, "page.waiver"))]
    if view.terms_url:
        parts.append(text(loc, "page.accept_terms").format(url=escape(view.terms_url)))
    if view.privacy_url:
        parts.append(text(loc, "page.privacy_link").format(url=escape(view.privacy_url)))
    return f"<p class='note legal'>{' '.join(parts)}</p>"


def _next_steps(view: JoinPageView) -> str:
    loc = view.locale
    items = []
    discord = view.discord
    user = f"<b class=handle>{escape(discord.bound_as)}</b>" if discord and discord.bound_as else text(loc, "page.your_discord")
    for place in view.places:
        name = escape(place.name)
        if place.platform == "discord":
            items.append(text(loc, "page.next_discord").format(place=name, user=user))
        elif place.invite_url:
            items.append(text(loc, "page.next_invite_ready").format(place=name, url=escape(place.invite_url)))
        elif place.platform == "telegram":
            items.append(text(loc, "page.next_invite").format(place=name))
        elif place.platform == "whatsapp":
            items.append(text(loc, "page.next_whatsapp").format(place=name))
        else:
            items.append(text(loc, "page.next_other").format(place=name))
    manage = f"/join/{escape(view.plan_id)}?manage=1"
    return (f"<h2>{text(loc, 'page.next_title')}</h2><ul class=next>" + "".join(f"<li>{i}</li>" for i in items)
            + f"</ul><p class=note>{text(loc, 'page.fallback').format(manage=manage)}</p>")


def message_page(title: str, message: str, *, error: bool = True, locale: str = "en") -> str:
    css = "err" if error else "ok"
    return _page(title, f"<h1>{escape(title)}</h1><p class={css}>{escape(message)}</p>", locale)


def localized_page(locale: str, title_key: str, message_key: str, *, error: bool = True) -> str:
    """An error (or notice) page in the member's language, straight from the catalogue."""
    return message_page(text(locale, title_key), text(locale, message_key), error=error, locale=locale)


def survey_page(locale: str, plan_name: str, action: str, choices: tuple[str, ...]) -> str:
    """The one-question exit survey: a few choices and free text, posted back to ``action``."""
    t = lambda key: escape(text(locale, key))  # noqa: E731
    options = "".join(
        f"<label class=price><input type=radio name=choice value='{escape(c)}' required>{t('page.survey.' + c)}</label>"
        for c in choices
    )
    body = (
        f"<h1>{t('page.survey.title')}</h1>"
        f"<p class=note>{escape(text(locale, 'page.survey.intro').format(plan=plan_name))}</p>"
        f"<form method=post action='{escape(action)}'><fieldset>{options}</fieldset>"
        f"<p><label>{t('page.survey.comment')}<br><textarea name=comment maxlength=1000 rows=4 cols=40></textarea></label></p>"
        f"<button type=submit>{t('page.survey.send')}</button></form>"
    )
    return _page(text(locale, "page.survey.title"), body, locale)
