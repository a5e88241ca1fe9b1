"""Measuring: benchmarks are notebook cells and a command line that print figures, never timed tests.

The tools:

* ``timing``: time many calls, percentiles, rates;
* ``workload``: the events every streams experiment sends, paced sending;
* ``processes``: worker processes started together behind a gate, every one joined;
* ``plots``: the course's figures (matplotlib);
* ``claims``: every claim of the course, its bound and the notebook it supports;
* ``sizes``: how big each experiment is (``WORKSHOP_SIZE=workshop|ci``).

One module of experiments per notebook: ``leaderboard`` (01), ``streams`` and
``outbox`` (02), ``ratelimit`` and ``race`` (03). Command line:
``python -m helpers.bench leaderboard|streams|ratelimit``.
"""
