"""Create Membergate's DynamoDB tables in moto from the PynamoDB models (template parity is a contract test)."""

from __future__ import annotations

from membergate.adapters.dynamodb import models


def create_tables(prefix: str) -> tuple[str, str]:
    membership, ledger = f"{prefix}-membership", f"{prefix}-ledger"
    models.configure(membership, ledger, "us-east-1")
    models.MembershipItem.create_table(billing_mode="PAY_PER_REQUEST", wait=False)
    models.LedgerItem.create_table(billing_mode="PAY_PER_REQUEST", wait=False)
    return membership, ledger
