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
