"""Binding a member's Discord account before payment, through OAuth2 with a session-bound state."""

from __future__ import annotations

import json
import secrets as _secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..domain.errors import ConflictError, InvalidRequestError, NotFoundError, PermanentError
from ..domain.model import Identity, Member, MemberOrigin, OAuthTokens, Platform, WorkKind
from ..domain.funnel import BOUND
from ..domain.tokens import token_key
from ..ports import AccessWork, AccessWorkQueue, CommunityConnector, IdentityProvider, Stores, TokenCipher, WebSession
from .admin import Relink
from .funnel import count_step
from .relink import DISCORD_RELINK_OWNER, relink_member, relinking_member

SESSION_LIFETIME_SECONDS = 7 * 86_400
STATE_LIFETIME_SECONDS = 10 * 60
CLAIM_LIFETIME_SECONDS = 30 * 86_400


def new_token() -> str:
    return _secrets.token_urlsafe(24)


def ensure_session(stores: Stores, session_id: str | None, now: int, token: Callable[[], str] = new_token) -> WebSession:
    if session_id:
        existing = stores.sessions.get_session(session_id, now)
        if existing is not None:
            return existing
    return stores.sessions.create_session(token(), now + SESSION_LIFETIME_SECONDS)


def fresh_session(
    stores: Stores, member_id: str, old_session_id: str | None, now: int, token: Callable[[], str] = new_token
) -> WebSession:
    """A new session id for the member, the old one revoked: whoever knew the cookie before
    (planted in the browser, session fixation) is not let in by the member's login."""
    session = stores.sessions.create_session(token(), now + SESSION_LIFETIME_SECONDS)
    stores.sessions.set_session_member(session.id, member_id)
    if old_session_id:
        stores.sessions.delete_session(old_session_id)
    return WebSession(session.id, member_id, session.expires_at)


@dataclass(frozen=True)
class LinkStart:
    session: WebSession
    authorize_url: str


def begin_discord_link(
    *,
    stores: Stores,
    identity: IdentityProvider,
    session_id: str | None,
    plan_id: str | None,
    redirect_uri: str,
    now: int,
    token: Callable[[], str] = new_token,
) -> LinkStart:
    session = ensure_session(stores, session_id, now, token)
    state = token()
    # The state names its browser session by digest only: nothing stored opens a session.
    stores.sessions.put_oauth_state(state, token_key(session.id), plan_id, now + STATE_LIFETIME_SECONDS)
    return LinkStart(session, identity.authorize_url(state, redirect_uri))


def begin_discord_relink(
    *,
    stores: Stores,
    identity: IdentityProvider,
    session_id: str | None,
    proof: str | None,
    plan_id: str | None,
    redirect_uri: str,
    now: int,
    token: Callable[[], str] = new_token,
) -> LinkStart:
    """The manage page's "use another Discord account": Discord's consent screen again, with a state
    that, back in this very session, moves the membership to the account chosen there."""
    session = stores.sessions.get_session(session_id, now) if session_id else None
    relinking_member(stores, session, proof, Platform.DISCORD)
    assert session is not None
    state = token()
    stores.sessions.put_oauth_state(state, DISCORD_RELINK_OWNER + token_key(session.id), plan_id,
                                    now + STATE_LIFETIME_SECONDS)
    return LinkStart(session, identity.authorize_url(state, redirect_uri))


@dataclass(frozen=True)
class LinkResult:
    member: Member
    plan_id: str | None
    session: WebSession  # the fresh session now bound to the member: the browser's new cookie
    relink: bool = False  # the state came from the manage page's relink form
    moved: Relink | None = None  # what the relink did (None: nothing to move)


def complete_discord_link(
    *,
    stores: Stores,
    identity: IdentityProvider,
    cipher: TokenCipher,
    access_queue: AccessWorkQueue,
    session_id: str | None,
    code: str,
    state: str,
    redirect_uri: str,
    now: int,
    new_member_id: Callable[[], str],
    connectors: Mapping[Platform, CommunityConnector] | None = None,
) -> LinkResult:
    taken = stores.sessions.take_oauth_state(state, now)
    if taken is None:
        raise InvalidRequestError("this Discord link has expired or was already used; start again from the join page", field="state")
    state_session, plan_id = taken
    relink = state_session.startswith(DISCORD_RELINK_OWNER)
    state_session = state_session.removeprefix(DISCORD_RELINK_OWNER)
    # The state must come back to the browser that started the flow (login CSRF otherwise).
    if not session_id or token_key(session_id) != state_session:
        raise InvalidRequestError("this Discord link was started in another browser; start again from the join page", field="state")
    session = stores.sessions.get_session(session_id, now)
    if session is None:
        raise InvalidRequestError("your session expired; start again from the join page", field="session")
    try:
        tokens = identity.exchange_code(code, redirect_uri, now)
    except PermanentError as exc:
        if exc.reason != "discord_authorization_expired":
            raise  # the creator's Discord app is misconfigured: the message says what to fix
        raise InvalidRequestError("Discord refused this authorization (it may have been used already); start again from the join page", field="code") from None
    account = identity.account(tokens.access_token)
    sealed = seal_tokens(cipher, tokens)
    if relink:
        if session.member_id is None:
            raise InvalidRequestError("your session ended before Discord answered; open your membership page again",
                                      field="session")
        moved = relink_member(stores, access_queue, connectors or {}, session.member_id, account, now, sealed)
        relinked = stores.members.get(session.member_id)
        assert relinked is not None  # relink_member refused a member that does not exist
        return LinkResult(relinked, plan_id, fresh_session(stores, relinked.id, session.id, now), True, moved)
    member = bind_member_identity(
        stores,
        account,
        sealed,
        session_member_id=session.member_id,
        new_member_id=new_member_id,
        now=now,
    )
    bound = fresh_session(stores, member.id, session.id, now)
    count_step(stores, plan_id, BOUND, now)
    # Anything the member was already entitled to (a subscription made before binding) can
    # now be delivered.
    # A resync: a refusal remembered before (e.g. an expired authorization) may be fixed now.
    work = [AccessWork(WorkKind.RESYNC, member.id, e.community_id) for e in stores.entitlements.for_member(member.id)]
    if work:
        access_queue.send(_unique(work))
    return LinkResult(member, plan_id, bound)


def bind_member_identity(
    stores: Stores,
    identity: Identity,
    sealed_credentials: bytes | None,
    *,
    session_member_id: str | None,
    new_member_id: Callable[[], str],
    now: int,
) -> Member:
    """The member a platform account belongs to, binding it (once) when it is new.

    The account decides: a browser that acted for another member (or for one already bound to
    another account on this platform) does not pull this account into that membership. Two
    concurrent bindings of one account end on one member (the LINK item is created once)."""
    platform = identity.platform
    member = stores.members.find_by_identity(platform, identity.external_id)
    if member is None:
        current = stores.members.get(session_member_id) if session_member_id else None
        if current is not None and current.identity(platform) not in (None, identity.external_id):
            current = None  # this browser was someone else's; the account decides
        if current is None:
            current = Member(id=new_member_id(), created_at=now)
            stores.members.create(current)
        try:
            stores.members.bind_identity(current.id, identity, sealed_credentials)
        except ConflictError:
            # Bound by a concurrent callback for the same account: that member is this person.
            current = stores.members.find_by_identity(platform, identity.external_id)
            if current is None:
                raise
            if sealed_credentials is not None:
                stores.members.save_credentials(current.id, platform, sealed_credentials)
        return stores.members.get(current.id) or current
    claimed = stores.members.get(session_member_id) if session_member_id else None
    if (
        claimed is not None
        and claimed.id != member.id
        and claimed.identity(platform) is None
        and claimed.origin is MemberOrigin.STRIPE
    ):
        # Opened a claim link, then connected an account that already has its own membership:
        # binding it here would leave the paid subscription without its member.
        raise ConflictError(
            f"this {platform.value.capitalize()} account already has its own membership here; connect the account "
            "that should get this subscription's access, or ask the creator to move the subscription"
        )
    if identity.handle and member.handle(platform) != identity.handle:
        # Renamed since it was bound (or bound before handles were kept): the page shows the new name.
        stores.members.bind_identity(member.id, identity)
        member = member.with_identity(identity)
    if sealed_credentials is not None:
        stores.members.save_credentials(member.id, platform, sealed_credentials)
    return member


@dataclass(frozen=True)
class ClaimLink:
    token: str
    member_id: str
    expires_at: int


def create_claim_link(
    stores: Stores, member_id: str, now: int, token: Callable[[], str] = new_token
) -> ClaimLink:
    """A link for a member who subscribed outside Membergate (dashboard, payment link, before
    Membergate): opening it and connecting Discord binds that account to the existing membership."""
    member = stores.members.get(member_id)
    if member is None:
        raise NotFoundError(f"member {member_id} does not exist")
    if member.identity(Platform.DISCORD):
        raise ConflictError(
            f"member {member_id} is already connected to Discord user {member.identity(Platform.DISCORD)}; "
            "no claim link needed"
        )
    link = ClaimLink(token(), member_id, now + CLAIM_LIFETIME_SECONDS)
    stores.sessions.put_claim(link.token, member_id, link.expires_at)
    return link


def begin_claim(
    stores: Stores, claim_token: str, session_id: str | None, now: int, token: Callable[[], str] = new_token
) -> WebSession:
    """Open a claim link: this browser now acts for the unbound member, until Discord is connected.
    Always under a fresh session id, so a cookie planted earlier cannot ride on the claim."""
    member_id = stores.sessions.get_claim(claim_token, now)
    member = stores.members.get(member_id) if member_id else None
    if member is None:
        raise InvalidRequestError("this link has expired or is not valid; ask the creator for a new one", field="token")
    if member.identity(Platform.DISCORD):
        # Once bound, the link no longer logs anybody in: Discord is the way back in.
        raise InvalidRequestError(
            "this membership is already connected to Discord; open the join page and choose Connect Discord",
            field="token",
        )
    return fresh_session(stores, member.id, session_id, now, token)


def seal_tokens(cipher: TokenCipher, tokens: OAuthTokens) -> bytes:
    payload = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at,
        "scope": tokens.scope,
    }
    return cipher.seal(json.dumps(payload).encode())


def open_tokens(cipher: TokenCipher, sealed: bytes) -> OAuthTokens:
    payload = json.loads(cipher.open(sealed))
    return OAuthTokens(payload["access_token"], payload.get("refresh_token"), int(payload["expires_at"]), payload.get("scope", ""))


def _unique(work: list[AccessWork]) -> list[AccessWork]:
    seen: dict[tuple[str, str], AccessWork] = {}
    for item in work:
        seen.setdefault((item.member_id, item.community_id), item)
    return list(seen.values())
