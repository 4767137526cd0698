"""Seats (a founder price): how many members may ever buy a plan, held from checkout to payment."""

from __future__ import annotations

from enum import Enum


class SeatTake(str, Enum):
    TAKEN = "taken"  # a new seat is held for this member
    HELD = "held"  # the member already holds one (an open checkout, or paid for good)
    SOLD_OUT = "sold_out"


def seats_left(seats: int | None, taken: int) -> int | None:
    """Seats still to sell (None: the plan has no limit). Never negative: a limit lowered under the
    seats already taken is simply sold out."""
    return None if seats is None else max(0, seats - taken)


# A hold is taken, then its Checkout Session is created and attached within the same request
# (seconds; the checkout function times out well before this). A hold still without a session
# after this long belongs to a request that died in between, and its seat goes back on sale.
STALE_HOLD_SECONDS = 900


def is_stale_hold(held_at: int, session_id: str | None, now: int) -> bool:
    """A hold whose checkout was never created, held long enough ago that no request is still making it."""
    return session_id is None and now - held_at >= STALE_HOLD_SECONDS
