"""Preflight: whether a platform's bot can do what a community needs, each failure with its exact fix."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .model import OnRevoke

# Discord permission bits (docs: topics/permissions#permissions-bitwise-permission-flags).
CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
ADMINISTRATOR = 1 << 3
MANAGE_ROLES = 1 << 28
# Application flags: the Server Members privileged intent (docs: resources/application#application-object-application-flags).
GATEWAY_GUILD_MEMBERS = 1 << 14
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    fix: str = ""  # what the creator does to make it pass; empty when it passes


@dataclass(frozen=True)
class Preflight:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        return " ".join(c.fix for c in self.failures())


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    position: int
    permissions: int


@dataclass(frozen=True)
class DiscordGuildFacts:
    """What the bot read about a guild: None for ``bot_roles`` when it is not in the guild."""

    guild_id: str
    guild_name: str
    roles: Mapping[str, Role]
    bot_roles: frozenset[str] | None
    bot_is_owner: bool
    application_flags: int


_SETTINGS_ROLES = "Server Settings → Roles"


def discord_checks(facts: DiscordGuildFacts, granted_roles: Collection[str], on_revoke: OnRevoke) -> Preflight:
    """Evaluate what the bot needs in a guild for these roles and this revoke policy."""
    intent_on = bool(facts.application_flags & (GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED))
    intent = Check(
        "server_members_intent",
        intent_on,
        "" if intent_on else "turn on the Server Members Intent in the Discord developer portal (your application → Bot → "
        "Privileged Gateway Intents) so the daily re-check can list the server's members",
    )
    if facts.bot_roles is None:
        return Preflight((
            Check("bot_in_guild", False,
                  f"invite the Membergate bot to the server {facts.guild_id} with the install link from the "
                  "developer portal (scope bot, permissions Manage Roles, Kick Members, Create Instant Invite)"),
            intent,
        ))
    everyone = facts.roles.get(facts.guild_id)
    mine = [facts.roles[r] for r in facts.bot_roles if r in facts.roles]
    permissions = (everyone.permissions if everyone else 0)
    for role in mine:
        permissions |= role.permissions
    admin = facts.bot_is_owner or bool(permissions & ADMINISTRATOR)
    top = max(mine, key=lambda r: (r.position, r.id), default=None)
    bot_role_name = top.name if top else "Membergate"

    def has(bit: int) -> bool:
        return admin or bool(permissions & bit)

    def grant(what: str) -> str:
        return f"give the '{bot_role_name}' role the {what} permission in {_SETTINGS_ROLES}"

    checks = [
        Check("bot_in_guild", True),
        Check("manage_roles", has(MANAGE_ROLES), "" if has(MANAGE_ROLES) else grant("Manage Roles")),
        Check("create_instant_invite", has(CREATE_INSTANT_INVITE),
              "" if has(CREATE_INSTANT_INVITE) else grant("Create Invite")),
    ]
    if on_revoke is OnRevoke.KICK:
        checks.append(Check("kick_members", has(KICK_MEMBERS), "" if has(KICK_MEMBERS) else grant("Kick Members")))
    for role_id in sorted(set(granted_roles)):
        granted = facts.roles.get(role_id)
        if granted is None:
            checks.append(Check(f"role_exists:{role_id}", False,
                                f"role {role_id} does not exist in the server: copy the role's ID from {_SETTINGS_ROLES} "
                                "(right click → Copy Role ID) into the community or plan"))
            continue
        # Discord lets a bot manage only roles strictly below its highest role (the owner excepted).
        above = facts.bot_is_owner or (top is not None and top.position > granted.position)
        checks.append(Check(f"role_below_bot:{role_id}", above,
                            "" if above else f"move the {bot_role_name} role above '{granted.name}' in {_SETTINGS_ROLES}"))
    checks.append(intent)
    return Preflight(tuple(checks))
