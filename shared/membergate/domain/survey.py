"""The one-question exit survey a cancellation receipt links to: its choices and what is kept."""

from __future__ import annotations

from dataclasses import dataclass

# The member picks one; "other" with free text says the rest. The keys are stable (stored).
CHOICES = ("too_expensive", "not_using", "content", "temporary", "other")
COMMENT_LIMIT = 1000
# A survey link works for as long as a member might still think about why they left.
LINK_LIFETIME = 60 * 86_400


@dataclass(frozen=True)
class SurveyLink:
    """What a survey token stands for (stored under the token's digest only)."""

    member_id: str
    plan_id: str
    subscription_id: str
    period: str  # the cancellation's message period: one answer per cancellation
    expires_at: int


@dataclass(frozen=True)
class SurveyAnswer:
    member_id: str
    plan_id: str
    subscription_id: str
    period: str
    choice: str
    comment: str
    at: int


def clean_comment(comment: str) -> str:
    """The free text as stored: control characters (CR/LF included) become spaces, bounded."""
    return " ".join("".join(c if c.isprintable() else " " for c in comment).split())[:COMMENT_LIMIT]
