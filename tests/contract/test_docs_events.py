"""The Stripe events a creator registers by hand are the ones the code handles: README and deploy guide list each."""

from __future__ import annotations

from pathlib import Path

import pytest

from membergate.domain.stripe_events import HANDLED_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["README.md", "docs/deploy.md"])
def test_doc_names_every_handled_stripe_event(doc):
    # Given the guide a creator follows to register the webhook endpoint by hand
    text = (ROOT / doc).read_text(encoding="utf-8")
    # When each handled event type is looked for (customer.subscription.* counts for its family,
    # whose members the README lists after the wildcard)
    missing = [t for t in sorted(HANDLED_EVENT_TYPES)
               if f"`{t}`" not in text and t not in text.replace("`", "")
               and not (t.startswith("customer.subscription.") and t.rsplit(".", 1)[1] in text)]
    # Then none is missing: a missing one is an event the creator's endpoint never sends
    assert missing == [], f"{doc} does not name {missing}: add them where the handled events are listed"
