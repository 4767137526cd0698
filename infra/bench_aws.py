"""Benchmark plumbing: count AWS API calls (and what they bill) and run Lambda handlers in-process.

Calls are counted with botocore event hooks (``before-parameter-build``, ``after-call``) on the very clients the code
under test uses (boto3 clients from ``bootstrap.aws_client`` and PynamoDB's own botocore clients),
so nothing the benchmark does itself is counted. Request units are derived from the requests and
item sizes, not from ``ConsumedCapacity``: moto's figures are not reliable.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

REGION = "us-east-1"

READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
SQS_CHUNK = 64 * 1024
READ_UNIT = 4 * 1024
WRITE_UNIT = 1024


def use_fake_credentials() -> None:
    """moto only: credentials that can never reach a real account, set before any client exists."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_REGION", REGION)
    for leaked in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(leaked, None)


# --- DynamoDB item sizes and request units (the documented rules, approximately) ---------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


@dataclass(frozen=True)
class TableShape:
    keys: tuple[str, ...]
    # index name -> (its key attributes, projected non-key attributes or None for ALL)
    indexes: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]]


def _table_shape(description: dict[str, Any]) -> TableShape:
    keys = tuple(k["AttributeName"] for k in description["KeySchema"])
    indexes = {}
    for gsi in description.get("GlobalSecondaryIndexes", []):
        index_keys = tuple(k["AttributeName"] for k in gsi["KeySchema"])
        projection = gsi.get("Projection", {})
        kind = projection.get("ProjectionType", "ALL")
        projected = None if kind == "ALL" else tuple(projection.get("NonKeyAttributes", ()))
        indexes[gsi["IndexName"]] = (index_keys, projected)
    return TableShape(keys, indexes)


def _index_image(shape: TableShape, index: str, item: dict | None) -> dict | None:
    index_keys, projected = shape.indexes[index]
    if not item or any(k not in item for k in index_keys):
        return None  # sparse: the item is not in this index
    if projected is None:
        return item
    names = set(shape.keys) | set(index_keys) | set(projected)
    return {k: v for k, v in item.items() if k in names}


def write_units(shape: TableShape, old: dict | None, new: dict | None) -> float:
    """WRU for one write: the larger image per started KB, plus each index the write touches.

    An index write costs one write of the projected image when an item enters or leaves it or its
    projection changes, two (delete + put) when its index key changes.
    """
    units = max(1, math.ceil(max(item_size(old), item_size(new)) / WRITE_UNIT))
    for index, (index_keys, _) in shape.indexes.items():
        before, after = _index_image(shape, index, old), _index_image(shape, index, new)
        if before is None and after is None or before == after:
            continue
        one = lambda image: max(1, math.ceil(item_size(image) / WRITE_UNIT))  # noqa: E731
        if before is not None and after is not None:
            moved = any(before[k] != after[k] for k in index_keys)
            units += one(before) + one(after) if moved else one(after)
        else:
            units += one(before or after)
    return units


def read_units(total_bytes: int, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / READ_UNIT))
    return units if consistent else units / 2


# --- the call log -------------------------------------------------------------------------------


@dataclass
class ApiCall:
    label: str
    service: str
    operation: str
    error: str | None = None
    index: str | None = None
    items_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    sqs_requests: int = 0
    queue_fifo: bool = False

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"


class CallLog:
    """Records the API calls of watched clients while a label is set, with what each one bills."""

    def __init__(self, inspector: Any | None = None):
        # An unwatched DynamoDB client that reads item images around writes (for WRU) and
        # describes tables (keys, indexes); its own calls are never recorded.
        self._inspector = inspector
        self._shapes: dict[str, TableShape] = {}
        self._watched: set[int] = set()
        self.label: str | None = None
        self.calls: list[ApiCall] = []

    def watch(self, *clients: Any) -> None:
        for client in clients:
            if id(client) in self._watched:
                continue
            self._watched.add(id(client))
            # before-parameter-build sees the API parameters (before-call only the serialised request).
            client.meta.events.register("before-parameter-build.*.*", self._before)
            client.meta.events.register("after-call.*.*", self._after)

    @contextlib.contextmanager
    def recording(self, label: str) -> Iterator[list[ApiCall]]:
        previous, start = self.label, len(self.calls)
        self.label = label
        window: list[ApiCall] = []
        try:
            yield window
        finally:
            self.label = previous
            window.extend(self.calls[start:])

    # -- hooks ----------------------------------------------------------------------------------

    def _before(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        if self.label is None:
            return
        context["bench"] = {"label": self.label, "params": params}
        if model.service_model.service_name == "dynamodb" and model.name in WRITE_OPERATIONS and self._inspector:
            context["bench"]["old"] = self._image(params["TableName"], params.get("Key") or params.get("Item"))
        elif model.service_model.service_name == "dynamodb" and model.name == "TransactWriteItems" and self._inspector:
            context["bench"]["old"] = [self._image(*_transact_target(entry)) for entry in params.get("TransactItems", [])]

    def _after(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        bench = context.get("bench")
        if bench is None:
            return
        service, operation, params = model.service_model.service_name, model.name, bench["params"]
        call = ApiCall(bench["label"], service, operation, index=params.get("IndexName"))
        if http_response.status_code >= 300:
            call.error = parsed.get("Error", {}).get("Code", str(http_response.status_code))
        if service == "dynamodb":
            self._dynamodb(call, params, parsed, bench.get("old"))
        elif service == "sqs":
            call.queue_fifo = str(params.get("QueueUrl", "")).endswith(".fifo")
            call.sqs_requests = _sqs_requests(operation, params)
        self.calls.append(call)

    def _dynamodb(self, call: ApiCall, params: dict, parsed: dict, old: dict | None) -> None:
        op = call.operation
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        if op == "GetItem":
            item = parsed.get("Item")
            call.items_read = 1 if item else 0
            call.read_units = read_units(item_size(item), consistent)
        elif op in ("Query", "Scan"):
            items = parsed.get("Items", [])
            call.items_read = int(parsed.get("Count", len(items)))
            call.read_units = read_units(sum(item_size(i) for i in items), consistent)
        elif op == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                call.items_read += len(items)
                call.read_units += sum(read_units(item_size(i), consistent) for i in items)
        elif op in WRITE_OPERATIONS and self._inspector:
            table = params["TableName"]
            key = params.get("Key") or params.get("Item")
            new = None if op == "DeleteItem" else self._image(table, key)
            # A write whose condition fails still consumes the units of the item it checked.
            call.write_units = write_units(self._shape(table), old, new if call.error is None else old)
        elif op == "TransactWriteItems" and self._inspector:
            # A transactional write costs twice the units of the same write done alone, per item.
            for entry, before in zip(params.get("TransactItems", []), old or []):
                table, key = _transact_target(entry)
                after = before if call.error is not None else None if "Delete" in entry else self._image(table, key)
                if "ConditionCheck" not in entry:
                    call.write_units += 2 * write_units(self._shape(table), before, after)
        elif op == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    image = request.get("PutRequest", {}).get("Item")
                    call.write_units += write_units(self._shape(table), None, image)

    def _shape(self, table: str) -> TableShape:
        if table not in self._shapes:
            self._shapes[table] = _table_shape(self._inspector.describe_table(TableName=table)["Table"])
        return self._shapes[table]

    def _image(self, table: str, key_or_item: dict | None) -> dict | None:
        if not key_or_item:
            return None
        key = {k: key_or_item[k] for k in self._shape(table).keys if k in key_or_item}
        return self._inspector.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def _transact_target(entry: dict) -> tuple[str, dict | None]:
    """(table, key or item) of one TransactItems entry (Put, Update, Delete or ConditionCheck)."""
    (action,) = entry.values()
    return action["TableName"], action.get("Key") or action.get("Item")


def _sqs_requests(operation: str, params: dict) -> int:
    """SQS bills each started 64 KB of payload as one request (a batch of small messages is one)."""
    if operation == "SendMessage":
        size = len(params.get("MessageBody", "").encode("utf-8"))
    elif operation == "SendMessageBatch":
        size = sum(len(e.get("MessageBody", "").encode("utf-8")) for e in params.get("Entries", []))
    else:
        return 1
    return max(1, math.ceil(size / SQS_CHUNK))


# --- running a handler the way Lambda does, capturing what it logs --------------------------------


@dataclass
class Invocation:
    function: str
    result: Any
    seconds: float
    log_bytes: int
    emf_metrics: set[str] = field(default_factory=set)


def invoke(function: str, module: Any, event: dict, context: Any) -> Invocation:
    """Call ``module.lambda_handler`` with its stdout/stderr and Powertools log stream captured.

    What it prints is what CloudWatch Logs would ingest; the benchmark never shows it.
    """
    # Imported here, not at module level: Powertools reads POWERTOOLS_SERVICE_NAME when the one
    # Logger/Metrics pair is created, and the function's environment is only set by then.
    from membergate.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous_stream = handler.setStream(buffer) if hasattr(handler, "setStream") else None
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            start = time.perf_counter()
            result = module.lambda_handler(event, context)
            seconds = time.perf_counter() - start
    finally:
        if previous_stream is not None:
            handler.setStream(previous_stream)
    text = buffer.getvalue()
    return Invocation(function, result, seconds, len(text.encode("utf-8")), _emf_metric_names(text))


def _emf_metric_names(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            dims = ",".join(sorted(d for group in directive.get("Dimensions", []) for d in group))
            for metric in directive.get("Metrics", []):
                names.add(f"{directive.get('Namespace')}/{metric['Name']}[{dims}]")
    return names


def json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
