"""Business rules on envelope bodies (the hub's ingest rules).

An envelope that parses but breaks one of these is *quarantined*: stored with the reason,
its seq consumed, and the city told through a REJECTION notice so it sends a corrected
revision. The first broken rule is reported, naming the field, so a person can fix it.

Before any rule of a kind, every 64-bit integer of the body is checked against the hub's
columns (signed 64-bit, on SQLite and PostgreSQL alike): a uint64 above 2^63 - 1 cannot be
stored or compared there, so such a record is quarantined naming the field rather than
failing the whole batch. Heartbeats are never quarantined (they are not records): their
out-of-range counts are clamped (``clamp_to_int64``; the hub ignores such a notice cursor).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from sync.limits import (
    BLANK,
    MAX_CHANNEL_CHARS,
    MAX_KEY_CHARS,
    MAX_PHONE_CHARS,
    MAX_SUGGESTION_CLASS_CHARS,
    MAX_TICKET_ID_CHARS,
    MAX_TIMESTAMP_NANOS,
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    LimitExceeded,
    blank,
    check_note,
    report_date_problem,
    timestamp_problem,
)

# Re-exported: the hub's rules are where readers look for these limits first.
from sync.limits import INT64_MAX as INT64_MAX
from sync.limits import MAX_ITEMS as MAX_ITEMS
from sync.limits import MAX_TEXT_CHARS as MAX_TEXT_CHARS
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, iso_date, parse_period, today_in


class RuleBroken(ValueError):
    """A business rule failed; the message names the field."""


def _period(period: pb.Period, today: date, field: str = "period") -> tuple[int, date]:
    try:
        kind, start = parse_period(period)
    except PeriodError as exc:
        # parse_period names the field as "period.kind" / "period.start": say it once, as
        # this body calls it.
        said = str(exc)
        if said.startswith("period."):
            raise RuleBroken(field + said[len("period") :]) from None
        raise RuleBroken(f"{field}: {said}") from None
    if start > today:
        raise RuleBroken(f"{field}.start {start} is in the future (today is {today})")
    problem = report_date_problem(start, f"{field}.start")
    if problem:
        raise RuleBroken(problem)
    return kind, start


def _at_most(part: int, whole: int, part_name: str, whole_name: str) -> None:
    if part > whole:
        raise RuleBroken(f"{part_name} ({part}) exceeds {whole_name} ({whole})")


def _key(value: str, field: str, most: int = MAX_KEY_CHARS) -> None:
    if len(value) > most:
        raise RuleBroken(f"{field} is {len(value)} characters; at most {most}")


def _text(value: str, field: str, *, required: bool = False) -> None:
    if required and blank(value):  # white space or invisible characters alone
        raise RuleBroken(f"{field} is required")
    if len(value) > MAX_TEXT_CHARS:
        raise RuleBroken(f"{field} is {len(value)} characters; at most {MAX_TEXT_CHARS}")


def _revision(revision: int) -> None:
    if revision < 1:
        raise RuleBroken("revision must be 1 or more")


#: The fields the slice rules read, fetched per slice in one C call (the hub checks about 40
#: slices per daily report; attribute by attribute this was half of a report's ingest CPU).
_SLICE_FIELDS = attrgetter("key", "complaints", "closed", "closed_in_time", "repeat_complaints")
_OPERATOR_ID = attrgetter("operator_id")
_SUGGESTION_FIELDS = attrgetter("ticket_id", "category", "content")
_TICKET_ID, _CLASS, _CONTENT = itemgetter(0), itemgetter(1), itemgetter(2)


def _slices(slices: Iterable[pb.SliceCounts], field: str, most: int = MAX_KEY_CHARS) -> int:
    """Check the slices' rules (keys of at most ``most`` characters); their complaints
    summed."""
    rows = list(map(_SLICE_FIELDS, slices))
    keys = {r[0] for r in rows}
    if (
        len(keys) == len(rows)
        and "" not in keys
        and max(map(len, keys), default=0) <= most
        and not _CONTROL.search("".join(keys))
        and not any(r[3] > r[2] or r[4] > r[1] for r in rows)
    ):
        return sum(r[1] for r in rows)
    _slice_problem(slices, field, most)
    raise AssertionError("unreachable: a slice rule failed above")  # pragma: no cover


def _slice_problem(slices: Iterable[pb.SliceCounts], field: str, most: int) -> None:
    """Raise ``RuleBroken`` naming the first slice that breaks a rule."""
    keys: set[str] = set()
    for i, s in enumerate(slices):
        if not s.key:
            raise RuleBroken(f"{field}[{i}].key is required")
        _key(s.key, f"{field}[{i}].key", most)
        _plain(s.key, f"{field}[{i}].key")
        if s.key in keys:
            raise RuleBroken(f"{field}[{i}].key {s.key!r} appears twice")
        keys.add(s.key)
        _at_most(s.closed_in_time, s.closed, f"{field}[{i}].closed_in_time", "closed")
        _at_most(s.repeat_complaints, s.complaints, f"{field}[{i}].repeat_complaints", "complaints")


# --- 64-bit range ---------------------------------------------------------------------------

#: Integer types whose wire range exceeds a signed 64-bit column (int64, sint64, sfixed64 and
#: every 32-bit type fit).
_UNSIGNED_64 = frozenset({FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64})
_WIDE: dict[str, tuple[FieldDescriptor, ...]] = {}


def _wide_fields(descriptor: Descriptor | Any) -> tuple[FieldDescriptor, ...]:
    """The fields of ``descriptor`` that are, or lead to, an unsigned 64-bit integer.

    Computed once per message type, so bodies without any (most) cost one dict lookup.
    """
    cached = _WIDE.get(descriptor.full_name)
    if cached is not None:
        return cached
    _WIDE[descriptor.full_name] = ()  # a message type that contains itself ends here
    wide = tuple(
        f
        for f in descriptor.fields
        if f.type in _UNSIGNED_64
        or (f.type == FieldDescriptor.TYPE_MESSAGE and _wide_fields(f.message_type))
    )
    _WIDE[descriptor.full_name] = wide
    return wide


def _out_of_range(message: Message, prefix: str) -> Iterable[tuple[Message, str, str, int]]:
    """(message, field name, dotted path, value) of every uint64 above ``INT64_MAX``."""
    for f in _wide_fields(message.DESCRIPTOR):
        path = f"{prefix}{f.name}"
        value = getattr(message, f.name)
        repeated = f.is_repeated
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if repeated:
                for i, item in enumerate(value):
                    yield from _out_of_range(item, f"{path}[{i}].")
            elif message.HasField(f.name):
                yield from _out_of_range(value, f"{path}.")
        elif repeated:
            for i, item in enumerate(value):
                if item > INT64_MAX:
                    yield message, f.name, f"{path}[{i}]", item
        elif value > INT64_MAX:
            yield message, f.name, path, value


def check_int64_range(body: Message) -> None:
    """``RuleBroken`` naming the first integer of ``body`` the store cannot hold."""
    for _, _, path, value in _out_of_range(body, ""):
        raise RuleBroken(
            f"{path} is {value}, above {INT64_MAX} (2^63 - 1), the largest integer the hub "
            "stores; 64-bit values must fit a signed 64-bit integer"
        )


def clamp_to_int64(body: Message) -> list[str]:
    """Set every integer of ``body`` above ``INT64_MAX`` to it; the paths of those changed."""
    changed: list[str] = []
    for message, name, path, _ in list(_out_of_range(body, "")):
        if path.endswith("]"):
            items = getattr(message, name)
            for i, item in enumerate(items):
                items[i] = min(item, INT64_MAX)
        else:
            setattr(message, name, INT64_MAX)
        changed.append(path)
    return changed


# --- instants and text ------------------------------------------------------------------------

_TIMESTAMP = "google.protobuf.Timestamp"


class _Field(NamedTuple):
    """A field that is, or leads to, what a walk looks for."""

    name: str
    repeated: bool
    #: A singular message field (present or not: ``HasField``).
    singular_message: bool
    #: The field is what the walk looks for (else it is a message leading to one).
    leaf: bool
    #: The walk's fields of the field's message type (for a message leading to one).
    children: tuple[_Field, ...]


_TIMED: dict[str, tuple[_Field, ...]] = {}
_TEXTUAL: dict[str, tuple[_Field, ...]] = {}
#: A path to a field, built into "a.b[2].c" only for the one reported.
_Path = tuple[str | int, ...]


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _fields_to(
    descriptor: Descriptor | Any,
    cache: dict[str, tuple[_Field, ...]],
    wanted: Callable[[FieldDescriptor], bool],
) -> tuple[_Field, ...]:
    """The fields of ``descriptor`` that are ``wanted`` or lead to one (cached per type)."""
    cached = cache.get(descriptor.full_name)
    if cached is not None:
        return cached
    cache[descriptor.full_name] = ()  # a message type that contains itself ends here
    found = []
    for f in descriptor.fields:
        leaf = wanted(f)
        message = f.message_type
        children = (
            _fields_to(message, cache, wanted)
            if not leaf and message is not None and message.full_name != _TIMESTAMP
            else ()
        )
        if leaf or children:
            singular = message is not None and not f.is_repeated
            found.append(_Field(f.name, f.is_repeated, singular, leaf, children))
    cache[descriptor.full_name] = result = tuple(found)
    return result


def _is_timestamp(f: FieldDescriptor) -> bool:
    return f.message_type is not None and f.message_type.full_name == _TIMESTAMP


def _is_string(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_STRING


def _values(message: Message, field: _Field) -> Any:
    """The field's values: its items, the one value, or none (an absent message)."""
    if field.repeated:
        return getattr(message, field.name)
    if field.singular_message and not message.HasField(field.name):
        return ()
    return (getattr(message, field.name),)


def _bad_timestamps(message: Message, fields: tuple[_Field, ...], path: _Path) -> Iterable[str]:
    """The problem of every invalid instant under ``fields``, naming it (the slow walk)."""
    for field in fields:
        for index, value in enumerate(_values(message, field)):
            where = (*path, field.name, index) if field.repeated else (*path, field.name)
            if not field.leaf:
                yield from _bad_timestamps(value, field.children, where)
                continue
            problem = timestamp_problem(value.seconds, value.nanos, _dotted(where))
            if problem:
                yield problem


#: The instant check of each body type, written out as straight code (below).
_TIME_CHECKS: dict[str, Callable[[Message], bool]] = {}


def _written_walk(
    fields: tuple[_Field, ...], leaf: Callable[[str, _Field, str, int], list[str]]
) -> list[str]:
    """The lines of a function body visiting every leaf under ``fields`` from ``m0``: a ``for``
    per repeated field, a ``HasField`` per optional message leading to leaves, and the lines
    ``leaf(expression, field, indent, number)`` gives for each leaf (``expression`` reads it
    from its message). Field names come from the compiled descriptors (identifiers), never
    from input."""
    lines: list[str] = []
    names = iter(range(1, 1_000_000))

    def emit(var: str, walk: tuple[_Field, ...], depth: int) -> None:
        pad = "    " * depth
        for f in walk:
            n = next(names)
            if f.leaf:
                lines.extend(leaf(f"{var}.{f.name}", f, pad, n))
            elif f.repeated:
                lines.append(f"{pad}for m{n} in {var}.{f.name}:")
                emit(f"m{n}", f.children, depth + 1)
            elif f.singular_message:
                lines.append(f"{pad}if {var}.HasField({f.name!r}):")
                lines.append(f"{pad}    m{n} = {var}.{f.name}")
                emit(f"m{n}", f.children, depth + 1)
            else:
                lines.append(f"{pad}m{n} = {var}.{f.name}")
                emit(f"m{n}", f.children, depth)

    emit("m0", fields, 1)
    return lines


def _compiled(name: str, lines: list[str], namespace: dict[str, Any]) -> Callable[[Message], Any]:
    exec("\n".join(lines), namespace)  # the source is built from descriptors only
    function: Callable[[Message], Any] = namespace[name]
    return function


def _compiled_timestamp_check(fields: tuple[_Field, ...]) -> Callable[[Message], bool]:
    """Whether every instant under ``fields`` is a valid Timestamp: a function written out for
    one message type.

    The check runs for every body the hub ingests, so it is spelled out for the type's fields
    (:func:`_written_walk`, two comparisons per instant) instead of walking the field table
    generically, which cost twice as much. An unset Timestamp reads as 0 s, 0 ns, which is
    valid, so an instant needs no ``HasField``; :func:`_bad_timestamps` is the slow walk that
    names a bad one.
    """

    def instant(read: str, f: _Field, pad: str, n: int) -> list[str]:
        head = [f"{pad}for t{n} in {read}:"] if f.repeated else [f"{pad}t{n} = {read}"]
        inner = pad + "    " if f.repeated else pad
        return [
            *head,
            f"{inner}if not (LOW <= t{n}.seconds <= HIGH"
            f" and 0 <= t{n}.nanos <= NANOS): return False",
        ]

    lines = ["def valid(m0):", *_written_walk(fields, instant), "    return True"]
    namespace: dict[str, Any] = {
        "LOW": MIN_TIMESTAMP_SECONDS,
        "HIGH": MAX_TIMESTAMP_SECONDS,
        "NANOS": MAX_TIMESTAMP_NANOS,
    }
    return _compiled("valid", lines, namespace)


def check_timestamps(body: Message) -> None:
    """``RuleBroken`` naming the first instant of ``body`` outside a Timestamp's range.

    Such an instant is no date: the hub could neither land it (an escalation's registered_at,
    a receipt's acted_at) nor show it.
    """
    descriptor = body.DESCRIPTOR
    valid = _TIME_CHECKS.get(descriptor.full_name)  # the cache first: this runs for every body
    if valid is None:
        fields = _fields_to(descriptor, _TIMED, _is_timestamp)
        valid = _TIME_CHECKS[descriptor.full_name] = _compiled_timestamp_check(fields)
    if valid(body):
        return
    for problem in _bad_timestamps(body, _fields_to(descriptor, _TIMED, _is_timestamp), ()):
        raise RuleBroken(problem)


def _string_paths(
    message: Message, fields: tuple[_Field, ...], path: _Path, bad: Callable[[str], Any]
) -> Iterable[tuple[_Path, str]]:
    """Each string under ``fields`` that is ``bad``, with its path (the slow walk)."""
    for field in fields:
        for index, value in enumerate(_values(message, field)):
            where = (*path, field.name, index) if field.repeated else (*path, field.name)
            if not field.leaf:
                yield from _string_paths(value, field.children, where, bad)
            elif bad(value):
                yield where, value


def nul_problem(body: Message) -> str | None:
    """The first string of ``body`` holding a NUL character (U+0000), as a reason; else None.

    PostgreSQL's text columns cannot hold that character (SQLite's can), so a record carrying
    one could not be landed alike on both; it is quarantined instead. A caller holding the
    body's bytes skips this when they hold no zero byte (a NUL is encoded as one).
    """
    fields = _fields_to(body.DESCRIPTOR, _TEXTUAL, _is_string)
    for where, _value in _string_paths(body, fields, (), lambda value: "\x00" in value):
        return f"{_dotted(where)} contains a NUL character (U+0000), which the hub does not store"
    return None


#: The control characters (Unicode ``Cc``: C0, DEL, C1) no string of a body may hold, but
#: tab, newline and carriage return (multi-line notes) and NUL (:func:`nul_problem` names
#: it). The cities refuse them where people type; a body carrying one was made elsewhere,
#: and an escape sequence in it would rewrite the terminal that lists it at the hub, and
#: no spreadsheet cell can hold one.
_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TEXT_READERS: dict[str, Callable[[Message], list[str]]] = {}


def _compiled_text_reader(fields: tuple[_Field, ...]) -> Callable[[Message], list[str]]:
    """Every string under ``fields``, in a list: a function written out for one message type
    (:func:`_written_walk`; runs for every body the hub ingests)."""

    def text(read: str, f: _Field, pad: str, n: int) -> list[str]:
        return [f"{pad}{'more' if f.repeated else 'one'}({read})"]

    lines = [
        "def strings(m0):",
        "    out = []",
        "    one, more = out.append, out.extend",
        *_written_walk(fields, text),
        "    return out",
    ]
    return _compiled("strings", lines, {})


def _plain(value: str, field: str) -> None:
    found = _CONTROL.search(value)
    if found:
        raise RuleBroken(
            f"{field} contains a control character (U+{ord(found.group()):04X}); "
            "the hub takes none but tab, newline and carriage return"
        )


def check_controls(body: Message) -> None:
    """``RuleBroken`` naming the first string of ``body`` holding a control character
    (:data:`_CONTROL`) and the character."""
    descriptor = body.DESCRIPTOR
    strings = _TEXT_READERS.get(descriptor.full_name)  # the cache first: runs for every body
    if strings is None:
        fields = _fields_to(descriptor, _TEXTUAL, _is_string)
        strings = _TEXT_READERS[descriptor.full_name] = _compiled_text_reader(fields)
    if _CONTROL.search("".join(strings(body))):
        _name_control(body)


def _name_control(body: Message) -> None:
    """``RuleBroken`` naming the first string of ``body`` holding a control character."""
    fields = _fields_to(body.DESCRIPTOR, _TEXTUAL, _is_string)
    for where, value in _string_paths(body, fields, (), _CONTROL.search):
        _plain(value, _dotted(where))


# --- the rules of each kind ------------------------------------------------------------------


def check_statistics(r: pb.StatisticsReport, today: date) -> None:
    _period(r.period, today)
    _revision(r.revision)
    _at_most(r.closed_in_time, r.closed, "closed_in_time", "closed")
    _at_most(r.complaints_closed, r.closed, "complaints_closed", "closed")
    _at_most(r.repeat_complaints, r.complaints_received, "repeat_complaints", "complaints_received")
    s = r.satisfaction
    answered = s.very_satisfied + s.satisfied + s.neutral + s.dissatisfied
    if answered != s.surveyed:
        raise RuleBroken(
            f"satisfaction: very satisfied + satisfied + neutral + dissatisfied = {answered}, "
            f"but surveyed = {s.surveyed}"
        )
    _at_most(
        s.complaints_surveyed,
        s.surveyed,
        "satisfaction.complaints_surveyed",
        "satisfaction.surveyed",
    )
    totals = (
        ("by_category", r.by_category, _slices(r.by_category, "by_category")),
        ("by_channel", r.by_channel, _slices(r.by_channel, "by_channel", MAX_CHANNEL_CHARS)),
    )
    for field, slices, total in totals:
        if not slices:
            continue
        if total != r.complaints_received:
            raise RuleBroken(
                f"{field} complaints add up to {total}, but complaints_received = "
                f"{r.complaints_received}"
            )
    # One C-level pass: the workload table is read on every daily report.
    ids = list(map(_OPERATOR_ID, r.operators))
    if max(map(len, ids), default=0) > MAX_KEY_CHARS or _CONTROL.search("".join(ids)):
        for i, operator_id in enumerate(ids):
            _key(operator_id, f"operators[{i}].operator_id")
            _plain(operator_id, f"operators[{i}].operator_id")
    _text(r.approved_by, "approved_by", required=True)
    _key(r.approved_by, "approved_by")  # a staff id
    _plain(r.approved_by, "approved_by")
    # period.start is a strict YYYY-MM-DD date (``_period``): no string is left unread.


def check_qa(r: pb.QaReport, today: date) -> None:
    _period(r.period, today)
    _revision(r.revision)
    _at_most(r.passed, r.sampled, "passed", "sampled")
    if r.mean_score_centi > 10_000:
        raise RuleBroken(f"mean_score_centi {r.mean_score_centi} is above 10000 (100.00)")
    # A ticket passes without any defect, and counts once under each kind it has: no kind
    # counts more tickets than failed, and (where kinds are listed) each failed ticket has
    # one at least.
    failed = r.sampled - r.passed
    kinds: set[int] = set()
    for i, d in enumerate(r.defects):
        if d.kind not in pb.DefectKind.values() or d.kind == pb.DEFECT_KIND_UNSPECIFIED:
            raise RuleBroken(f"defects[{i}].kind {d.kind} is not a known defect kind")
        if d.kind in kinds:
            raise RuleBroken(f"defects[{i}].kind {pb.DefectKind.Name(d.kind)} appears twice")
        kinds.add(d.kind)
        if d.count > failed:
            raise RuleBroken(
                f"defects[{i}].count ({d.count}) exceeds the tickets that failed "
                f"(sampled - passed = {failed})"
            )
    listed = sum(d.count for d in r.defects)
    if r.defects and listed < failed:
        raise RuleBroken(
            f"defects add up to {listed}, but {failed} tickets failed (sampled - passed), "
            "each with a defect at least"
        )
    operators: set[str] = set()
    for i, op in enumerate(r.operators):
        _text(op.operator_id, f"operators[{i}].operator_id", required=True)
        _key(op.operator_id, f"operators[{i}].operator_id")
        if op.operator_id in operators:
            raise RuleBroken(f"operators[{i}].operator_id {op.operator_id!r} appears twice")
        operators.add(op.operator_id)
        _at_most(op.passed, op.sampled, f"operators[{i}].passed", "sampled")
        if op.mean_score_centi > 10_000:
            raise RuleBroken(f"operators[{i}].mean_score_centi is above 10000")
    if r.operators and sum(op.sampled for op in r.operators) != r.sampled:
        raise RuleBroken("operators[].sampled does not add up to sampled")
    if r.operators and sum(op.passed for op in r.operators) != r.passed:
        raise RuleBroken("operators[].passed does not add up to passed")
    _text(r.findings, "findings")
    _text(r.inspector, "inspector", required=True)
    _key(r.inspector, "inspector")  # a staff id


#: Slack for instants ahead of the hub's today: a city's clock or zone may run ahead of it.
_AHEAD_DAYS = 1


def _not_ahead(message: Message, field: str, today: date, name: str) -> None:
    """``message.field`` (a Timestamp, when set) is not after the day after ``today``: an
    instant in the future (an escalation registered in 2100) would stand on the desk with a
    negative age. Compared in epoch seconds, so it holds whatever zone the city is in."""
    if not message.HasField(field):
        return
    seconds = getattr(message, field).seconds
    limit = datetime.combine(today + timedelta(days=_AHEAD_DAYS + 1), time(0), tzinfo=UTC)
    if seconds >= limit.timestamp():
        at = datetime.fromtimestamp(seconds, UTC).isoformat()
        raise RuleBroken(f"{name} {at} is in the future (today is {today})")


def check_escalation(r: pb.Escalation, today: date) -> None:
    _text(r.ticket_id, "ticket_id", required=True)
    if len(r.ticket_id) > MAX_TICKET_ID_CHARS:
        raise RuleBroken(
            f"ticket_id is {len(r.ticket_id)} characters; at most {MAX_TICKET_ID_CHARS}"
        )
    if r.kind not in pb.TicketKind.values() or r.kind == pb.TICKET_KIND_UNSPECIFIED:
        raise RuleBroken(f"kind {r.kind} is not a known ticket kind")
    if r.tier not in pb.CustomerTier.values() or r.tier == pb.CUSTOMER_TIER_UNSPECIFIED:
        raise RuleBroken(f"tier {r.tier} is not a known customer tier")
    _text(r.reason, "reason", required=True)
    _text(r.content, "content")
    _key(r.category, "category")
    _key(r.channel, "channel", MAX_CHANNEL_CHARS)
    _key(r.customer_phone, "customer_phone", MAX_PHONE_CHARS)
    if len(r.history) > MAX_ITEMS:
        raise RuleBroken(f"history has {len(r.history)} entries; at most {MAX_ITEMS}")
    _not_ahead(r, "registered_at", today, "registered_at")
    if r.HasField("follow_up"):
        _not_ahead(r.follow_up, "closed_at", today, "follow_up.closed_at")
        _not_ahead(r.follow_up, "surveyed_at", today, "follow_up.surveyed_at")
        if r.follow_up.satisfaction not in FOLLOW_UP_SATISFACTION:
            raise RuleBroken(
                f"follow_up.satisfaction {r.follow_up.satisfaction!r} is not one of "
                + ", ".join(sorted(s for s in FOLLOW_UP_SATISFACTION if s))
            )
        _text(r.follow_up.status, "follow_up.status", required=True)
        if len(r.follow_up.status) > 32:
            raise RuleBroken("follow_up.status is longer than 32 characters")


#: Escalation.follow_up.satisfaction: the city's survey outcomes, "" before the callback.
FOLLOW_UP_SATISFACTION = frozenset(
    {"", "very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable"}
)


def check_suggestions(r: pb.SuggestionBatch, today: date) -> None:
    try:
        batch_date = iso_date(r.batch_date)
    except ValueError:
        raise RuleBroken(f"batch_date {r.batch_date!r} is not a YYYY-MM-DD date") from None
    if batch_date > today:
        raise RuleBroken(f"batch_date {batch_date} is in the future (today is {today})")
    if r.batch_number < 1:
        raise RuleBroken("batch_number must be 1 or more")
    # Every string is read once, for all its rules and the control-character check (the
    # batch_date is a strict date), and judged at once: suggestion batches are most of what
    # a hub ingests. Only a batch that breaks a rule is walked again to name it.
    classified_by = r.classified_by  # the clerks, comma-separated staff ids
    rows = list(map(_SUGGESTION_FIELDS, r.suggestions))
    every = classified_by + "".join(chain.from_iterable(rows))
    if (
        len(every) <= MAX_TEXT_CHARS  # then each text is within it too
        and max(map(len, map(_CLASS, rows)), default=0) <= MAX_SUGGESTION_CLASS_CHARS
        and not any(map(BLANK.fullmatch, map(_TICKET_ID, rows)))
        and not any(map(BLANK.fullmatch, map(_CONTENT, rows)))
        and not _CONTROL.search(every)
    ):
        return
    _text(classified_by, "classified_by")
    for i, (ticket_id, category, content) in enumerate(rows):
        _text(ticket_id, f"suggestions[{i}].ticket_id", required=True)
        _text(content, f"suggestions[{i}].content", required=True)
        _key(category, f"suggestions[{i}].category", MAX_SUGGESTION_CLASS_CHARS)
    _name_control(r)


def check_overtime(r: pb.OvertimeReport, today: date) -> None:
    _period(r.period, today)
    _revision(r.revision)
    total = 0
    for i, c in enumerate(r.cases):
        _text(c.ticket_id, f"cases[{i}].ticket_id", required=True)
        _key(c.category, f"cases[{i}].category")
        _text(c.branch, f"cases[{i}].branch")
        if c.compensation_fen < 0:
            raise RuleBroken(f"cases[{i}].compensation_fen is negative ({c.compensation_fen})")
        total += c.compensation_fen
    if total != r.total_compensation_fen:
        raise RuleBroken(
            f"total_compensation_fen is {r.total_compensation_fen}, but cases add up to {total}"
        )


def check_receipt(r: pb.NoticeReceipt, today: date) -> None:
    if r.notice_seq == 0:
        raise RuleBroken("notice_seq is required")
    if r.action not in (pb.READ, pb.DONE, pb.OBJECTION):
        raise RuleBroken(f"action {r.action} is not READ, DONE or OBJECTION")
    if r.action == pb.OBJECTION:
        _text(r.note, "note (the objection's reason)", required=True)
    _key(r.actor, "actor")  # a staff id
    _not_ahead(r, "acted_at", today, "acted_at")
    try:
        check_note(r.note, "note")  # the same definition the city applies before queueing
    except LimitExceeded as exc:
        raise RuleBroken(str(exc)) from None


def check_trace(r: pb.TicketTrace, today: date) -> None:
    if r.request_notice_seq == 0:
        raise RuleBroken("request_notice_seq is required")
    _text(r.ticket_id, "ticket_id", required=True)
    _key(r.category, "category")
    _key(r.customer_phone, "customer_phone", MAX_PHONE_CHARS)


def check_heartbeat(r: pb.Heartbeat, today: date) -> None:
    return None


_RULES: dict[str, Callable[[Message, date], None]] = {
    "statistics_report": check_statistics,  # type: ignore[dict-item]
    "qa_report": check_qa,  # type: ignore[dict-item]
    "escalation": check_escalation,  # type: ignore[dict-item]
    "suggestion_batch": check_suggestions,  # type: ignore[dict-item]
    "overtime_report": check_overtime,  # type: ignore[dict-item]
    "notice_receipt": check_receipt,  # type: ignore[dict-item]
    "ticket_trace": check_trace,  # type: ignore[dict-item]
    "heartbeat": check_heartbeat,  # type: ignore[dict-item]
}


#: Kinds whose rules read every string of the body and refuse a control character in it
#: themselves (a daily report's ~30 slice keys, a batch's suggestions, are read once for all
#: their rules: a second read for :func:`check_controls` cost a tenth of their ingest).
_READS_ITS_STRINGS = frozenset({"statistics_report", "suggestion_batch"})


def broken_rule(
    kind: str,
    body: Message,
    *,
    tz_name: str = "",
    now: datetime | None = None,
    today: date | None = None,
) -> str | None:
    """The first business rule ``body`` breaks, as a sentence naming the field; else None.

    "Today" is cut in the federation's zone ``tz_name``; a caller checking many bodies at
    once passes ``today``, computed once, instead.
    """
    try:
        check_int64_range(body)
        check_timestamps(body)
        if kind not in _READS_ITS_STRINGS:
            check_controls(body)
        _RULES[kind](body, today if today is not None else today_in(tz_name, now))
    except RuleBroken as exc:
        return str(exc)
    return None
