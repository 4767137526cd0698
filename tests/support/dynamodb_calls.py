"""Counting the DynamoDB calls a piece of code makes, by operation, through botocore (budget tests)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.client


@contextmanager
def dynamodb_calls() -> Iterator[Counter[str]]:
    """Counts every DynamoDB API call (by operation) made through botocore while open."""
    seen: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation, params):  # type: ignore[no-untyped-def]
        if client.meta.service_model.service_name == "dynamodb":
            seen[operation] += 1
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
