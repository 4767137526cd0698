"""Stripe signature verification: raw bytes, every v1, rotation, 300 s tolerance on the wall clock."""

from __future__ import annotations

import pytest

from membergate.domain.errors import SignatureError
from membergate.domain.signature import compute_signature, signature_header, verify_signature

pytestmark = pytest.mark.unit

BODY = b'{"id": "evt_1", "object": "event"}'
NOW = 1_800_000_000


def test_verify_valid_signature_passes():
    verify_signature(BODY, signature_header("whsec_a", NOW, BODY), ["whsec_a"], NOW)


def test_verify_tolerance_boundary_300_ok_301_rejected():
    # Given signatures made 300 and 301 seconds ago
    # Then 300 s is accepted and 301 s is not
    verify_signature(BODY, signature_header("whsec_a", NOW - 300, BODY), ["whsec_a"], NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(BODY, signature_header("whsec_a", NOW - 301, BODY), ["whsec_a"], NOW)


def test_verify_any_v1_in_header_matches():
    # Given a header carrying a stale v1 and the right one (Stripe sends several during rotation)
    good = compute_signature("whsec_a", NOW, BODY)
    header = f"t={NOW},v1={'0' * 64},v0=abc,v1={good}"
    verify_signature(BODY, header, ["whsec_a"], NOW)


def test_verify_previous_secret_accepted_during_rotation():
    header = signature_header("whsec_old", NOW, BODY)
    verify_signature(BODY, header, ["whsec_new", "whsec_old"], NOW)
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, ["whsec_new"], NOW)


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", f"t={NOW}", "v1=abc", f"t=notanumber,v1={'a' * 64}"],
)
def test_verify_missing_or_malformed_header_rejected(header):
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, ["whsec_a"], NOW)


def test_verify_reserialised_body_rejected():
    # Given a signature over the raw bytes
    header = signature_header("whsec_a", NOW, BODY)
    # When the body is re-serialised (same JSON, other bytes)
    # Then the signature no longer matches
    with pytest.raises(SignatureError):
        verify_signature(b'{"id":"evt_1","object":"event"}', header, ["whsec_a"], NOW)


@pytest.mark.parametrize("forged", ["é" * 64, "\u0660" * 64, "ff\u00a0", "\udcff"])
def test_verify_non_ascii_v1_beside_a_valid_one_is_refused_not_raised(forged):
    # Given a header with a non-ASCII v1 before a valid one (compare_digest raises TypeError on such str)
    good = compute_signature("whsec_a", NOW, BODY)
    header = f"t={NOW},v1={forged},v1={good}"
    # When it is verified, then it is a SignatureError (400), never another exception (500)
    with pytest.raises(SignatureError, match="non-ASCII"):
        verify_signature(BODY, header, ["whsec_a"], NOW)


def test_verify_non_ascii_digits_in_timestamp_are_refused():
    # Given Arabic-Indic digits, which int() would happily read as a timestamp
    header = f"t={''.join(chr(0x0660 + int(d)) for d in str(NOW))},v1={compute_signature('whsec_a', NOW, BODY)}"
    # Then the header is refused
    with pytest.raises(SignatureError):
        verify_signature(BODY, header, ["whsec_a"], NOW)
