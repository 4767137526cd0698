"""moto checks a DynamoDB condition and writes the item in separate steps; DynamoDB does both
atomically per item. Races (ten members for the last use of a code) need DynamoDB's behaviour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


@contextmanager
def atomic_writes() -> Iterator[None]:
    """Serialise moto's conditional writes, as DynamoDB serialises writes to one item."""
    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in _WRITES}

    def serialised(original: Any) -> Any:
        @wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, serialised(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
