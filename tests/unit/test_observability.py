"""Business metrics are opt-in: with POWERTOOLS_METRICS_DISABLED nothing reaches CloudWatch (EMF)."""

from __future__ import annotations

import pytest

from membergate import observability

pytestmark = pytest.mark.unit


@pytest.fixture
def fresh_metrics():
    observability.metrics.clear_metrics()
    yield observability.metrics
    observability.metrics.clear_metrics()


def test_count_metrics_disabled_prints_no_emf_even_past_a_full_set(monkeypatch, capsys, fresh_metrics):
    # Given BusinessMetrics=off (the template's default)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    # When a warm container counts one outcome 150 times and flushes
    for _ in range(150):
        observability.count("AccessGranted")
    fresh_metrics.flush_metrics()
    # Then no EMF document was printed (each would be a billed custom metric)
    assert "_aws" not in capsys.readouterr().out


def test_count_metrics_enabled_prints_the_metric(monkeypatch, capsys, fresh_metrics):
    # Given BusinessMetrics=on
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When an outcome is counted and flushed
    observability.count("AccessGranted")
    fresh_metrics.flush_metrics()
    # Then one EMF document names it
    out = capsys.readouterr().out
    assert '"AccessGranted"' in out and "_aws" in out
