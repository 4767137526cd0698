"""Discord interactions: PING and the /access slash command that re-converges a member who came back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..domain.errors import InvalidRequestError
from ..domain.messages import render
from ..domain.model import Platform, WorkKind
from ..ports import AccessWork, AccessWorkQueue, Stores

# Interaction and callback types (docs: interactions/receiving-and-responding).
PING = 1
APPLICATION_COMMAND = 2
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
EPHEMERAL = 1 << 6
ACCESS_COMMAND = "access"


@dataclass(frozen=True)
class InteractionAnswer:
    body: dict[str, Any]


def handle_interaction(stores: Stores, queue: AccessWorkQueue, raw: bytes, manage_url: str) -> InteractionAnswer:
    """Answer a verified interaction (the caller checked its Ed25519 signature)."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError("the interaction body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequestError("the interaction body must be a JSON object")
    if payload.get("type") == PING:
        return InteractionAnswer({"type": PONG})
    found_data = payload.get("data")
    data: dict[str, Any] = found_data if isinstance(found_data, dict) else {}
    if payload.get("type") != APPLICATION_COMMAND or data.get("name") != ACCESS_COMMAND:
        raise InvalidRequestError("Membergate answers only PING and the /access command", field="data.name")
    found_member = payload.get("member")
    member_obj: dict[str, Any] = found_member if isinstance(found_member, dict) else {}
    user = member_obj.get("user") if isinstance(member_obj.get("user"), dict) else payload.get("user")
    user_id = str(user.get("id", "")) if isinstance(user, dict) else ""
    guild_id = str(payload.get("guild_id") or "")
    if not user_id.isdigit() or len(user_id) > 20:
        raise InvalidRequestError("the interaction names no user", field="member.user.id")
    communities = [c for c in stores.catalog.list_communities() if c.platform is Platform.DISCORD]
    here = [c for c in communities if c.external_id == guild_id] or communities
    locale = here[0].locale if here else "en"
    name = here[0].name if here else "this server"
    member = stores.members.find_by_identity(Platform.DISCORD, user_id)
    if member is None or not here:
        return _ephemeral(render("access_command.unknown", locale, community=name))
    # In a server: that community only; in a DM: every Discord community the member may be in.
    targets = [c for c in here if c.external_id == guild_id] if guild_id else here
    queue.send([AccessWork(WorkKind.RESYNC, member.id, c.id) for c in targets])
    return _ephemeral(render("access_command.resync", locale, community=name, manage_url=manage_url))


def _ephemeral(text: str) -> InteractionAnswer:
    return InteractionAnswer({"type": CHANNEL_MESSAGE_WITH_SOURCE, "data": {"content": text, "flags": EPHEMERAL}})
