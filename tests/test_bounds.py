"""helpers.bounds: the one place a value is checked before anything is sent."""

from __future__ import annotations

import pytest

from helpers import bounds


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_at_least_refuses_anything_but_an_integer_of_at_least_the_minimum(value):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        bounds.at_least("n", value)


def test_counts_returns_a_tuple_and_refuses_none_or_a_bad_count():
    assert bounds.counts("workers", [1, 2, 4]) == (1, 2, 4)
    assert bounds.counts("workers", range(1, 3)) == (1, 2)
    with pytest.raises(ValueError, match="at least one"):
        bounds.counts("workers", ())
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        bounds.counts("workers", (1, 0))


def test_a_huge_integer_is_named_by_its_size_not_printed():
    with pytest.raises(ValueError, match="an integer of 16,610 bits"):
        bounds.at_least("n", -(10**5000))
