"""Membergate: paid access to chat communities through the creator's own Stripe account."""
