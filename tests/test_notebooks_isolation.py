"""After every notebook has run: the learner's keys are untouched, ours are gone.

The root ``conftest.py`` plants foreign keys in the session's Redis before any
notebook kernel starts; these tests run last (marker ``after_notebooks``).
"""

from __future__ import annotations

import pytest

from helpers.bench.sizes import settings


def _notebooks_ran(request: pytest.FixtureRequest) -> int:
    return sum(1 for item in request.session.items if str(item.path).endswith(".ipynb"))


@pytest.mark.after_notebooks
def test_notebooks_leave_foreign_keys_untouched(request, r, planted_foreign_keys):
    if not _notebooks_ran(request):
        pytest.skip("no notebook ran in this session (run `make test` for the whole suite)")
    assert {k: r.get(k) for k in planted_foreign_keys} == planted_foreign_keys


@pytest.mark.after_notebooks
def test_notebooks_leave_no_workshop_keys_behind(request, redis_url):
    import redis

    if not _notebooks_ran(request):
        pytest.skip("no notebook ran in this session (run `make test` for the whole suite)")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    leftovers = list(client.scan_iter(match=settings().prefix + "*"))
    assert leftovers == []
