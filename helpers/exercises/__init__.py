"""The "Your turn" exercises: a checker per notebook that names the mistake.

``checker`` holds what they share (``evaluate``, the ``Recorder`` client that
sees which commands a solution sent, ``show_solution``); ``leaderboard``,
``streams``, ``ratelimit`` and ``production`` check notebooks 01 to 04.
"""
