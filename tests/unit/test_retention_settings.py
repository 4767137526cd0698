"""Retention settings: defaults, and values that would break the admin API or are not numbers are refused."""

from __future__ import annotations

import pytest

from membergate.config import RetentionSettings, SettingsError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("env,field", [({"LEDGER_RETENTION_DAYS": "31"}, "LEDGER_RETENTION_DAYS"),
                                       ({"MESSAGE_RETENTION_DAYS": "0"}, "MESSAGE_RETENTION_DAYS"),
                                       ({"MESSAGE_RETENTION_DAYS": "a year"}, "MESSAGE_RETENTION_DAYS")])
def test_retention_settings_refuse_what_would_break_the_api_or_is_not_a_number(env, field):
    assert RetentionSettings.from_env({}) == RetentionSettings(400, 400)
    with pytest.raises(SettingsError, match=field):
        RetentionSettings.from_env(env)
