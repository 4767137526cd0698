"""What Stripe Checkout is asked beyond the prices: the plan's options, Stripe Tax, and the consent EU law requires."""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import text
from .model import CheckoutOptions

# Stripe: custom_text.submit.message is at most 1,000 characters.
CUSTOM_TEXT_LIMIT = 1000


@dataclass(frozen=True)
class CheckoutTerms:
    """The Checkout Session parameters besides line items and URLs, named as Stripe names them."""

    allow_promotion_codes: bool
    automatic_tax: bool
    phone_number_collection: bool
    # consent_collection.terms_of_service "required": the member ticks the creator's terms
    # (Stripe shows the terms URL set in the Dashboard's public details) before paying.
    terms_of_service: bool
    # custom_text.submit.message, beside the pay button: the member asks for immediate access
    # and acknowledges losing the 14-day withdrawal right (French Code de la consommation L221-28).
    submit_message: str
    locale: str  # Checkout's language: the community's
    # No terms box at Stripe (no TermsUrl): the join page's required waiver box was ticked instead,
    # and the session says so in its metadata, so the consent is recorded with the payment.
    page_waiver: bool = False


def checkout_terms(
    options: CheckoutOptions,
    *,
    locale: str,
    place: str,
    stripe_tax: bool,
    terms_url: str = "",
    privacy_url: str = "",
) -> CheckoutTerms:
    """The parameters for one checkout. Stripe Tax only where the deployment enabled it (the plan asks,
    the deployment allows); Stripe's terms checkbox when the deployment has terms to accept, else the
    join page's waiver box (which start_checkout requires ticked)."""
    message = text(locale, "checkout.waiver").format(place=" ".join(place.split())[:100])
    legal = [text(locale, key).format(url=url) for key, url in (("checkout.terms", terms_url),
                                                                  ("checkout.privacy", privacy_url)) if url]
    if legal:
        message = f"{message} {' · '.join(legal)}"
    return CheckoutTerms(
        allow_promotion_codes=options.allow_promotion_codes,
        automatic_tax=options.automatic_tax and stripe_tax,
        phone_number_collection=options.phone_number_collection,
        terms_of_service=bool(terms_url),
        page_waiver=not terms_url,
        submit_message=message[:CUSTOM_TEXT_LIMIT],
        locale=locale,
    )
