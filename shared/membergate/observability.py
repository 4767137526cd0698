"""One Logger and one Metrics per process (Powertools); never log bodies, tokens or emails."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics(namespace="Membergate")


def count(name: str, value: int = 1) -> None:
    """A business-outcome metric (CheckoutStarted, AccessGranted, StripeEventDuplicate, ...)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
