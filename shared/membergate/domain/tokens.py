"""Bearer tokens at rest: only a digest of a session, OAuth state or claim token is ever stored."""

from __future__ import annotations

import hashlib


def token_key(token: str) -> str:
    """The SHA-256 of a token, as stored: the token itself lives only in the cookie or the link.

    Tokens carry 192 random bits, so a plain digest (no salt, no stretching) cannot be reversed,
    and a leaked table or backup opens nobody's session."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
