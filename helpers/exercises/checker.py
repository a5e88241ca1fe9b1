"""What the notebooks' "Your turn" exercises share: verdicts, scratch keys, a client that is watched.

Each notebook's checks live in ``helpers.exercises.<module>`` (``leaderboard``, ``streams``,
``ratelimit``, ``production``). A notebook imports its module as ``check`` and calls
``check.<exercise>(r, <the learner's function>)``; its solution cells call ``solution``.

A check never raises at the learner. It returns a ``Verdict``, shown by Jupyter as one
line: "Not done yet: ..." for the untouched stub, "✗ <what is wrong>" for a wrong answer
(also when the learner's function raises), "✓ Correct: <what was verified>" when right.

Checks write only under ``workshop:exercise:{<exercise>}:`` and delete those keys before
and after, whatever happens. Their data is seeded and their times are passed in, so one
function gets the same verdict on every run, and the committed notebooks' outputs are
stable.

``Recorder`` is the learner's own client (same server, same connection pool) with every
command noted, so a check can see *how* an answer was computed (one script call, or a
read and then a write?) and can act as another client at the exact moment between two
of the learner's commands: a race made deterministic.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.client import Pipeline

from helpers import servers
from helpers.keyspace import cleanup
from helpers.keyspace import key as workshop_key

SOLUTIONS = servers.CHECKOUT / "notebooks" / "solutions"


@dataclass(frozen=True)
class Verdict:
    """What a check found: ``ok`` (right), ``done`` (the learner wrote something), ``message``."""

    ok: bool
    done: bool
    message: str

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # how IPython shows it: the message alone
        printer.text(self.message)


class Wrong(Exception):
    """Raised inside a check to stop with a message saying what is wrong."""


class NotDone(Exception):
    """Raised inside a check when the learner's function returned None (the stub)."""


class LearnerRaised(Exception):
    """The learner's function raised; the message says which call and what."""


def evaluate(
    r: redis.Redis,
    fn: object,
    *,
    name: str,
    scratch: str,
    body: Callable[[redis.Redis, Callable, str], str],
    not_done_hint: str = "",
) -> Verdict:
    """Run ``body(r, fn, prefix)`` with clean scratch keys and turn its outcome into a ``Verdict``.

    ``body`` returns what was verified (shown after "✓ Correct: ") or raises ``Wrong``,
    ``NotDone`` or ``LearnerRaised``. Any other exception is reported as a message too: a
    learner's odd answer (a key of the wrong type, say) may trip the check's own reads.
    """
    if not callable(fn):
        return Verdict(False, False, f"✗ Pass your function itself: check.{name}(r, {name}); got {fn!r}.")
    prefix = scratch_prefix(scratch)
    cleanup(r, prefix)
    try:
        return Verdict(True, True, "✓ Correct: " + body(r, fn, prefix))
    except NotDone:
        message = f"Not done yet: {name} returned None. Write it above, or open the solution below."
        return Verdict(False, False, message + (" " + not_done_hint if not_done_hint else ""))
    except (Wrong, LearnerRaised) as error:
        return Verdict(False, True, f"✗ {error}")
    except Exception as error:  # noqa: BLE001 - a check reports, it never raises at the learner
        return Verdict(
            False,
            True,
            f"✗ The check stopped on {type(error).__name__}: {error}. "
            f"Does {name} leave its keys in the shape the task asks for?",
        )
    finally:
        cleanup(r, prefix)


def scratch_prefix(exercise: str) -> str:
    """``workshop:exercise:{<exercise>}:``: the hash tag keeps an exercise's keys on one cluster slot."""
    return workshop_key("exercise", "{" + exercise + "}") + ":"


def attempt(fn: Callable, *args, shown: str):
    """Call the learner's function; if it raises, stop the check with what it raised and on which call."""
    try:
        return fn(*args)
    except redis.WatchError as error:
        raise LearnerRaised(
            f"{shown} raised WatchError: another client changed a WATCHed key before your EXEC. "
            "Run the transaction again when that happens (r.transaction(...) retries for you)."
        ) from error
    except Exception as error:  # noqa: BLE001 - the learner's error becomes the message
        raise LearnerRaised(f"{shown} raised {type(error).__name__}: {error}") from error


def number(value: float) -> str:
    """A score as a person writes it: 58, 61.25."""
    return f"{value:g}" if isinstance(value, numbers.Real) else repr(value)


def solution_path(name: str) -> Path:
    """``solutions/<name>.py`` beside the notebook (the kernel's working directory), else the repository's."""
    path = Path("solutions", f"{name}.py")
    return path if path.is_file() else SOLUTIONS / f"{name}.py"


def show_solution(name: str) -> None:
    """Print ``solutions/<name>.py``."""
    print(f"# notebooks/solutions/{name}.py\n\n{solution_path(name).read_text().strip()}\n")


def solution(name: str, check: Callable[[], object]) -> None:
    """A button that, only when clicked, shows ``solutions/<name>.py``, loads it and runs ``check``.

    "Run All" runs this cell too, so the solution must wait for a click: it is
    printed, run into the notebook's namespace with ``%run -i`` (it replaces the
    learner's function of the same name) and checked there. Without a widget
    frontend (a console, a static page) the cell says how to see it instead.
    """
    import ipywidgets as widgets
    from IPython import get_ipython
    from IPython.display import display

    path = solution_path(name)
    button = widgets.Button(description="Show the solution", icon="eye", tooltip=f"solutions/{name}.py")
    shown = widgets.Output()

    def reveal(_button) -> None:
        button.disabled = True
        with shown:
            show_solution(name)
            get_ipython().run_line_magic("run", f"-i {path}")
            display(check())  # a callback's value is not shown by itself

    button.on_click(reveal)
    display(widgets.VBox([button, shown]))


class Recorder(redis.Redis):
    """The learner's client, watched: the same server and connection pool, every command noted.

    ``sent`` holds ``(batch, how, command, first_argument)``, ``how`` being ``"call"``
    (a command on its own), ``"watched"`` (after WATCH, before MULTI), ``"multi"`` (inside
    MULTI/EXEC) or ``"pipeline"`` (batched, not atomic); commands sent together share a
    ``batch`` number. ``after(how, args)`` runs after each command or batch went through.
    """

    def __init__(self, r: redis.Redis, after: Callable[[str, tuple], None] | None = None):
        super().__init__(connection_pool=r.connection_pool)
        self.sent: list[tuple[int, str, str, object]] = []
        self._after = after
        self._batches = 0

    def execute_command(self, *args, **options):
        reply = super().execute_command(*args, **options)
        self.note("call", [args])
        return reply

    def pipeline(self, transaction: bool = True, shard_hint=None) -> Pipeline:
        return _RecordingPipeline(self, transaction, shard_hint)

    def note(self, how: str, commands: list[tuple]) -> None:
        self._batches += 1
        for args in commands:
            self.sent.append((self._batches, how, str(args[0]).upper(), args[1] if len(args) > 1 else None))
        if self._after is not None:
            for args in commands:
                self._after(how, args)

    def commands(self) -> list[str]:
        return [command for _, _, command, _ in self.sent]


class _RecordingPipeline(Pipeline):
    def __init__(self, recorder: Recorder, transaction: bool, shard_hint):
        super().__init__(recorder.connection_pool, recorder.response_callbacks, transaction, shard_hint)
        self._recorder = recorder

    def immediate_execute_command(self, *args, **options):
        reply = super().immediate_execute_command(*args, **options)
        self._recorder.note("watched", [args])
        return reply

    def execute(self, raise_on_error: bool = True):
        commands = [args for args, _ in self.command_stack]
        how = "multi" if (self.transaction or self.explicit_transaction) else "pipeline"
        replies = super().execute(raise_on_error)
        if commands:
            self._recorder.note(how, commands)
        return replies


SCRIPT_COMMANDS = {
    "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "SCRIPT LOAD", "SCRIPT EXISTS",
}  # fmt: skip


def not_one_script(recorder: Recorder, start: int) -> list[str]:
    """The commands sent since ``recorder.sent[start]`` that are not a script call (empty: one script)."""
    return [command for _, _, command, _ in recorder.sent[start:] if command not in SCRIPT_COMMANDS]
