"""Secrets come from SSM SecureString parameters (moto), cached; the token cipher follows TokenSealing."""

from __future__ import annotations

import boto3
import pytest

from membergate import bootstrap
from membergate.adapters.aws import DataKeyTokenCipher, KmsTokenCipher
from membergate.adapters.secrets import CACHE_SECONDS, CachedSecrets
from tests.support.aws import REGION, aws_stack, put_secret

pytestmark = pytest.mark.integration


class CountingFactory:
    def __init__(self):
        self.calls = 0

    def __call__(self, service: str):
        client = boto3.client(service, region_name=REGION)
        original = client.get_parameter

        def counted(**kwargs):
            self.calls += 1
            return original(**kwargs)

        client.get_parameter = counted
        return client


def test_cached_secrets_ssm_value_read_once_per_cache_period():
    with aws_stack():
        # Given a SecureString parameter and a cache on a controllable clock
        put_secret("/membergate/admin-token", "first")
        now = [1000.0]
        factory = CountingFactory()
        secrets = CachedSecrets(factory, clock=lambda: now[0])
        # When it is read twice, rotated, read within the period, then after it
        first, again = secrets.get("/membergate/admin-token"), secrets.get("/membergate/admin-token")
        put_secret("/membergate/admin-token", "second")
        within = secrets.get("/membergate/admin-token")
        now[0] += CACHE_SECONDS
        after = secrets.get("/membergate/admin-token")
        # Then one read per period, decrypted, and the rotation is seen after the period
        assert (first, again, within, after) == ("first", "first", "first", "second")
        assert factory.calls == 2


def test_bootstrap_cipher_default_seals_with_the_data_key_parameter():
    with aws_stack():
        # When the join function's dependencies are built with the template's default sealing
        cipher = bootstrap.join().cipher
        # Then tokens are sealed with the data key read from Parameter Store, and open again
        assert isinstance(cipher, DataKeyTokenCipher)
        assert cipher.open(cipher.seal(b"tokens")) == b"tokens"


def test_bootstrap_cipher_kms_option_seals_with_the_kms_key():
    with aws_stack(TOKEN_SEALING="kms") as stack:
        # When TokenSealing=kms
        cipher = bootstrap.dispatcher().dispatcher.cipher
        # Then the dedicated KMS key seals and opens (moto's KMS)
        assert isinstance(cipher, KmsTokenCipher)
        sealed = cipher.seal(b"tokens")
        assert cipher.open(sealed) == b"tokens"
        assert stack.key_id
