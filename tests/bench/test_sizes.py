"""helpers.bench.sizes: the workshop's settings come from the environment, strictly."""

from __future__ import annotations

import pytest

from helpers.bench.sizes import SIZES, settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("WORKSHOP_SIZE", "WORKSHOP_PREFIX", "WORKSHOP_5M"):
        monkeypatch.delenv(name, raising=False)


def test_unset_size_means_workshop_with_the_course_sizes():
    config = settings()
    assert config.size == "workshop"
    assert not config.is_ci
    assert config.leaderboard_sizes == (1_000, 10_000, 100_000, 1_000_000)
    assert config.prefix == "workshop:"


def test_empty_size_means_workshop(monkeypatch):
    monkeypatch.setenv("WORKSHOP_SIZE", "  ")
    assert settings().size == "workshop"


@pytest.mark.parametrize("value", ["workshop", "WORKSHOP", " workshop "])
def test_workshop_size_is_read_case_and_space_insensitively(monkeypatch, value):
    monkeypatch.setenv("WORKSHOP_SIZE", value)
    assert settings().size == "workshop"


def test_ci_size_is_smaller_than_workshop_size_in_every_dimension(monkeypatch):
    workshop = settings()
    monkeypatch.setenv("WORKSHOP_SIZE", "ci")
    ci = settings()
    assert ci.size == "ci" and ci.is_ci
    assert max(ci.leaderboard_sizes) < max(workshop.leaderboard_sizes)
    assert ci.rank_samples < workshop.rank_samples
    assert ci.sql_rank_samples < workshop.sql_rank_samples
    assert ci.concurrency_writers <= workshop.concurrency_writers
    assert ci.concurrency_increments < workshop.concurrency_increments
    assert ci.memory_members < workshop.memory_members


@pytest.mark.parametrize("value", ["unknown", "large", "c i", "5m"])
def test_unknown_size_is_a_value_error_naming_the_choices(monkeypatch, value):
    monkeypatch.setenv("WORKSHOP_SIZE", value)
    with pytest.raises(ValueError, match="WORKSHOP_SIZE") as raised:
        settings()
    for size in SIZES:
        assert size in str(raised.value)


def test_custom_prefix_ending_with_colon_is_used(monkeypatch):
    monkeypatch.setenv("WORKSHOP_PREFIX", "course42:")
    assert settings().prefix == "course42:"


@pytest.mark.parametrize("value", ["", "workshop", "workshop:x", "workshop;"])
def test_prefix_not_ending_with_colon_is_a_value_error(monkeypatch, value):
    monkeypatch.setenv("WORKSHOP_PREFIX", value)
    with pytest.raises(ValueError, match="WORKSHOP_PREFIX"):
        settings()


def test_workshop_5m_adds_a_five_million_run_to_the_workshop_sizes(monkeypatch):
    monkeypatch.setenv("WORKSHOP_5M", "1")
    assert settings().leaderboard_sizes == (1_000, 10_000, 100_000, 1_000_000, 5_000_000)


@pytest.mark.parametrize("value", ["0", "", "yes"])
def test_workshop_5m_other_than_1_adds_nothing(monkeypatch, value):
    monkeypatch.setenv("WORKSHOP_5M", value)
    assert 5_000_000 not in settings().leaderboard_sizes


def test_workshop_5m_does_not_grow_the_ci_size(monkeypatch):
    monkeypatch.setenv("WORKSHOP_SIZE", "ci")
    monkeypatch.setenv("WORKSHOP_5M", "1")
    assert 5_000_000 not in settings().leaderboard_sizes


def test_settings_are_immutable():
    config = settings()
    with pytest.raises(AttributeError):
        config.size = "ci"  # type: ignore[misc]
