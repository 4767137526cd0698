"""Changing a live subscription's items (another tier, another quantity) with Stripe's prorations.

A mixin of the billing engine, behind ``POST /v1/subscriptions/{id}`` with ``items`` and
``proration_behavior`` (billing/subscriptions/change-price, billing/subscriptions/prorations):

- same billing interval: the period and anchor stay; with ``create_prorations`` (the default) a
  credit for the unused time on the old price and a charge for the remaining time on the new one
  are added to the next renewal invoice; ``always_invoice`` invoices them now; ``none`` makes none;
- another interval (monthly → yearly): the billing cycle restarts now and an invoice for the new
  period (less the unused time, unless ``none``) is made and charged at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .errors import SandboxError
from .objects import Item, Line, RequestInfo, Subscription, shift
from .shapes import new_id

if TYPE_CHECKING:
    from .engine import BillingEngine

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")


@dataclass(frozen=True)
class ItemChange:
    """One entry of ``items[]``: an existing item by ``id`` (new price or quantity, or deleted), or a new price."""

    id: str | None
    price_id: str | None
    quantity: int | None
    deleted: bool = False


class ItemChanges:
    """Subscription item updates."""

    def update_items(
        self: BillingEngine,
        sub: Subscription,
        changes: list[ItemChange],
        proration_behavior: str,
        now: int,
        request: RequestInfo,
        also: Callable[[], None] | None = None,
    ) -> None:
        """Apply ``changes``; ``also`` makes the request's other changes inside the same update event."""
        if proration_behavior not in PRORATION_BEHAVIORS:
            raise SandboxError(
                400,
                f"Invalid proration_behavior: must be one of {', '.join(PRORATION_BEHAVIORS)}",
                param="proration_behavior",
            )
        if sub.ended:
            raise SandboxError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        old_items = {item.id: Item(item.id, item.price_id, item.quantity, item.created) for item in sub.items}
        new_items = self._apply(sub, changes, now)
        prices = [self.prices[item.price_id] for item in new_items]
        first = prices[0]
        if {(p.interval, p.interval_count) for p in prices} != {(first.interval, first.interval_count)}:
            raise SandboxError(
                400,
                "All prices on a subscription must have the same `recurring.interval` and `recurring.interval_count`.",
                param="items",
            )
        assert first.interval is not None
        new_cycle = (first.interval, first.interval_count) != (sub.interval, sub.interval_count)
        prorate = proration_behavior != "none" and sub.status != "trialing"
        # Credits are taken at the old period, before a new cycle replaces it.
        credits = self._credits(sub, list(old_items.values()), now) if prorate and new_cycle else []
        invoice = None
        with self.subscription_change(sub, now, request):
            sub.items = new_items
            if new_cycle:
                # A new interval restarts the billing cycle today and bills the new period now.
                sub.interval, sub.interval_count = first.interval, first.interval_count
                sub.anchor, sub.cycle, sub.period_start = now, 0, now
                sub.period_end = shift(now, sub.interval_count, sub.interval)
                if sub.status != "trialing":
                    invoice = self._new_invoice(sub, "subscription_update", now, now, now, extra_lines=credits)
            elif prorate:
                remaining = self._remaining(sub, new_items, old_items, now)
                lines = self._credits(sub, self._changed(old_items, new_items), now) + remaining
                if proration_behavior == "always_invoice" and lines:
                    invoice = self._new_invoice(
                        sub, "subscription_update", now, now, now, item_lines=False, extra_lines=lines
                    )
                else:
                    sub.pending_prorations += lines
            if invoice is not None:
                sub.latest_invoice = invoice.id
            if also is not None:
                also()
        if invoice is not None:
            self.emit("invoice.created", self.invoice_dict(invoice), now, request)
            self._finalize(invoice, now, request)
            self._charge(sub, invoice, now)

    def _apply(self: BillingEngine, sub: Subscription, changes: list[ItemChange], now: int) -> list[Item]:
        items = {item.id: Item(item.id, item.price_id, item.quantity, item.created) for item in sub.items}
        for index, change in enumerate(changes):
            where = f"items[{index}]"
            if change.price_id is not None:
                price = self.prices.get(change.price_id)
                if price is None:
                    raise SandboxError(
                        400, f"No such price: '{change.price_id}'", code="resource_missing", param=f"{where}[price]"
                    )
                if not price.recurring:
                    raise SandboxError(
                        400,
                        "The price specified is set to `type=one_time` but this field only accepts prices with "
                        "`type=recurring`.",
                        param=f"{where}[price]",
                    )
                if price.currency != sub.currency:
                    raise SandboxError(
                        400,
                        f"The price specified is in {price.currency} but this subscription bills in {sub.currency}.",
                        param=f"{where}[price]",
                    )
            if change.quantity is not None and change.quantity < 1:
                raise SandboxError(400, f"{where}[quantity] must be at least 1.", param=f"{where}[quantity]")
            if change.id is None:
                if change.price_id is None or change.deleted:
                    raise SandboxError(
                        400,
                        f"Pass either `id` or `price` in `{where}`.",
                        code="parameter_missing",
                        param=f"{where}[price]",
                    )
                item = Item(new_id("si"), change.price_id, change.quantity or 1, now)
                items[item.id] = item
                continue
            if change.id not in items:
                raise SandboxError(
                    400, f"No such subscription_item: '{change.id}'", code="resource_missing", param=f"{where}[id]"
                )
            if change.deleted:
                del items[change.id]
                continue
            item = items[change.id]
            item.price_id = change.price_id or item.price_id
            item.quantity = change.quantity or item.quantity
        if not items:
            raise SandboxError(400, "A subscription must keep at least one item.", param="items")
        return list(items.values())

    @staticmethod
    def _changed(old_items: dict[str, Item], new_items: list[Item]) -> list[Item]:
        """The old items whose price or quantity changed, or that were removed."""
        kept = {item.id: item for item in new_items}
        return [
            old
            for old in old_items.values()
            if old.id not in kept or (kept[old.id].price_id, kept[old.id].quantity) != (old.price_id, old.quantity)
        ]

    def _remaining(
        self: BillingEngine, sub: Subscription, new_items: list[Item], old_items: dict[str, Item], now: int
    ) -> list[Line]:
        """Charges for the rest of the period on each new or changed item."""
        lines = []
        for item in new_items:
            old = old_items.get(item.id)
            if old is not None and (old.price_id, old.quantity) == (item.price_id, item.quantity):
                continue
            lines.append(self._proration(sub, item, now, "Remaining time on", sign=1))
        return lines

    def _credits(self: BillingEngine, sub: Subscription, items: list[Item], now: int) -> list[Line]:
        """Credits for the unused rest of the period on ``items`` (at the prices they had)."""
        if sub.period_end <= now:
            return []
        return [self._proration(sub, item, now, "Unused time on", sign=-1) for item in items]

    def _proration(self: BillingEngine, sub: Subscription, item: Item, now: int, label: str, sign: int) -> Line:
        price = self.prices[item.price_id]
        product = self.products.get(price.product_id)
        full = (price.unit_amount or 0) * item.quantity
        length = max(sub.period_end - sub.period_start, 1)
        # Stripe prorates to the second over the current period.
        amount = round(full * max(sub.period_end - now, 0) / length)
        day = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%d %b %Y")
        quantity = f"{item.quantity} × " if item.quantity > 1 else ""
        return Line(
            id=new_id("il"),
            item_id=item.id,
            price_id=price.id,
            quantity=item.quantity,
            period_start=now,
            period_end=sub.period_end,
            amount=sign * amount,
            description=f"{label} {quantity}{product.name if product else price.id} after {day}",
            proration=True,
        )
