"""Which Stripe prices a plan may sell: checked when the plan is created, before any member pays."""

from __future__ import annotations

from collections.abc import Sequence

from .billing import PriceInfo
from .model import PlanKind


def price_problems(kind: PlanKind, asked: Sequence[str], found: Sequence[PriceInfo]) -> list[str]:
    """What is wrong with ``asked`` for a plan of ``kind``, given the prices Stripe answered with
    (``found``: the ones it knows, in the key's account and mode); [] when every price can be sold."""
    known = {price.id: price for price in found}
    wanted = "recurring" if kind is PlanKind.SUBSCRIPTION else "one_time"
    problems = []
    for price_id in asked:
        price = known.get(price_id)
        if price is None:
            problems.append(
                f"{price_id} does not exist in the Stripe account and mode of the configured key "
                "(copy the price id from Stripe: Product catalog → the product → the price, price_...)"
            )
        elif not price.active:
            problems.append(f"{price_id} is archived in Stripe: Checkout refuses it; unarchive it or use an active price")
        elif price.type != wanted:
            problems.append(
                f"{price_id} is a {price.type.replace('_', '-')} price but a {kind.value} plan needs a "
                f"{wanted.replace('_', '-')} one (" + ("a recurring price, billed every interval" if wanted == "recurring"
                                                       else "a one-off price, paid once") + ")"
            )
    return problems
