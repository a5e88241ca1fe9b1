"""Checks for notebook 05's "Your turn" exercises (security and scaling out).

In the notebook: ``from helpers.exercises import scaling_out as check``, then

1. ``check.producer_rules(producer_rules)``: ACL rules for a user that may only XADD to
   the orders streams, tried command by command on a throwaway server the check starts;
2. ``check.region_board_key(region_board_key)``: key names whose hash tag puts one week's
   region boards in one cluster slot, so ``ZUNIONSTORE`` of them works on a cluster.

Neither needs the learner's Redis: ACLs change a whole server, so the check starts its own and
stops it after, and slots are computed (CRC16, as a cluster does). Each returns a
``helpers.exercises.checker.Verdict``; solutions are in ``notebooks/solutions/05_*.py``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import redis
from redis.crc import key_slot

from helpers import servers
from helpers.bench.sizes import settings
from helpers.exercises.checker import LearnerRaised, NotDone, Verdict, Wrong, attempt
from helpers.keyspace import key as workshop_key
from helpers.production import security
from helpers.production.cluster import hash_tag

__all__ = ["producer_rules", "region_board_key"]


def _evaluate_without_redis(fn: object, *, name: str, body: Callable[[Callable], str]) -> Verdict:
    """``checker.evaluate`` for a check that uses no Redis of the learner's (no scratch keys)."""
    if not callable(fn):
        return Verdict(False, False, f"✗ Pass your function itself: check.{name}({name}); got {fn!r}.")
    try:
        return Verdict(True, True, "✓ Correct: " + body(fn))
    except NotDone:
        return Verdict(
            False, False, f"Not done yet: {name} returned None. Write it above, or open the solution below."
        )
    except (Wrong, LearnerRaised) as error:
        return Verdict(False, True, f"✗ {error}")
    except Exception as error:  # noqa: BLE001 - a check reports, it never raises at the learner
        return Verdict(False, True, f"✗ The check stopped on {type(error).__name__}: {error}.")


def _slot(key: str) -> int:
    return key_slot(key.encode())


# --- a key design for a cluster ---------------------------------------------------------
WEEKS = ("2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05")
REGIONS = ("eu", "us", "apac")
UNION = "world"  # ZUNIONSTORE's destination is one more key: it must share the slot too


def region_board_key(fn: object) -> Verdict:
    """``region_board_key(week, region) -> str``: one week's region boards (and their union) share a slot."""
    return _evaluate_without_redis(fn, name="region_board_key", body=_region_board_key)


def _region_board_key(fn) -> str:
    prefix = settings().prefix
    keys: dict[tuple[str, str], str] = {}
    for week in WEEKS:
        for region in (*REGIONS, UNION):
            shown = f"region_board_key({week!r}, {region!r})"
            answer = attempt(fn, week, region, shown=shown)
            if answer is None and not keys:
                raise NotDone
            if not isinstance(answer, str) or not answer:
                raise Wrong(f"{shown} returned {answer!r}: return the key name, a non-empty string.")
            if not answer.startswith(prefix):
                raise Wrong(
                    f"{shown} returned {answer!r}, outside the workshop's keys: start it with {prefix!r} "
                    '(helpers.keyspace.key("lb", ...) adds it), so clean-up can find it.'
                )
            keys[week, region] = answer
    _distinct(keys)
    week = WEEKS[0]
    board_keys = [keys[week, region] for region in (*REGIONS, UNION)]
    slots = {region: _slot(keys[week, region]) for region in (*REGIONS, UNION)}
    if len(set(slots.values())) > 1:
        raise Wrong(_crossslot_hint(week, board_keys, slots))
    week_slots = {w: _slot(keys[w, REGIONS[0]]) for w in WEEKS}
    tag = hash_tag(board_keys[0])
    if len(set(week_slots.values())) == 1:
        raise Wrong(
            f"every week's boards hash to slot {week_slots[week]} (the hash tag {{{tag}}} is the same for "
            f"all {len(WEEKS)} weeks): ZUNIONSTORE works, but one node holds every board of every week "
            "while the others wait. Tag by what the boards of one union share and other unions do not: "
            "the week."
        )
    return (
        f"the boards of {week} ({', '.join(REGIONS)} and the {UNION} union) all hash to slot {slots[UNION]} "
        f"(their hash tag is {{{tag}}}), so ZUNIONSTORE of them runs on a cluster; {len(WEEKS)} weeks "
        f"spread over {len(set(week_slots.values()))} slots, and every key is under {prefix!r}."
    )


def _distinct(keys: dict[tuple[str, str], str]) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for (week, region), key in keys.items():
        if key in seen:
            other_week, other_region = seen[key]
            differs = "region" if other_week == week else "week"
            raise Wrong(
                f"region_board_key({other_week!r}, {other_region!r}) and region_board_key({week!r}, "
                f"{region!r}) are both {key!r}: each {differs} needs a board of its own (put the {differs} "
                "in the key)."
            )
        seen[key] = (week, region)


def _crossslot_hint(week: str, board_keys: list[str], slots: dict[str, int]) -> str:
    where = ", ".join(f"{region} → slot {slot}" for region, slot in slots.items())
    union = board_keys[-1]
    said = (
        f"ZUNIONSTORE {union} {len(REGIONS)} {' '.join(board_keys[:-1])} would fail on a cluster with "
        f"CROSSSLOT (keys in request don't hash to the same slot): {where}."
    )
    tags = [hash_tag(key) for key in board_keys]
    if any("{}" in key for key in board_keys) and all(tag is None for tag in tags):
        return (
            f"{said} Empty braces are no hash tag: with nothing between {{ and }}, Redis hashes the whole "
            f"key. Put the week between them: {{{week}}}."
        )
    if all(tag is None for tag in tags):
        return (
            f"{said} Without a hash tag the whole key is hashed, so each board lands anywhere. Put the "
            f"part they share between braces, {{{week}}}: only that part is hashed."
        )
    regions = (*REGIONS, UNION)
    if all(tag is not None and region in tag for tag, region in zip(tags, regions)):
        return (
            f"{said} Your hash tags ({', '.join('{' + t + '}' for t in tags)}) hold the region, so each "
            f"region's board gets a slot of its own: put only what they share between the braces, {{{week}}}."
        )
    shown = ", ".join("{" + t + "}" if t is not None else "no tag" for t in tags)
    return f"{said} Their hash tags are {shown} (Redis hashes the first {{...}} only): make them the same."


# --- a least-privilege ACL user -----------------------------------------------------------
PRODUCER = "order-producer"


def producer_rules(fn: object) -> Verdict:
    """``producer_rules() -> list[str]``: ACL rules letting a user XADD to ``workshop:orders:*`` only."""
    return _evaluate_without_redis(fn, name="producer_rules", body=_producer_rules)


def _attempts() -> list[tuple[str, tuple, bool, str]]:
    """``(label, command, should it be allowed, what a wrong outcome is about: "key" or "command")``."""
    eu, us, note = (workshop_key("orders", name) for name in ("eu", "us", "note"))
    fields = ("order", "o-17", "total", "12.50")
    xadd_script = "return redis.call('XADD', KEYS[1], '*', 'order', 'o-18')"
    return [
        (f"XADD {eu}", ("XADD", eu, "*", *fields), True, "command"),
        (f"XADD {us} MAXLEN ~ 10000", ("XADD", us, "MAXLEN", "~", "10000", "*", *fields), True, "command"),
        ("XADD billing:invoices", ("XADD", "billing:invoices", "*", *fields), False, "key"),
        (
            f"XADD {workshop_key('payments', 'eu')}",
            ("XADD", workshop_key("payments", "eu"), "*", *fields),
            False,
            "key",
        ),
        (f"XRANGE {eu}", ("XRANGE", eu, "-", "+"), False, "command"),
        (f"XREAD {eu}", ("XREAD", "COUNT", "10", "STREAMS", eu, "0"), False, "command"),
        (f"XLEN {eu}", ("XLEN", eu), False, "command"),
        (f"XTRIM {eu} MAXLEN 0", ("XTRIM", eu, "MAXLEN", "0"), False, "command"),
        (f"SET {note}", ("SET", note, "x"), False, "command"),
        (f"DEL {eu}", ("DEL", eu), False, "command"),
        (f"EVAL a script that XADDs to {eu}", ("EVAL", xadd_script, "1", eu), False, "command"),
        ("KEYS *", ("KEYS", "*"), False, "command"),
        ("CONFIG GET maxmemory", ("CONFIG", "GET", "maxmemory"), False, "command"),
    ]


def _command_name(command: tuple) -> str:
    """How ACL rules name a command: ``xadd``, ``config|get``."""
    name = command[0].lower()
    return f"{name}|{command[1].lower()}" if name in ("config", "acl", "client", "script") else name


def _producer_rules(fn) -> str:
    rules = attempt(fn, shown="producer_rules()")
    if rules is None:
        raise NotDone
    if isinstance(rules, str):
        raise Wrong(
            f"producer_rules() returned the string {rules!r}: return a list of rules, one string each, "
            "such as ['~...', '+...']."
        )
    if not isinstance(rules, (list, tuple)) or not rules or not all(isinstance(r, str) and r for r in rules):
        raise Wrong(f"producer_rules() returned {rules!r}: return a non-empty list of ACL rule strings.")
    rules = [rule.strip() for rule in rules]
    secret = [rule for rule in rules if rule[:1] in (">", "<", "#")]
    if secret:
        raise Wrong(
            f"your rules set a password ({secret[0][:1]}...): leave passwords out of the rules; whoever "
            "creates the user sets one (the check sets a random one)."
        )
    if "nopass" in (rule.lower() for rule in rules):
        raise Wrong(
            f"'nopass' lets anyone who reaches the server log in as {PRODUCER} with any password. Leave the "
            "password to whoever creates the user (the check sets a random one)."
        )
    server = servers.start_redis_binary()
    try:
        return _try_as_producer(server, rules)
    finally:
        server.stop()


def _try_as_producer(server: servers.Throwaway, rules: list[str]) -> str:
    try:
        user = security.create_user(server, PRODUCER, rules, purpose="writes orders")
    except ValueError as error:
        raise Wrong(f"{error}.") from error
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    client = user.client()
    try:
        admin.xadd(workshop_key("orders", "eu"), {"order": "o-1", "total": "3.00"})
        try:
            # any user may AUTH, even one with no rights: this tests the login alone
            client.execute_command("AUTH", user.name, user.password)
        except redis.AuthenticationError as error:
            raise Wrong(
                f"the check could not log in as {PRODUCER}: it sets 'on' and a password, then your rules, "
                "and 'reset' or 'off' among them undoes that. Leave them out."
            ) from error
        refused, allowed = [], []
        for label, command, should_allow, about in _attempts():
            outcome, detail = _outcome(client, command)
            if should_allow and outcome != "allowed":
                refused.append((label, command, detail))
            elif not should_allow and outcome != "refused":
                allowed.append((label, command, about))
        problems = [_refused_hint(rules, refused, admin)] if refused else []
        if allowed:
            problems.append(_allowed_hint(rules, allowed, admin))
    finally:
        client.close()
        admin.close()
    if problems:
        raise Wrong(" ".join(problems))
    return (
        f"{PRODUCER} can XADD to the orders streams (trimming included) and was refused the other "
        f"{len(_attempts()) - 2} commands: other keys, reading its streams back, deleting, scripts, admin."
    )


def _outcome(client: redis.Redis, command: tuple) -> tuple[str, str]:
    """``allowed`` or ``refused`` (by the ACL, at the command or inside a script), and what Redis said."""
    try:
        client.execute_command(*command)
    except redis.ResponseError as error:
        refused = security.refusal(error)
        if refused:
            return "refused", refused
        return "allowed", str(error)  # the ACL let it through; the command itself then failed
    return "allowed", ""


def _refused_hint(rules: list[str], refused: list[tuple[str, tuple, str]], admin: redis.Redis) -> str:
    pattern = security.key_pattern("orders")
    labels = " and ".join(label for label, _, _ in refused)
    _, command, detail = refused[0]
    were = "was" if len(refused) == 1 else "were"
    said = f"{PRODUCER} cannot do its job: {labels} {were} refused ({detail})."
    if _granted_by(rules, _command_name(command), admin) is None:
        return f"{said} You forgot +xadd."
    if detail == "NOPERM: key":
        read_only = [rule for rule in _tokens(rules) if rule.upper().startswith("%R~")]
        if read_only and _key_granted_by(read_only, command[1]):
            return f"{said} {read_only[0]} gives read-only access and XADD writes: ~{pattern} (or %W~) does."
        return f"{said} No key pattern of yours covers that key: ~{pattern} does."
    return said


def _allowed_hint(rules: list[str], allowed: list[tuple[str, tuple, str]], admin: redis.Redis) -> str:
    pattern = security.key_pattern("orders")
    by_rule: dict[str, list[str]] = {}
    for label, command, about in allowed:
        if about == "key":
            rule = _key_granted_by(rules, command[1])
            label += f" (outside {pattern})"
        else:
            rule = _granted_by(rules, _command_name(command), admin)
        by_rule.setdefault(rule or "your rules", []).append(label)
    said = "; ".join(f"{rule} lets it {', '.join(labels)}" for rule, labels in by_rule.items())
    advice = []
    if any(rule.startswith("+@") or rule.lower() == "allcommands" for rule in by_rule):
        advice.append(
            "A category grants every command in it (ACL CAT <category> lists them): "
            "grant the one command, +xadd."
        )
    if any(about == "key" for _, _, about in allowed):
        advice.append(f"Give it its own keys only: ~{pattern}.")
    return f"{PRODUCER} can do more than its job: {said}. " + " ".join(advice)


def _tokens(rules: list[str]) -> list[str]:
    """The rules, with the ones inside selectors ``(...)`` taken out of their brackets."""
    return [token for rule in rules for token in rule.strip("()").split()]


def _granted_by(rules: list[str], command: str, admin: redis.Redis) -> str | None:
    """The first rule that grants ``command`` (``xadd``, ``config|get``), or None."""
    parent = command.split("|")[0]
    for rule in _tokens(rules):
        low = rule.lower()
        if low in ("allcommands", "+@all"):
            return rule
        if low.startswith("+@"):
            if command in admin.acl_cat(low[2:]) or parent in admin.acl_cat(low[2:]):
                return rule
        elif low.startswith("+") and low[1:] in (command, parent):
            return rule
    return None


def _key_granted_by(rules: list[str], key: str) -> str | None:
    """The first key rule (``~pattern``, ``%RW~pattern``, ``allkeys``) whose pattern matches ``key``."""
    for rule in _tokens(rules):
        if rule.lower() == "allkeys":
            return rule
        if rule.startswith("~") or (rule.startswith("%") and "~" in rule):
            glob = rule.split("~", 1)[1]
            if fnmatch.fnmatchcase(key, glob.replace("\\", "")):
                return rule
    return None
