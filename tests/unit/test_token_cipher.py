"""Members' Discord tokens sealed with a data key from a SecureString: round trip, tampering, rotation."""

from __future__ import annotations

import base64

import pytest

from membergate.adapters.aws import DataKeyTokenCipher
from membergate.domain.errors import PermanentError

pytestmark = pytest.mark.unit

KEY_1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
KEY_2 = "k2:" + base64.b64encode(bytes(range(100, 132))).decode()
TOKENS = b'{"access_token": "at-123", "refresh_token": "rt-456"}'


class KeyParameter:
    """The SSM parameter's value as the cached reader returns it; the creator may rotate it."""

    def __init__(self, value: str):
        self.value = value
        self.reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return self.value


def test_data_key_cipher_seal_then_open_returns_the_plaintext():
    # Given a cipher over one data key
    cipher = DataKeyTokenCipher(KeyParameter(KEY_1))
    # When tokens are sealed and opened again
    sealed = cipher.seal(TOKENS)
    # Then the plaintext comes back and is not readable in the sealed blob
    assert cipher.open(sealed) == TOKENS
    assert b"at-123" not in sealed and b"rt-456" not in sealed


def test_data_key_cipher_same_plaintext_twice_seals_differently():
    # Given one cipher
    cipher = DataKeyTokenCipher(KeyParameter(KEY_1))
    # When the same tokens are sealed twice
    first, second = cipher.seal(TOKENS), cipher.seal(TOKENS)
    # Then the blobs differ (a fresh nonce each time) and both open
    assert first != second
    assert cipher.open(first) == cipher.open(second) == TOKENS


@pytest.mark.parametrize("position", [0, 1, 2, 5, 20, -1])
def test_data_key_cipher_tampered_blob_is_refused_with_a_reason(position):
    # Given a sealed blob with one byte changed (version, key id, nonce, ciphertext or tag)
    cipher = DataKeyTokenCipher(KeyParameter(KEY_1))
    sealed = bytearray(cipher.seal(TOKENS))
    sealed[position] ^= 0x01
    # When it is opened
    with pytest.raises(PermanentError) as refused:
        cipher.open(bytes(sealed))
    # Then it is refused, saying what the member must do
    assert refused.value.reason == "discord_authorization_unreadable"
    assert "reconnect Discord" in refused.value.message


def test_data_key_cipher_after_rotation_seals_with_new_key_and_opens_old_blobs():
    # Given tokens sealed under k1
    parameter = KeyParameter(KEY_1)
    cipher = DataKeyTokenCipher(parameter)
    old = cipher.seal(TOKENS)
    # When the creator rotates: k2 first (sealing), k1 still listed (opening)
    parameter.value = f"{KEY_2},{KEY_1}"
    new = cipher.seal(TOKENS)
    # Then both open, the new blob names k2 and opens without k1
    assert cipher.open(old) == cipher.open(new) == TOKENS
    assert new[2:4] == b"k2" and old[2:4] == b"k1"
    parameter.value = KEY_2
    assert cipher.open(new) == TOKENS


def test_data_key_cipher_blob_of_a_retired_key_is_refused():
    # Given tokens sealed under k1, then k1 removed from the parameter
    parameter = KeyParameter(KEY_1)
    cipher = DataKeyTokenCipher(parameter)
    sealed = cipher.seal(TOKENS)
    parameter.value = KEY_2
    # When they are opened / Then the member is told to reconnect
    with pytest.raises(PermanentError) as refused:
        cipher.open(sealed)
    assert refused.value.reason == "discord_authorization_unreadable"


def test_data_key_cipher_same_key_bytes_under_another_id_do_not_open():
    # The key id is authenticated with the data: relabelling a blob's key id is tampering.
    key_bytes = KEY_1.split(":", 1)[1]
    cipher = DataKeyTokenCipher(KeyParameter(f"k1:{key_bytes},k9:{key_bytes}"))
    sealed = cipher.seal(TOKENS)
    relabelled = sealed[:2] + b"k9" + sealed[4:]
    with pytest.raises(PermanentError):
        cipher.open(relabelled)


@pytest.mark.parametrize("value", ["", "k1:short", "k1:not base64!", "bad id:" + KEY_1.split(":")[1], KEY_1[3:]])
def test_data_key_cipher_malformed_parameter_names_the_fix(value):
    # Given a key parameter that does not hold "id:<base64 of 32 bytes>"
    cipher = DataKeyTokenCipher(KeyParameter(value))
    # When sealing / Then the error says how to fix the parameter
    with pytest.raises(PermanentError) as refused:
        cipher.seal(TOKENS)
    assert refused.value.reason == "token_keys_invalid"
    assert "docs/deploy.md" in refused.value.message


def test_data_key_cipher_reads_the_parameter_through_its_cache_each_time():
    # Rotation reaches a running instance: the cipher asks the (cached) reader on every use.
    parameter = KeyParameter(KEY_1)
    cipher = DataKeyTokenCipher(parameter)
    cipher.open(cipher.seal(TOKENS))
    assert parameter.reads == 2
