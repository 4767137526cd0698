"""The member's own relink from the manage page: a session-bound form proof, then the identity step again."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from ..domain.errors import ConflictError, IdentityRequiredError, InvalidRequestError
from ..domain.model import Identity, Member, Platform
from ..domain.tokens import token_key
from ..ports import AccessWorkQueue, CommunityConnector, Stores, WebSession
from .admin import Relink, relink_identity

log = logging.getLogger(__name__)

# The OAuth state's owner for a relink (Discord) and the /start token's owner (Telegram): a state
# of one flow is never spent as another.
DISCORD_RELINK_OWNER = "relink:"
TELEGRAM_RELINK_OWNER = "tgrelink:"


def relink_proof(session_id: str) -> str:
    """The hidden field of the manage page's relink forms: only the page served to this session has
    it (a digest of the HttpOnly session id, which no other site can read), so a form posted from
    elsewhere cannot start a relink (CSRF), on top of the cookie's SameSite=Lax."""
    return token_key("relink-form:" + session_id)


def relinking_member(stores: Stores, session: WebSession | None, proof: str | None, platform: Platform) -> Member:
    """The member a relink form acts for: the session's, with an account on ``platform`` to replace."""
    member = stores.members.get(session.member_id) if session and session.member_id else None
    if session is None or member is None or member.identity(platform) is None:
        raise IdentityRequiredError(
            "your session has ended: open your membership page again from your join link, then choose "
            "\"use another account\""
        )
    if not isinstance(proof, str) or not hmac.compare_digest(proof.encode(), relink_proof(session.id).encode()):
        raise InvalidRequestError("this form has expired; reload your membership page and try again", field="proof")
    return member


def relink_member(
    stores: Stores,
    queue: AccessWorkQueue,
    connectors: Mapping[Platform, CommunityConnector],
    member_id: str,
    account: Identity,
    now: int,
    sealed_credentials: bytes | None = None,
) -> Relink | None:
    """Move the member's access to ``account`` (the creator's relink service); None when it is already theirs.

    An account that has its own membership here is refused: merging two memberships is the creator's call."""
    member = stores.members.get(member_id)
    if member is None:
        raise IdentityRequiredError("your membership was not found; open your join link again")
    owner = stores.members.find_by_identity(account.platform, account.external_id)
    if owner is not None and owner.id != member_id:
        raise ConflictError(
            f"this {account.platform.value.capitalize()} account already has its own membership here; choose "
            "another account, or ask the creator to move your membership to it"
        )
    if member.identity(account.platform) == account.external_id:
        # The same account again: keep its new name and tokens, nothing moves.
        stores.members.bind_identity(member_id, account, sealed_credentials)
        return None
    moved = relink_identity(stores, queue, connectors, member_id, account.platform.value, account.external_id, now,
                            handle=account.handle, sealed_credentials=sealed_credentials)
    if moved.failed:
        # The old account may keep access somewhere: the creator must see it (logs + the admin view's access).
        log.warning("member relink left the old account's access in place",
                    extra={"member_id": member_id, "platform": account.platform.value,
                           "failed": [community for community, _ in moved.failed]})
    return moved
