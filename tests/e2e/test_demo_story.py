"""The demo's Telegram and WhatsApp chapters (make demo) against the local stack, with its figures."""

from __future__ import annotations

import pytest

from infra.local.client import Client
from infra.local.demo import TG_STRANGER, WA_PHONE, Story

pytestmark = pytest.mark.e2e


def test_demo_story_telegram_stranger_declined_and_whatsapp_down_to_the_removal_task(stack):
    # Given the demo's story teller, on a browser of its own
    lines: list[str] = []
    story = Story(Client(stack.base_url, stack.admin_token), out=lines.append)
    # When it tells the Telegram and WhatsApp chapters, then counts the stand-ins' requests
    telegram = story.telegram()
    whatsapp = story.whatsapp()
    figures = story.figures()
    # Then the Telegram member is in and the stranger with the forwarded link was declined
    member = stack.get(f"/admin/members?member_id={telegram['member_id']}", admin=True).json()["members"][0]
    assert [a["state"] for a in member["access"]] == ["granted"]
    chat = stack.get("/_local/telegram/chats/-1002000000777").json()
    assert str(TG_STRANGER) not in chat["members"] and str(TG_STRANGER) not in chat["pending"]
    assert any("declineChatJoinRequest" in line for line in lines)
    # And the WhatsApp member's access ended with a removal task the creator closed
    assert (whatsapp["task"]["kind"], whatsapp["task"]["phone"]) == ("remove", WA_PHONE)
    ended = stack.get(f"/admin/members?whatsapp_phone=%2B{WA_PHONE[1:]}", admin=True).json()["members"][0]
    assert [a["state"] for a in ended["access"]] == ["revoked"]
    # And each platform's requests per member and 429s are reported from the recorded calls
    assert set(figures) == {"Discord", "Telegram", "WhatsApp"}
    assert figures["Telegram"]["requests"] >= 5 and figures["WhatsApp"]["requests"] >= 3
    assert all(isinstance(f["rate_limited"], int) for f in figures.values())
    assert any(line.strip().startswith("WhatsApp:") and "requests for 1 member" in line for line in lines)
