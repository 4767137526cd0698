"""Disputes still open, read back from the audit log, as problems the creator's dashboard lists."""

from __future__ import annotations

from ..ports import Stores
from .dashboard import Problem

# Card networks close disputes within a few months; an older open entry is no longer actionable.
LOOK_BACK_SECONDS = 120 * 86_400
READ_LIMIT = 500


def open_dispute_problems(stores: Stores, now: int) -> list[Problem]:
    """One problem per disputed payment whose latest audit entry is ``dispute.open`` (answer it in Stripe)."""
    if stores.audit is None:
        return []
    latest: dict[str, tuple[int, str, str, str | None]] = {}
    after = None
    read = 0
    while read < READ_LIMIT:
        entries, after = stores.audit.page(now - LOOK_BACK_SECONDS, now, 100, after)
        read += len(entries)
        for entry in entries:
            if not entry.action.startswith("dispute."):
                continue
            key = entry.detail.get("dispute_id") or entry.target
            status = entry.action.split(".", 1)[1]
            known = latest.get(key)
            # A closed dispute never reopens, whatever order its entries were written in.
            if known is None or known[1] == "open":
                latest[key] = (entry.at, status, entry.target, entry.member_id)
        if after is None:
            break
    return [
        Problem("dispute", member_id or target, f"payment disputed ({target})", f"dispute {key} open: answer it in the Stripe dashboard "
                "(Payments > Disputes) before its evidence deadline", at)
        for key, (at, status, target, member_id) in latest.items()
        if status == "open"
    ]
