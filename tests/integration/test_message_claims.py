"""The message log tells when a message was claimed (a late retry looks for its first attempt from then), in DynamoDB as in the fake."""

from __future__ import annotations

import pytest

from membergate.domain.model import MessageKey, MessageStatus
from tests.support.aws import aws_stack
from tests.support.fakes import fake_stores

pytestmark = pytest.mark.integration
T0 = 1_800_000_000


@pytest.fixture(params=["dynamodb", "fake"])
def messages(request):
    if request.param == "fake":
        yield fake_stores().messages
        return
    with aws_stack():
        from membergate import bootstrap
        from membergate.config import ProcessorSettings

        yield bootstrap.stores(ProcessorSettings.from_env()).messages


def test_message_claimed_at_stays_the_first_claim_across_retries(messages):
    # Given a message claimed, then retrying twice and claimed again (a duplicate delivery)
    key = MessageKey("mbr_1", "welcome", "com_1")
    assert messages.claimed_at(key) is None
    messages.claim(key, T0)
    messages.finish(key, MessageStatus.RETRYING, "timed out", T0 + 20)
    messages.finish(key, MessageStatus.RETRYING, "502", T0 + 60)
    messages.claim(key, T0 + 90)
    # Then its claim time is the first one
    assert messages.claimed_at(key) == T0
