"""The local stack's functions share one process: each consumer thread's log lines keep its own keys."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from infra.local.stack import _log_keys_per_thread
from membergate.observability import logger

pytestmark = pytest.mark.unit


@pytest.fixture
def captured():
    formatter = logger.registered_formatter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)
    formatter.__dict__.pop("append_keys", None)  # back to the process-wide keys of a real Lambda
    formatter.thread_safe_clear_keys()


def test_local_stack_two_functions_logging_at_once_each_line_names_its_own_function(captured):
    # Given the local stack's per-thread log keys, and two "functions" in two threads that each append
    # their name, then wait for the other to have appended its own before logging
    _log_keys_per_thread()
    both_named = threading.Barrier(2)

    def invoke(name: str) -> None:
        logger.append_keys(function_name=name)
        both_named.wait(timeout=5)
        logger.info("work done", extra={"expected": name})

    # When both log
    threads = [threading.Thread(target=invoke, args=(name,)) for name in ("dispatch-access", "process-billing")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    # Then each line carries the name of the function that wrote it, not the last one appended
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if "work done" in line]
    assert len(lines) == 2
    assert all(line["function_name"] == line["expected"] for line in lines)
