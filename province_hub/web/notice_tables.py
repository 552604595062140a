"""The notice list and the open-task board as the shared
:class:`~province_hub.web.tables.Table`, so their CSV and XLSX carry the columns the pages
show, under Chinese headers, as the province sends them upward."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from province_hub.web.i18n import LABELS
from province_hub.web.tables import Column, Table


def _zh(word: str) -> str:
    """A notice kind or priority as the Chinese page names it."""
    return LABELS.get(word, (word, word))[0]


def notices_table(rows: Sequence[Mapping[str, Any]], titles: Mapping[int, str]) -> Table:
    """Notices sent, newest first (``notice_board.list_notices`` rows, their instants told
    in the federation's zone by ``sync.zones.in_zone``; ``titles``: the Chinese titles of
    those the hub wrote itself)."""
    return Table(
        name="notices",
        title_zh="公告与任务",
        title_en="Notices",
        columns=[
            Column("seq", "序号", "No."),
            Column("kind", "类型", "Kind", "text"),
            Column("priority", "优先级", "Priority", "text"),
            Column("title", "标题", "Title", "text"),
            Column("reply_to_seq", "答复公告", "Reply to"),
            Column("created_at", "发送时间", "Sent", "time"),
            Column("deadline", "完成时限", "Deadline", "time"),
            Column("targets", "目标地市", "Cities"),
            Column("delivered", "已送达", "Delivered"),
            Column("read", "已读", "Read"),
            Column("done", "已办结", "Done"),
            Column("objections", "异议", "Objections"),
            Column("overdue", "逾期", "Overdue"),
            Column("completion", "完成率", "Completion", "rate"),
        ],
        rows=[
            {
                **r,
                "kind": _zh(r["kind"]),
                "priority": _zh(r["priority"]),
                "title": titles.get(r["seq"], r["title"]),
            }
            for r in rows
        ],
    )


def board_table(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> Table:
    """Open tasks per city, earliest deadline first (``notice_board.open_tasks`` rows, told
    in the federation's zone; ``names``: the cities' Chinese names)."""
    return Table(
        name="task-board",
        title_zh="任务看板",
        title_en="Open tasks",
        columns=[
            Column("deadline", "完成时限", "Deadline", "time"),
            Column("seq", "序号", "No."),
            Column("title", "标题", "Title", "text"),
            Column("priority", "优先级", "Priority", "text"),
            Column("city_code", "地市代码", "City code", "text"),
            Column("city", "地市", "City", "text"),
            Column("delivered_at", "送达时间", "Delivered", "time"),
            Column("read_at", "阅读时间", "Read", "time"),
            Column("objection_at", "异议时间", "Objected", "time"),
            Column("objection_reason", "异议理由", "Objection", "text"),
            Column("overdue", "逾期", "Overdue", "text"),
        ],
        rows=[
            {
                **r,
                "priority": _zh(r["priority"]),
                "city": names.get(r["city_code"], r["city_code"]),
                "overdue": bool(r["overdue"]),
            }
            for r in rows
        ],
    )
