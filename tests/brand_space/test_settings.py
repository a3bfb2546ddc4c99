"""The brand space's settings: the grace and overlap periods of a rotation."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config

BASE = {"SECRET_KEY": "x" * 40, "PUBLIC_BASE_URL": "https://vrm.example"}


def test_a_rotation_keeps_the_old_secret_a_day_by_default():
    config = load_config(BASE)
    assert config["CLIENT_SECRET_GRACE_HOURS"] == 24
    assert config["WEBHOOK_SECRET_OVERLAP_HOURS"] == 24


@pytest.mark.parametrize("name", ["CLIENT_SECRET_GRACE_HOURS", "WEBHOOK_SECRET_OVERLAP_HOURS"])
@pytest.mark.parametrize("value", [-1, 721])
def test_a_period_out_of_range_is_refused_at_start(name, value):
    with pytest.raises(ConfigError, match=f"VRM_{name} must be between 0 and 720"):
        load_config(BASE | {name: value})


def test_no_grace_at_all_is_allowed():
    assert load_config(BASE | {"CLIENT_SECRET_GRACE_HOURS": 0})["CLIENT_SECRET_GRACE_HOURS"] == 0
