"""helpers.course.slides: where new subslide breaks go (the measuring itself runs in make test-browser)."""

import pytest

from helpers.course.slides import new_breaks

BUDGET = 680


def test_slides_that_fit_get_no_new_break():
    assert (
        new_breaks(["slide", "-", "-", "subslide", "-"], [True, False, False, True, False], [200] * 5, BUDGET)
        == []
    )


def test_an_overfull_slide_breaks_at_its_last_markdown_cell_once_a_third_is_filled():
    kinds = ["slide", "-", "-", "-", "-"]
    markdown = [True, False, True, False, False]
    heights = [150, 150, 100, 200, 200]  # 150 + 150 >= 680 / 3 before the markdown cell at 2
    assert new_breaks(kinds, markdown, heights, BUDGET) == [2]


def test_prose_too_early_in_the_slide_is_not_a_break_point():
    kinds = ["slide", "-", "-", "-"]
    markdown = [True, True, False, False]  # the markdown at 1 comes after only 100 px
    heights = [100, 100, 400, 300]
    assert new_breaks(kinds, markdown, heights, BUDGET) == [3]


def test_a_long_run_of_code_is_broken_as_often_as_it_needs():
    heights = [300] * 7
    breaks = new_breaks(["slide"] + ["-"] * 6, [False] * 7, heights, BUDGET)
    assert breaks == [2, 4, 6]
    starts = [0, *breaks, len(heights)]
    assert all(sum(heights[a:b]) <= BUDGET for a, b in zip(starts, starts[1:]))


def test_a_cell_taller_than_the_screen_gets_a_slide_of_its_own():
    assert new_breaks(["slide", "-", "-"], [True, False, False], [100, 900, 100], BUDGET) == [1, 2]


def test_existing_breaks_and_fragments_are_respected():
    kinds = ["slide", "fragment", "subslide", "-"]
    assert new_breaks(kinds, [True, False, True, False], [300, 300, 300, 300], BUDGET) == []


def test_lists_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="3 kinds, 2 markdown flags, 3 heights"):
        new_breaks(["slide", "-", "-"], [True, False], [1, 2, 3], BUDGET)
