"""The member-facing links (join, manage, after payment, claim), built in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    base_url: str

    def join(self, plan_id: str | None) -> str:
        return f"{self.base_url}/join/{plan_id}" if plan_id else self.base_url

    def manage(self, plan_id: str | None) -> str:
        return f"{self.join(plan_id)}?manage=1"

    def paid(self, plan_id: str) -> str:
        """Stripe Checkout's success URL (Stripe fills in the session id)."""
        return f"{self.join(plan_id)}?paid=1&session_id={{CHECKOUT_SESSION_ID}}"

    def claim(self, token: str) -> str:
        return f"{self.base_url}/claim/{token}"

    def offer(self, token: str) -> str:
        """A migration announcement's personal link: the offer's join page, signed in as the member."""
        return f"{self.base_url}/offer/{token}"

    def portal(self, token: str) -> str:
        """A member's personal link to Stripe's billing portal (payment reminders)."""
        return f"{self.base_url}/billing/portal/{token}"

    def survey(self, token: str) -> str:
        """The one-question exit survey a cancellation receipt links to."""
        return f"{self.base_url}/survey/{token}"
