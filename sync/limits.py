"""The federation's size and range limits: one definition each, used by both tiers.

The hub applies them when it judges an envelope (``sync.validation``: a record beyond them is
quarantined); the city applies the same ones in its services, so that what the hub would
quarantine is refused with a clear error before it is ever queued, instead of shown as sent.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from sync.refusals import COMMON, Refusal

#: Longest free text in a record (a receipt's or a decision's note, a reason, a content).
MAX_TEXT_CHARS = 20_000
#: Longest note on a notice receipt (an objection's reason) or on a leader's decision.
MAX_NOTE_CHARS = MAX_TEXT_CHARS
#: Longest note on a ticket step (a line of its history) or a QA finding: the city refuses
#: longer ones (a step note is read on one screen, and travels in every escalation's history).
MAX_STEP_NOTE_CHARS = 4_000
#: Longest title of a province notice (a line on the cities' bulletin board).
MAX_NOTICE_TITLE_CHARS = 200
#: Longest ticket id in a record: the hub's escalation desk keeps ticket ids of at most this
#: many characters and finds an escalation's record by it (a city's ids are far shorter).
MAX_TICKET_ID_CHARS = 64
#: Longest key in a record — a slice's category or channel, an operator's staff id, an
#: escalation's category or channel — and longest phone number: a city keeps categories of
#: 32 characters, channels of 16, staff ids and phones of 64 and 32; the hub's pages and
#: rankings show them whole.
MAX_KEY_CHARS = 64
MAX_PHONE_CHARS = 32
#: A channel's name: the desk keeps 32 characters of it (a city's are 16 at most).
MAX_CHANNEL_CHARS = 32
#: A suggestion's class as a batch carries it, "LABEL / CODE": the clerk's label of at most
#: 64 characters and the ticket's category code.
MAX_SUGGESTION_CLASS_CHARS = 64 + len(" / ") + MAX_KEY_CHARS
#: Longest name of a staff member (either tier's accounts): shown in menus, lists and history.
MAX_STAFF_NAME_CHARS = 100
#: Most items (history entries, slices...) in one record.
MAX_ITEMS = 100_000
#: The largest value of the stores' integer columns (BIGINT / SQLite INTEGER); an id above it
#: can name nothing, so services answer "not found" rather than let the database overflow.
INT64_MAX = (1 << 63) - 1
#: Free text a heartbeat carries (the city's last error, its software version) is link status
#: for a person to glance at: the hub keeps at most this many characters of each.
MAX_HEARTBEAT_TEXT_CHARS = 1024
#: The range of a google.protobuf.Timestamp (its definition: 0001-01-01T00:00:00Z to
#: 9999-12-31T23:59:59.999999999Z, nanos 0..999,999,999); outside it an instant is no date
#: the hub can store or show.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
MAX_TIMESTAMP_NANOS = 999_999_999
#: Reports cover periods in this range of years; outside it a date is a typing error (year
#: 1900, 9999) that no figure can belong to.
MIN_REPORT_YEAR = 2000
MAX_REPORT_YEAR = 2100


class LimitExceeded(ValueError):
    """A value is outside one of the federation's limits; the message names it."""


def check_note(value: str, field: str = "note") -> str:
    """``value`` if it fits ``MAX_NOTE_CHARS``; else ``LimitExceeded`` naming ``field``."""
    if len(value) > MAX_NOTE_CHARS:
        raise LimitExceeded(
            f"{field} is {len(value)} characters; at most {MAX_NOTE_CHARS} are accepted "
            "(the province hub refuses longer ones)"
        )
    return value


def report_date_problem(day: date, field: str = "period start") -> str | None:
    """Why ``day`` cannot start a report period (outside the sane years), or None."""
    refusal = report_date_refusal(day)
    return None if refusal is None else COMMON.say(refusal[0], "en", refusal[1], field)


def report_date_refusal(day: date) -> tuple[str, dict[str, Any]] | None:
    """Why ``day`` cannot start a report period, as a refusal code of
    :data:`sync.refusals.COMMON` and its values (None: it may)."""
    if not MIN_REPORT_YEAR <= day.year <= MAX_REPORT_YEAR:
        values = {"day": day.isoformat(), "low": MIN_REPORT_YEAR, "high": MAX_REPORT_YEAR}
        return "date.outside_years", values
    return None


def timestamp_problem(seconds: int, nanos: int, field: str) -> str | None:
    """Why (``seconds``, ``nanos``) is not a valid google.protobuf.Timestamp, or None."""
    if (
        MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS
        and 0 <= nanos <= MAX_TIMESTAMP_NANOS
    ):
        return None
    return (
        f"{field} (seconds {seconds}, nanos {nanos}) is not a valid google.protobuf.Timestamp: "
        f"seconds must be within {MIN_TIMESTAMP_SECONDS}..{MAX_TIMESTAMP_SECONDS} (years "
        f"1..9999) and nanos within 0..{MAX_TIMESTAMP_NANOS}"
    )


def id_in_range(value: int) -> bool:
    """Whether ``value`` can be a stored row id (positive, at most ``INT64_MAX``)."""
    return 1 <= value <= INT64_MAX


#: What shows nothing but is no white space (as a regex class's inside): the invisible format
#: characters (Unicode ``Cf``: a zero-width space U+200B, joiners, a soft hyphen, a byte-order
#: mark, bidirectional marks, tags), the variation selectors and the blank fillers (Hangul
#: U+115F, U+1160, U+3164, U+FFA0; braille blank U+2800).
_UNSEEN_CHARS = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160"
    "\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)
#: What shows nothing: white space and :data:`UNSEEN` characters.
BLANK = re.compile("[\\s" + _UNSEEN_CHARS + "]*")
#: Runs of characters that show nothing and are no white space: text read for what it shows
#: (a phone or a name to mask) is read without them — ``139\u200b8765\u200b4321`` is a
#: phone to the eye.
UNSEEN = re.compile("[" + _UNSEEN_CHARS + "]+")


def blank(value: str) -> bool:
    """Whether ``value`` shows nothing (:data:`BLANK`: ``str.strip`` keeps a zero-width
    space, and a title of one U+200B would read as empty). Quick on text that shows
    something: the match stops at its first visible character."""
    return BLANK.fullmatch(value) is not None


def staff_name_refusal(name: str) -> tuple[str, dict[str, Any]] | None:
    """What is wrong with a staff member's name, as a refusal code of
    :data:`sync.refusals.COMMON` and its values (None: nothing): it is required, at most
    :data:`MAX_STAFF_NAME_CHARS` characters, with no control character nor lone surrogate
    (a name is printed in lists, history lines and terminals)."""
    if not isinstance(name, str) or blank(name):
        return "staff_name.empty", {}
    if len(name.strip()) > MAX_STAFF_NAME_CHARS:
        return "staff_name.too_long", {"length": len(name.strip()), "maximum": MAX_STAFF_NAME_CHARS}
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):  # a name is one line
            return "staff_name.control", {"code": f"{ord(ch):04X}"}
    return None


def staff_name_problem(name: str, field: str = "name") -> str | None:
    """:func:`staff_name_refusal` in English, after ``field`` (None: nothing wrong)."""
    refusal = staff_name_refusal(name)
    return None if refusal is None else COMMON.say(refusal[0], "en", refusal[1], field)


#: Control characters a free text may hold (multi-line notes and complaints).
TEXT_CONTROLS = frozenset("\t\n\r")


def text_refusal(value: str, *, allow: frozenset[str] = TEXT_CONTROLS) -> tuple[str, str] | None:
    """Why ``value`` is not acceptable text, as a refusal code of :data:`sync.refusals.COMMON`
    (a control character or a lone surrogate) and the character's code point in hex, or None.
    ``allow`` lists the control characters that may appear. The consoles' edge refuses such
    text in every request; the city's services refuse it too, whichever edge calls."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "edge.surrogate", f"{ord(ch):04X}"
        if category == "Cc" and ch not in allow:
            return "edge.control_char", f"{ord(ch):04X}"
    return None


def refuse_characters(
    value: str, field: str, refusal: type[Refusal], *, allow: frozenset[str] = TEXT_CONTROLS
) -> None:
    """Raise ``refusal`` (a tier's :class:`~sync.refusals.Refusal`) naming ``field`` when
    ``value`` holds a control character ``allow`` does not list, or a lone surrogate: the
    consoles' edge refuses such text, and the services refuse it too for the command line
    (an escape sequence in a notice title would rewrite the terminal that lists it)."""
    problem = text_refusal(value, allow=allow)
    if problem and problem[0] == "edge.surrogate":
        raise refusal("text.surrogate", field=field, code=problem[1])
    if problem:
        raise refusal("text.control_char", field=field, code=problem[1])
    if "\n" not in allow:
        # One line: a line or paragraph separator (U+2028, U+2029) breaks it as a newline
        # does, and a title holding one would fake a second row where it is listed.
        for ch in value:
            if unicodedata.category(ch) in ("Zl", "Zp"):
                raise refusal("text.line_break", field=field, code=f"{ord(ch):04X}")


def text_problem(value: str, *, allow: frozenset[str] = TEXT_CONTROLS) -> str | None:
    """:func:`text_refusal` in English words ("a control character (U+0007)"), or None."""
    refusal = text_refusal(value, allow=allow)
    if refusal is None:
        return None
    what = "a lone surrogate" if refusal[0] == "edge.surrogate" else "a control character"
    return f"{what} (U+{refusal[1]})"


#: Bidirectional formatting characters: an override (U+202E) makes a terminal show the text
#: after it reversed, so a stored title could read as something else where it is listed.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _shown(ch: str) -> str:
    if ch in BIDI_CONTROLS:
        return f"\\u{ord(ch):04x}"
    if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cs"):
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return ch


def terminal_safe(text: str) -> str:
    """``text`` with control characters but the newline shown as ``\\xNN`` escapes, and
    bidirectional overrides as ``\\uNNNN``: stored text (a customer's name, a note, a city's
    category key) must not drive the terminal it is printed on (ANSI escapes can rewrite the
    screen or the window title; an override reverses what follows it)."""
    return "".join(map(_shown, text))
