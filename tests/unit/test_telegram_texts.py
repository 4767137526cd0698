"""The Telegram bot speaks the member's language (their Telegram app's, else the community's), from the catalogues."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from membergate.domain.i18n import text
from membergate.domain.model import Community, OnRevoke, PlanGrant, Platform
from membergate.domain.telegram import StartCommand
from membergate.services.telegram import TelegramUpdates, begin_telegram_link
from tests.support.harness import T0, Harness
from tests.support.telegram_bot import RecordingBot

pytestmark = pytest.mark.unit

USER = 7001002003


def start(language_code: str | None, community_locale: str, token: bool = True):
    h = Harness()
    h.stores.catalog.add_community(Community("com_tg", Platform.TELEGRAM, "Le Club", "-1001", None,
                                             OnRevoke.KICK, community_locale, T0))
    h.stores.catalog.add_plan(replace(h.plan, id="pln_tg", stripe_price_ids=("price_tg",), grants=(PlanGrant("com_tg"),)))
    bot = RecordingBot()
    ids = itertools.count(1)
    tokens = iter(f"tok{n}" for n in itertools.count(1))
    link = begin_telegram_link(h.stores, bot, session_member_id=None, plan_id="pln_tg", now=T0, token=lambda: next(tokens))
    updates = TelegramUpdates(h.stores, bot, h.queue, "https://m.example", lambda: f"mbr_{next(ids)}",
                              token=lambda: next(tokens))
    command = StartCommand(1, USER, USER, link.rsplit("=", 1)[1] if token else None, "ana", "Ana", language_code)
    outcome = updates.handle(command, T0)
    return outcome, bot.sent


@pytest.mark.parametrize(("language_code", "community", "locale"), [
    ("fr", "en", "fr"),  # the member's app first
    ("fr-CA", "en", "fr"),
    ("en", "fr", "en"),
    ("de", "fr", "fr"),  # a language without a catalogue: the community's
    (None, "fr", "fr"),
    (None, "en", "en"),
])
def test_start_bound_reply_and_button_in_the_members_language(language_code, community, locale):
    # Given a Telegram community in ``community``'s language and a member whose app uses ``language_code``
    # When they open the join page's t.me link and the bot binds them
    outcome, sent = start(language_code, community)
    # Then the reply and its button are the catalogue's, in the language chosen
    assert outcome.kind == "bound"
    assert sent[0]["text"] == text(locale, "tg.bound") and sent[0]["button_text"] == text(locale, "tg.pay_button")


def test_start_expired_link_answered_in_french_with_tu():
    # Given a French member sending a bare /start (no token, not yet a member)
    outcome, sent = start("fr", "en", token=False)
    # Then the bot says what to do, in French, with "tu"
    assert outcome.kind == "expired"
    assert sent[0]["text"].startswith("Ce lien a expiré") and "Rouvre la page" in sent[0]["text"]
