"""One Logger and one Metrics per process (Powertools); never log bodies, tokens or emails."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .config import metrics_disabled

logger = Logger()
metrics = Metrics(namespace="Membergate")


def count(name: str, value: int = 1) -> None:
    """A business-outcome metric (CheckoutStarted, AccessGranted, StripeEventDuplicate, ...).

    Nothing is recorded while metrics are disabled (BusinessMetrics=off, the default): Powertools
    only skips its flush then, and would still print a full set of 100 values of one metric, a
    billed custom metric, from a warm container.
    """
    if metrics_disabled():
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
