"""Register the Telegram webhook (and check a chat) in one command: `python -m infra.telegram_webhook URL`.

    TELEGRAM_BOT_TOKEN=123:ABC TELEGRAM_WEBHOOK_SECRET=... \\
        python -m infra.telegram_webhook https://<api>/webhooks/telegram [--check -100123...]

Sets the webhook with the secret and the updates the bot needs (message, chat_join_request,
chat_member, callback_query), then, with --check, verifies that the bot is an administrator of
each chat with 'Invite Users via Link' and 'Ban Users'. TELEGRAM_API_BASE overrides
https://api.telegram.org (e.g. the local stand-in).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from membergate.adapters.http import HttpTransport, UrllibTransport
from membergate.adapters.telegram import ALLOWED_UPDATES, DEFAULT_API_BASE, TelegramBotApi
from membergate.domain.errors import PermanentError, RetryableError


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
         transport: HttpTransport | None = None, out=sys.stdout) -> int:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m infra.telegram_webhook", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the stack's Telegram webhook URL (https://…/webhooks/telegram)")
    parser.add_argument("--check", action="append", default=[], metavar="CHAT_ID",
                        help="also check that the bot can run this chat (repeatable)")
    args = parser.parse_args(argv)
    token, secret = env.get("TELEGRAM_BOT_TOKEN", ""), env.get("TELEGRAM_WEBHOOK_SECRET", "")
    if not token or not secret:
        print("Set TELEGRAM_BOT_TOKEN (from @BotFather) and TELEGRAM_WEBHOOK_SECRET (the same value the stack "
              "uses; 1-256 characters of A-Z a-z 0-9 _ -) first.", file=out)
        return 2
    api = TelegramBotApi(transport or UrllibTransport(), lambda: token, env.get("TELEGRAM_API_BASE") or DEFAULT_API_BASE)
    try:
        me = api.get_me()
        api.set_webhook(args.url, secret)
        print(f"Webhook set for @{me.username}: {args.url} (updates: {', '.join(ALLOWED_UPDATES)})", file=out)
        for chat_id in args.check:
            info = api.preflight(chat_id)
            print(f"Chat {info.id} ({info.type}, {info.title!r}): the bot can invite and remove members", file=out)
    except (PermanentError, RetryableError) as exc:
        print(f"Not done: {exc.message}", file=out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
