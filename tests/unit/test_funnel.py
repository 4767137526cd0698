"""Which join page views count (once per browser and day; never bots or HEAD), and the daily funnel."""

from __future__ import annotations

from datetime import date

import pytest

from membergate.domain.funnel import FunnelCount, funnel_days, is_bot, view_counts
from membergate.domain.kpis import FunnelDay

pytestmark = pytest.mark.unit
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
DAY = date(2026, 2, 3)


@pytest.mark.parametrize("agent", [None, "", "curl/8.5.0", "python-requests/2.32",
                                   "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                                   "Mozilla/5.0 (Macintosh) facebookexternalhit/1.1", "TelegramBot (like TwitterBot)",
                                   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0"])
def test_is_bot_crawlers_previews_scripts_and_no_agent_are_bots(agent):
    assert is_bot(agent)


def test_is_bot_a_browser_is_not():
    assert not is_bot(FIREFOX)


def test_view_counts_once_per_browser_plan_and_day():
    # Given a browser's first view
    counted, cookie = view_counts("GET", FIREFOX, None, "pln_a", DAY)
    assert counted and cookie == "2026-02-03~pln_a"
    # When it comes back the same day, then views another plan, then comes back the next day
    again = view_counts("GET", FIREFOX, cookie, "pln_a", DAY)
    other = view_counts("GET", FIREFOX, cookie, "pln_b", DAY)
    tomorrow = view_counts("GET", FIREFOX, other[1], "pln_a", date(2026, 2, 4))
    # Then only the first, the other plan and the next day count
    assert again == (False, None)
    assert other == (True, "2026-02-03~pln_a~pln_b")
    assert tomorrow == (True, "2026-02-04~pln_a")


def test_view_counts_head_and_bots_never():
    assert view_counts("HEAD", FIREFOX, None, "pln_a", DAY) == (False, None)
    assert view_counts("GET", "Discordbot/2.0", None, "pln_a", DAY) == (False, None)


def test_funnel_days_sum_plans_per_day_or_keep_one_plan():
    # Given counters of two plans over two days
    counts = [FunnelCount("pln_a", DAY, "view", 10), FunnelCount("pln_b", DAY, "view", 5),
              FunnelCount("pln_a", DAY, "paid", 1), FunnelCount("pln_a", date(2026, 2, 4), "bound", 2),
              FunnelCount("pln_a", DAY, "unknown", 99)]
    # Then the funnel sums them per day, and one plan's is its own
    assert funnel_days(counts) == (FunnelDay(DAY, views=15, paid=1), FunnelDay(date(2026, 2, 4), bound=2))
    assert funnel_days(counts, "pln_b") == (FunnelDay(DAY, views=5),)
