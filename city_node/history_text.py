"""A history step as a person reads it, in their language.

The store keeps what happened as a code and its parameters (:class:`~city_node.domain.NoteCode`,
``HistoryEntry.params``) and the person's own words apart (``note``); this module turns
them into one line of text, in Chinese or English, with enum values (a survey's outcome)
shown through the city's labels (:mod:`city_node.labels`, plain Python). The console,
the CLI and the API view model use :func:`render`; the wire (an escalation's or a trace's
history sent to the province) carries :func:`wire_text`, the English line the hub has
always received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Final

from city_node.domain import HistoryEntry, NoteCode
from city_node.labels import value_label
from sync.web.i18n import Lang

#: code -> (Chinese, English) templates over the step's parameters (see NoteCode).
_TEMPLATES: Final[dict[NoteCode, tuple[str, str]]] = {
    NoteCode.DISPATCHED_TO: ("派往 {branch}", "to {branch}"),
    NoteCode.EXTENSION_REQUESTED: ("申请延期 {days} 个工作日", "+{days} workdays"),
    NoteCode.DEADLINE_MOVED: ("时限 {from} → {to}", "deadline {from} -> {to}"),
    NoteCode.PROVINCE_RESOLUTION: (
        "省公司处理结果：{resolution}",
        "province resolution: {resolution}",
    ),
    NoteCode.COMPENSATION: ("赔付 {yuan} 元", "{yuan} yuan"),
    NoteCode.CLASSIFIED: ("建议归类：{label}", "classified: {label}"),
}
_REOPENED: Final = ("；已重新打开", "; reopened")
_SEPARATOR: Final = ("：", ": ")


def render(
    code: NoteCode,
    params: Mapping[str, str | int | bool],
    note: str,
    lang: Lang,
    zone: tzinfo | None = None,
    *,
    raw_values: bool = False,
) -> str:
    """The step's line: what the code says, then the person's note. Times in ``params``
    are shown in ``zone`` (to the minute) when given, else as stored (ISO 8601); enum values
    through the console's labels unless ``raw_values``."""
    i = 0 if lang == "zh" else 1
    head = _head(code, params, lang, i, zone, raw_values)
    if head and note:
        return head + _SEPARATOR[i] + note
    return head or note


def _head(
    code: NoteCode,
    params: Mapping[str, str | int | bool],
    lang: Lang,
    i: int,
    zone: tzinfo | None,
    raw_values: bool,
) -> str:
    if code is NoteCode.NOTE:
        return ""
    try:
        if code is NoteCode.SURVEYED:
            outcome = str(params["outcome"])
            shown = outcome if raw_values else value_label(lang, outcome)
            return shown + (_REOPENED[i] if params.get("reopened") else "")
        values = {k: _value(v, zone) for k, v in params.items()}
        if code is NoteCode.COMPENSATION:
            values["yuan"] = f"{int(params['fen']) / 100:.2f}"
        return _TEMPLATES[code][i].format_map(values)
    except (KeyError, ValueError):
        # A step whose parameters do not fit its code (a hand-edited row): show what is there.
        return " ".join(f"{k}={v}" for k, v in params.items())


def _value(value: str | int | bool, zone: tzinfo | None) -> str:
    if zone is not None and isinstance(value, str) and len(value) >= 19 and value[10] == "T":
        try:
            return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    return str(value)


def entry_text(entry: HistoryEntry, lang: Lang, zone: tzinfo | None = None) -> str:
    """:func:`render` for a domain history entry."""
    return render(entry.code, entry.params, entry.note, lang, zone)


def wire_text(entry: HistoryEntry) -> str:
    """The note an escalation's or trace's history carries to the province: the English
    line (``to 网络维护中心``, ``dissatisfied; reopened``, ``deadline … -> …``), as before
    the history was stored as codes."""
    return render(entry.code, entry.params, entry.note, "en", raw_values=True)
