"""The pure rules of `membergate init`: key modes, plan keys, webhook drift, samconfig.toml merging."""

from __future__ import annotations

import tomllib

import pytest

from membergate.domain.errors import InvalidRequestError
from membergate.domain.setup import (
    SetupError,
    dump_toml,
    endpoint_drift,
    merge_samconfig,
    parse_overrides,
    plan_key,
    stripe_key_mode,
)

HANDLED = ("invoice.paid", "customer.deleted", "checkout.session.completed")


@pytest.mark.parametrize("key, mode", [("sk_test_abcdefgh12", "test"), ("rk_" + "live_ABCDEFGH12345", "live")])
def test_stripe_key_mode_well_formed_keys_answer_their_mode(key, mode) -> None:
    # Given / When / Then
    assert stripe_key_mode(key) == mode


@pytest.mark.parametrize("key", ["", "pk_test_abcdefgh12", "sk_test_abc", "sk_test_abcdefgh\n12", "whsec_abcdefgh12",
                                 "sk_test_ábcdefgh12", "sk_prod_abcdefgh12"])
def test_stripe_key_mode_other_strings_are_refused_with_where_to_find_a_key(key) -> None:
    # Given / When
    with pytest.raises(InvalidRequestError) as refused:
        stripe_key_mode(key)
    # Then the message says where keys are
    assert refused.value.field == "stripe_key" and "API keys" in refused.value.message


def test_plan_key_slugs_names_and_refuses_names_without_letters() -> None:
    # Given / When / Then
    assert plan_key("  Gold Members! ") == "gold-members"
    with pytest.raises(InvalidRequestError):
        plan_key("¿¡")


def test_endpoint_drift_names_missing_and_extra_events_and_version() -> None:
    # Given an endpoint missing one handled event, with one extra, on another version, disabled
    drift = endpoint_drift(["invoice.paid", "customer.deleted", "charge.captured"], "2020-08-27", "disabled",
                           HANDLED, "2026-10-28.endive")
    # Then each difference is named
    assert drift.missing == ("checkout.session.completed",) and drift.extra == ("charge.captured",)
    assert drift.wrong_version and drift.disabled and not drift.ok


def test_endpoint_drift_exact_events_and_version_is_ok() -> None:
    # Given / When / Then
    assert endpoint_drift(list(reversed(HANDLED)), "v1", "enabled", HANDLED, "v1").ok


def test_endpoint_drift_wildcard_misses_nothing_but_is_extra() -> None:
    # Given an endpoint sending every event
    drift = endpoint_drift(["*"], "v1", "enabled", HANDLED, "v1")
    # Then nothing is missing, but it is not exact
    assert drift.missing == () and drift.extra == ("*",)


def test_parse_overrides_reads_sam_string_and_list_forms() -> None:
    # Given / When / Then
    assert parse_overrides('A="x y" B=z C=""') == {"A": "x y", "B": "z", "C": ""}
    assert parse_overrides(["A=1", 'B="2"']) == {"A": "1", "B": "2"}
    assert parse_overrides(42) == {}


def test_merge_samconfig_empty_file_gets_a_deployable_config() -> None:
    # Given / When
    text = merge_samconfig("", "gate", "eu-west-1", {"StripeMode": "test"})
    # Then SAM's layout with the stack, region and overrides
    params = tomllib.loads(text)["default"]["deploy"]["parameters"]
    assert params["stack_name"] == "gate" and params["region"] == "eu-west-1"
    assert params["capabilities"] == "CAPABILITY_IAM" and parse_overrides(params["parameter_overrides"]) == {
        "StripeMode": "test"}


def test_merge_samconfig_hostile_values_round_trip() -> None:
    # Given values with quotes, backslashes, newlines and control characters in the creator's file
    existing = dump_toml({"default": {"deploy": {"parameters": {"tags": 'a="b" \\ \n\x01', "n": [1, 2]}}},
                          "prod": {"deploy": {"parameters": {"stack_name": "prod-gate"}}}})
    # When merged
    data = tomllib.loads(merge_samconfig(existing, "gate", "us-east-1", {}))
    # Then every value survives and other environments are untouched
    assert data["default"]["deploy"]["parameters"]["tags"] == 'a="b" \\ \n\x01'
    assert data["default"]["deploy"]["parameters"]["n"] == [1, 2]
    assert data["prod"]["deploy"]["parameters"]["stack_name"] == "prod-gate"


def test_merge_samconfig_invalid_toml_says_what_to_do() -> None:
    # Given / When / Then
    with pytest.raises(SetupError) as refused:
        merge_samconfig("[default\nx = ", "gate", "us-east-1", {})
    assert "samconfig.toml is not valid TOML" in refused.value.message
