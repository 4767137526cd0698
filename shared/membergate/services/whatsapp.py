"""WhatsApp identity before payment: one-time codes in a wa.me link, binding the phone that sends one, the pay link reply.

The member's phone is proven by the member writing to the business number from it (Meta signs
the webhook that carries the message). The join step issues a one-time code and a wa.me link
with the code typed in; the first phone that sends the code is bound to a member; the reply
carries a single-use, expiring link that opens a browser session for that member and leads to
Checkout. A code binds once: the same text from a second phone binds nothing.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.errors import ConflictError, InvalidRequestError, NotFoundError
from ..domain import i18n
from ..domain.model import Identity, Platform
from ..domain.whatsapp import CODE_SPACE, InboundMessage, find_code, format_code, normalise_phone, wa_me_link
from ..ports import Stores, WebSession
from ..domain.funnel import BOUND
from .funnel import count_step
from .identity import bind_member_identity, fresh_session, new_token

# Long enough to open WhatsApp and press send; short enough that a leaked code is soon useless.
CODE_LIFETIME_SECONDS = 30 * 60
# The pay link in the reply: single-use, and soon stale (a new message gets a new one).
PAY_LINK_LIFETIME_SECONDS = 30 * 60
# Meta redelivers a webhook until it gets a 2xx; each message is handled once for a day.
_SEEN_SECONDS = 24 * 3600

_CODE_STATE = "wa-code:"
_PAY_STATE = "wa-pay:"
# The code's owner: the browser's member when there is one, so a plan granting Discord and
# WhatsApp places binds the phone to the member who already connected Discord.
_CODE_OWNER = "whatsapp:"


def plan_locale(stores: Stores, plan_id: str | None) -> str:
    """The language of the plan's first community (what its members read), English otherwise."""
    plan = stores.catalog.get_plan(plan_id) if plan_id else None
    for grant in plan.grants if plan else ():
        community = stores.catalog.get_community(grant.community_id)
        if community is not None:
            return community.locale
    return "en"


@dataclass(frozen=True)
class WhatsAppStart:
    code: str
    link: str  # https://wa.me/<business number>?text=<text with the code>
    expires_at: int


def start_join(
    stores: Stores, plan_id: str, business_number: str, now: int, *, session_member_id: str | None = None,
    draw: Callable[[int], int] = _secrets.randbelow,
) -> WhatsAppStart:
    """A one-time code for ``plan_id`` and the wa.me link that sends it from the member's phone."""
    plan = stores.catalog.get_plan(plan_id)
    if plan is None:
        raise NotFoundError(f"plan {plan_id} does not exist; ask the creator for the current join link")
    code = format_code(draw(CODE_SPACE))
    expires_at = now + CODE_LIFETIME_SECONDS
    stores.sessions.put_oauth_state(_CODE_STATE + code, _CODE_OWNER + (session_member_id or ""), plan.id, expires_at)
    text = i18n.text(plan_locale(stores, plan.id), "msg.whatsapp.join").format(plan=plan.name, code=code)
    return WhatsAppStart(code, wa_me_link(business_number, text), expires_at)


@dataclass(frozen=True)
class InboundOutcome:
    """What one inbound message did: ``bound`` the member it bound P to, ``reply`` the text sent back."""

    phone: str
    outcome: str  # bound | no_code | taken | duplicate
    member_id: str | None = None
    reply: str | None = None
    pay_url: str | None = None


def handle_inbound(
    stores: Stores,
    message: InboundMessage,
    *,
    base_url: str,
    now: int,
    new_member_id: Callable[[], str],
    token: Callable[[], str] = new_token,
) -> InboundOutcome:
    """Bind the sender's phone when the message holds a live code; say what to do otherwise.

    Returns the reply to send (the caller sends it: the message just opened the 24-hour window,
    so it is plain text). A redelivered message (same id) does nothing the second time."""
    phone = normalise_phone(message.phone, assume_international=True)
    if stores.sessions.hit(f"wa-msg:{message.message_id}", 0, now + _SEEN_SECONDS) > 1:
        return InboundOutcome(phone, "duplicate")
    code = find_code(message.text)
    taken = stores.sessions.take_oauth_state(_CODE_STATE + code, now) if code else None
    if taken is None or not taken[0].startswith(_CODE_OWNER):
        # No code, an expired one, or one another phone already used: nothing is bound. The
        # member's language is unknown here: the text says it in both.
        return InboundOutcome(phone, "no_code", reply=_both("msg.whatsapp.no_code"))
    owner, plan_id = taken
    locale = plan_locale(stores, plan_id)
    try:
        member = bind_member_identity(
            stores, Identity(Platform.WHATSAPP, phone), None,
            session_member_id=owner.removeprefix(_CODE_OWNER) or None, new_member_id=new_member_id, now=now,
        )
    except ConflictError:
        return InboundOutcome(phone, "taken", reply=i18n.text(locale, "msg.whatsapp.taken"))
    # The funnel's "bound" step, as a Discord or Telegram binding counts it (a code binds once).
    count_step(stores, plan_id, BOUND, now)
    pay_token = token()
    stores.sessions.put_oauth_state(_PAY_STATE + pay_token, member.id, plan_id, now + PAY_LINK_LIFETIME_SECONDS)
    plan = stores.catalog.get_plan(plan_id) if plan_id else None
    url = f"{base_url}/whatsapp/pay/{pay_token}"
    reply = i18n.text(locale, "msg.whatsapp.bound").format(plan=plan.name if plan else "—", url=url)
    return InboundOutcome(phone, "bound", member.id, reply, url)


def _both(key: str) -> str:
    return "\n\n".join(i18n.text(locale, key) for locale in i18n.SUPPORTED_LOCALES)


def open_pay_link(
    stores: Stores, pay_token: str, old_session_id: str | None, now: int, token: Callable[[], str] = new_token
) -> tuple[WebSession, str]:
    """Use a pay link (once): a fresh browser session for its member, and the plan to pay for."""
    taken = stores.sessions.take_oauth_state(_PAY_STATE + pay_token, now)
    member = stores.members.get(taken[0]) if taken and taken[0] else None
    if taken is None or member is None or not taken[1]:
        raise InvalidRequestError(
            "this payment link was already used or has expired: send the join code again from WhatsApp, or open "
            "the join page again",
            field="token",
        )
    return fresh_session(stores, member.id, old_session_id, now, token), taken[1]
