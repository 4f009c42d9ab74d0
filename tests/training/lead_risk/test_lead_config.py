"""The lead config's own keys that the service reads at request time."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError
from training.lead.config import load_lead_config


def _edited(tmp_path: Path, config: Path, old: str, new: str) -> Path:
    """lead.toml with one edit, beside links to the files it names."""
    tmp_path.mkdir()
    for source in config.parent.iterdir():
        (tmp_path / source.name).symlink_to(source)
    (tmp_path / "lead.toml").unlink()
    text = config.read_text()
    assert old in text
    (tmp_path / "lead.toml").write_text(text.replace(old, new))
    return tmp_path / "lead.toml"


def test_the_city_time_zone_is_read_and_checked(tmp_path: Path, lead_config_path: Path) -> None:
    assert load_lead_config(lead_config_path).timezone == "America/Chicago"
    unzoned = _edited(tmp_path / "a", lead_config_path, 'timezone = "America/Chicago"\n', "")
    assert load_lead_config(unzoned).timezone == "UTC"  # the documented default
    wrong = _edited(tmp_path / "b", lead_config_path, 'timezone = "America/Chicago"', 'timezone = "Central"')
    with pytest.raises(ConfigError, match=r"city\.timezone: unknown IANA time zone 'Central'"):
        load_lead_config(wrong)
