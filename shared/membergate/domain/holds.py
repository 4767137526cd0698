"""Community holds: a platform refusal about the whole place (the bot's rights, its presence) is remembered once, on the place.

A refusal such as Discord's Missing Permissions answers every member's request in that community
the same way until the creator fixes the bot. Remembered per member, a resync-all over 1,000
members would send 1,000 refused requests, and the invalid-request guard (adapters/discord.py)
would then pause every community's calls. Held on the community instead: one refused request,
the other members' work is skipped without asking the platform, and a passing check (or a
member's resync that probes and succeeds) releases the hold and resyncs the members held behind it.
Refusals about one member (DMs closed, unknown user, an expired authorization) stay per member.
"""

from __future__ import annotations

from dataclasses import dataclass

# Refusals that say nothing about the member and everything about the bot in this place.
COMMUNITY_SCOPED = frozenset(
    {
        # Discord (adapters/discord.py _REFUSALS): 50013 (a permission, or a role above the bot's), 50001, 10004.
        "missing_permissions",
        "missing_access",
        "unknown_guild",
        # Telegram (adapters/telegram.py): the bot is not (or no longer) an admin of the chat.
        "telegram_bot_removed",
        "telegram_bot_not_member",
        "telegram_bot_not_admin",
        "telegram_not_enough_rights",
        "telegram_chat_not_found",
        "telegram_needs_supergroup",
    }
)
# A member's resync may try the platform again (a probe) at most this often while a hold stands,
# so a resync of every member costs one refused request a minute, not one per member.
PROBE_INTERVAL = 60


@dataclass(frozen=True)
class CommunityHold:
    community_id: str
    refusal: str  # the refusal's reason code (e.g. missing_permissions)
    detail: str  # the platform's refusal with its fix, as the adapter worded it
    since: int
    probed_at: int = 0


def is_community_scoped(reason: str) -> bool:
    return reason in COMMUNITY_SCOPED


def may_probe(hold: CommunityHold, now: int) -> bool:
    """Whether a resync may ask the platform again (the creator may have fixed it): the first at once,
    as a creator resyncs right after the fix, then once per PROBE_INTERVAL."""
    return now - hold.probed_at >= PROBE_INTERVAL


def held_reason(hold: CommunityHold) -> str:
    """The member's access reason while the community is held: the refusal, its fix, and what resumes it."""
    return (
        f"{hold.refusal}: {hold.detail} Membergate stopped sending this community's requests after this "
        "refusal (the same for every member); once fixed, run the community's check (POST "
        f"/admin/communities/{hold.community_id}/check): when it passes, every member held is resynced"
    )
