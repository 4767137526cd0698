"""The exit survey: a link issued with the cancellation receipt, the member's answer, the creator's list."""

from __future__ import annotations

import hashlib
import secrets

from ..domain.errors import InvalidRequestError, NotFoundError
from ..domain.survey import CHOICES, LINK_LIFETIME, SurveyAnswer, SurveyLink, clean_comment
from ..ports import SurveyStore


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_survey_link(store: SurveyStore, *, member_id: str, plan_id: str, subscription_id: str, period: str,
                      now: int) -> str:
    """A new token for the member's survey about this cancellation; only its digest is stored."""
    token = secrets.token_urlsafe(24)
    store.put_link(digest(token), SurveyLink(member_id, plan_id, subscription_id, period, now + LINK_LIFETIME))
    return token


def open_survey(store: SurveyStore, token: str, now: int) -> SurveyLink:
    link = store.get_link(digest(token))
    if link is None or link.expires_at <= now:
        raise NotFoundError("this survey link is not valid any more; thanks all the same")
    return link


def answer_survey(store: SurveyStore, token: str, choice: str, comment: str, now: int) -> SurveyAnswer:
    """Store the member's answer (answering again replaces it: one answer per cancellation)."""
    link = open_survey(store, token, now)
    if choice not in CHOICES:
        raise InvalidRequestError(f"choice must be one of {', '.join(CHOICES)}", field="choice")
    answer = SurveyAnswer(link.member_id, link.plan_id, link.subscription_id, link.period, choice,
                          clean_comment(comment), now)
    store.save_answer(answer)
    return answer
