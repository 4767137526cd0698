"""The edge's gates on their own: size before decoding, UTF-8, JSON depth, media types, ids, secrets."""

from __future__ import annotations

import base64

import pytest

from membergate.domain.errors import InvalidRequestError
from membergate.http.edge import (
    FORM,
    JSON,
    MAX_JSON_DEPTH,
    ascii_equal,
    guard_body,
    is_id,
    json_depth,
    load_json,
    raw_body,
)
from membergate.http.errors import PayloadTooLargeError, UnsupportedMediaTypeError, status_for

pytestmark = pytest.mark.unit


def event(body: str | None, *, encoded: bool = False, content_type: str | None = None) -> dict:
    return {"body": body, "isBase64Encoded": encoded, "headers": {"content-type": content_type} if content_type else {}}


def test_raw_body_base64_over_the_limit_is_refused_before_decoding():
    # Given a base64 body whose encoded length alone says it is too large
    encoded = base64.b64encode(b"a" * 1001).decode()
    # Then it is a 413, plain or encoded, and exactly the limit passes
    with pytest.raises(PayloadTooLargeError) as refused:
        raw_body(event(encoded, encoded=True), 1000)
    assert status_for(refused.value) == 413
    with pytest.raises(PayloadTooLargeError):
        raw_body(event("a" * 1001), 1000)
    assert raw_body(event(base64.b64encode(b"a" * 1000).decode(), encoded=True), 1000) == b"a" * 1000


def test_raw_body_multibyte_text_counts_bytes_not_characters():
    with pytest.raises(PayloadTooLargeError):
        raw_body(event("é" * 600), 1000)  # 600 characters, 1,200 bytes


def test_raw_body_invalid_base64_is_400():
    with pytest.raises(InvalidRequestError, match="base64"):
        raw_body(event("not base64!!", encoded=True), 1000)


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 5_000 + "]" * 5_000, '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)])
def test_load_json_too_deep_is_400_never_recursion_error(text):
    with pytest.raises(InvalidRequestError, match="nests deeper"):
        load_json(text)


@pytest.mark.parametrize("text", ["{oops", "", "\ufeff{}"])
def test_load_json_invalid_is_400(text):
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        load_json(text)


@pytest.mark.parametrize("text", ["1" * 5000, '{"seats": -' + "9" * 101 + "}", "[" + "7" * 4301 + "]"])
def test_load_json_integer_too_long_is_400_naming_the_number_as_too_large(text):
    # Given valid JSON holding an integer of more than 100 digits; When it is loaded; Then 400 saying so
    with pytest.raises(InvalidRequestError, match=r"number too large \(\d+ digits; at most 100\)") as raised:
        load_json(text)
    assert raised.value.field == "body" and "not valid JSON" not in raised.value.message


def test_load_json_integer_of_100_digits_and_long_floats_still_load():
    # Given the longest integer allowed and a float literal with many digits; When loaded; Then both parse
    assert load_json("9" * 100) == int("9" * 100)
    assert load_json("1." + "5" * 400) == pytest.approx(1.5555555555)


def test_json_depth_counts_containers_iteratively():
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [{"b": []}]}) == 4
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    assert json_depth(deep) == 50_001  # no recursion, no RecursionError


@pytest.mark.parametrize(
    "content_type,refused",
    [(None, False), ("application/json", False), ("application/merge-patch+json", False),
     ("APPLICATION/JSON; charset=utf-8", False), ("text/plain", True), ("multipart/form-data; boundary=x", True)],
)
def test_guard_body_accepts_json_types_only_when_only_json_is_read(content_type, refused):
    gate = lambda: guard_body(event('{"a": 1}', content_type=content_type), 1000, (JSON,))  # noqa: E731
    if refused:
        with pytest.raises(UnsupportedMediaTypeError):
            gate()
    else:
        gate()


def test_guard_body_form_is_not_parsed_as_json_and_empty_bodies_pass():
    guard_body(event("plan_id=pln_1&x=[[[", content_type=FORM), 1000, (JSON, FORM))
    guard_body(event(None, content_type="text/plain"), 1000, (JSON,))


def test_guard_body_not_utf8_is_400():
    body = base64.b64encode(b'{"a": "\xff"}').decode()
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        guard_body(event(body, encoded=True, content_type=JSON), 1000, (JSON,))


@pytest.mark.parametrize("value,ok", [("pln_1", True), ("tok-AZaz09_", True), ("", False), ("a" * 129, False),
                                      ("pln\r\n", False), ("pln 1", False), ("é", False), ("../x", False), (None, False)])
def test_is_id_allows_only_token_characters(value, ok):
    assert is_id(value) is ok


@pytest.mark.parametrize("given", ["s\u00e9cret", "secret\u00a0", "\udcff", "", "secre"])
def test_ascii_equal_non_ascii_or_different_is_false_never_an_error(given):
    assert ascii_equal(given, "secret") is False
    assert ascii_equal("secret", "secret") is True
