"""The desks' tables (escalation queue, trace requests, audit log) as the shared
:class:`~province_hub.web.tables.Table`, so a page and its CSV show the same rows under the
same headers; and the calls the desk pages and API share (ages, who may see what)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from province_hub import desk_views
from province_hub.audit import Action, Entry
from province_hub.staff import HubRole
from province_hub.web.context import HubWeb
from province_hub.web.i18n import LABELS
from province_hub.web.tables import Column, Table
from sync.web.i18n import ticket_word, worded

#: zh / en labels of the desk's words (outcomes, states, contact channels, sorts).
WORDS: dict[str, tuple[str, str]] = {
    "upheld": ("投诉成立", "Upheld"),
    "partly_upheld": ("部分成立", "Partly upheld"),
    "not_upheld": ("投诉不成立", "Not upheld"),
    "withdrawn": ("客户撤诉", "Withdrawn"),
    "new": ("待处理", "New"),
    "taken": ("处理中", "Taken"),
    "resolved": ("已办结", "Resolved"),
    "open": ("未办结", "Open"),
    "all": ("全部", "All"),
    "phone": ("电话", "Phone"),
    "sms": ("短信", "SMS"),
    "visit": ("上门", "Visit"),
    "other": ("其他", "Other"),
    "age": ("升级后工作日", "Working days since escalated"),
    "registered": ("受理后工作日", "Working days since registered"),
    "city": ("地市", "City"),
    "category": ("分类", "Category"),
    "requested": ("已发出", "Requested"),
    "delivered": ("地市已收到", "Delivered"),
    "answered": ("已回复", "Answered"),
    "note": ("内部备注", "Note"),
    "contact": ("联系记录", "Contact"),
    "very_satisfied": ("非常满意", "Very satisfied"),
    "satisfied": ("满意", "Satisfied"),
    "neutral": ("一般", "Neutral"),
    "dissatisfied": ("不满意", "Dissatisfied"),
    "unreachable": ("未联系上", "Unreachable"),
    # customer tiers, in the cities' consoles' words
    "ordinary": ("普通", "Ordinary"),
    "vip": ("VIP", "VIP"),
    "important": ("重要客户", "Important"),
    "leased_line": ("专线客户", "Leased line"),
}


#: zh / en of what the audit log records (:class:`~province_hub.audit.Action`).
ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("登录", "Signed in"),
    "login_failed": ("登录失败", "Sign-in failed"),
    "logout": ("退出登录", "Signed out"),
    "notice_sent": ("发送公告", "Notice sent"),
    "objection_answered": ("答复异议", "Objection answered"),
    "escalation_taken": ("升级投诉接单", "Escalation taken"),
    "escalation_noted": ("升级投诉备注", "Escalation note added"),
    "escalation_contacted": ("升级投诉联系记录", "Escalation contact logged"),
    "escalation_resolved": ("升级投诉办结", "Escalation resolved"),
    "trace_requested": ("发起工单调阅", "Trace requested"),
    "staff_added": ("新增账户", "Account added"),
    "staff_disabled": ("停用账户", "Account disabled"),
    "staff_changed": ("修改账户", "Account changed"),
    "suggestions_seen": ("标记建议已阅", "Suggestions marked seen"),
    "personal_data_exported": ("导出客户个人信息", "Personal data exported"),
}
assert set(ACTIONS) == {a.value for a in Action}
#: The hub's roles as the console names them (an audit row's role).
ROLES: dict[str, tuple[str, str]] = {r.value: LABELS[r.value] for r in HubRole}


def word(value: str | None, lang: str) -> str:
    return worded(WORDS, value, lang)


def action_word(value: str, lang: str) -> str:
    """An audit action in ``lang`` (one this hub does not know as it is)."""
    return worded(ACTIONS, value, lang)


def role_word(value: str, lang: str) -> str:
    """An audit row's role in ``lang``; none (a failed login of an unknown id) stays empty."""
    return worded(ROLES, value, lang) if value else ""


def _zh(table: Mapping[str, tuple[str, str]], value: str) -> str:
    return table.get(value, (value, value))[0]


#: The details the hub writes in its audit rows (English, as stored), as a Chinese reader
#: reads them: a pattern matched whole, and what to say, given what it took.
_DETAILS_ZH: tuple[tuple[re.Pattern[str], Callable[..., str]], ...] = (
    (
        re.compile(r"notice (\d+); outcome (\S+)"),
        lambda seq, outcome: f"公告 {seq}；处理结果 {_zh(WORDS, outcome)}",
    ),
    (re.compile(r"assigned to (\S+)"), lambda who: f"分派给 {who}"),
    (
        re.compile(r"(note|contact), (\d+) characters(?:, by (\S+))?"),
        lambda kind, n, channel: (
            ("备注" if kind == "note" else "联系记录")
            + f"，{n} 个字符"
            + (f"，方式：{_zh(WORDS, channel)}" if channel else "")
        ),
    ),
    (
        re.compile(r"notice (\d+)(; for the GM hotline)?"),
        lambda seq, gm: f"公告 {seq}" + ("；为总经理热线调取" if gm else ""),
    ),
    (re.compile(r"(\d+) rows with customer name and phone"), lambda n: f"{n} 行，含客户姓名和电话"),
    (
        re.compile(r"kind=(\S+) priority=(\S+) targets=(\d+)"),
        lambda kind, priority, n: (
            f"类型 {_zh(LABELS, kind)}，优先级 {_zh(LABELS, priority)}，{n} 个地市"
        ),
    ),
    (
        re.compile(r"answers notice:(\d+) objection of city (\S+)"),
        lambda seq, city: f"答复地市 {city} 对公告 {seq} 的异议",
    ),
    (re.compile(r"(\d+) batches, (\d+) new"), lambda n, new: f"{n} 批，其中新批次 {new} 批"),
    (re.compile(r"role (\S+)"), lambda role: f"岗位 {_zh(ROLES, role)}"),
    (re.compile(r"enabled"), lambda: "启用"),
    (re.compile(r"disabled"), lambda: "停用"),
    (re.compile(r"password reset"), lambda: "重置密码"),
    (re.compile(r"own password changed"), lambda: "本人修改密码"),
    (re.compile(r"throttled"), lambda: "失败次数过多，暂停登录"),
    (re.compile(r"HTTP Basic: (.+)"), lambda why: f"HTTP Basic 认证：{detail_word(why, 'zh')}"),
    (re.compile(r"wrong staff id or password"), lambda: "工号或密码错误"),
)


def detail_word(detail: str, lang: str) -> str:
    """An audit row's detail in ``lang``: on a Chinese page (and in the exports) the hub's
    own details in Chinese; anything else as stored."""
    if lang != "zh" or not detail:
        return detail
    for pattern, say in _DETAILS_ZH:
        found = pattern.fullmatch(detail)
        if found:
            return say(*found.groups())
    return detail


def ages(hub: HubWeb) -> desk_views.Ages:
    return desk_views.Ages(
        calendar=hub.calendar, now=hub.local_now(), limit_days=hub.escalation_limit_days
    )


def local(value: datetime | None, hub: HubWeb) -> str:
    return "" if value is None else value.astimezone(hub.zone).strftime("%Y-%m-%d %H:%M")


def queue_table(
    rows: Sequence[Mapping[str, Any]], hub: HubWeb, lang: str, names: Mapping[str, str]
) -> Table:
    categories = hub.category_names(lang)
    shown = [
        {
            **r,
            "case": f"{r['city_code']}/{r['seq']}",
            "city": names.get(r["city_code"], r["city_code"]),
            "category_name": categories.get(r["category"], ""),
            "tier_text": word(r["tier"], lang),
            "state_text": word(r["state"], lang),
            "overdue_text": ("超期" if lang == "zh" else "overdue") if r["overdue"] else "",
            "escalated": local(r["escalated_at"], hub),
            "outcome_text": word(r["outcome"], lang),
            "delivered": local(r["resolution_delivered_at"], hub),
            "closed": local(r["closed_at"], hub),
            "satisfaction_text": word(r["satisfaction"], lang),
        }
        for r in rows
    ]
    return Table(
        name="desk",
        title_zh="升级投诉",
        title_en="Escalated complaints",
        columns=[
            Column("case", "编号", "Case", "text"),
            Column("city", "地市", "City", "text"),
            Column("ticket_id", "工单号", "Ticket", "text"),
            Column("category", "分类", "Category", "text"),
            Column("category_name", "分类名称", "Category name", "text"),
            Column("tier_text", "客户级别", "Tier", "text"),
            Column("escalated", "升级时间", "Escalated", "text"),
            Column("age_escalated", "升级后工作日", "Working days escalated"),
            Column("age_registered", "受理后工作日", "Working days registered"),
            Column("overdue_text", "超期", "Overdue", "text"),
            Column("state_text", "状态", "State", "text"),
            Column("assignee", "处理人", "Assignee", "text"),
            Column("outcome_text", "处理结果", "Outcome", "text"),
            Column("delivered", "地市收到", "City received", "text"),
            Column("closed", "地市结单", "City closed", "text"),
            Column("satisfaction_text", "回访满意度", "Satisfaction", "text"),
        ],
        rows=shown,
    )


def traces_table(
    rows: Sequence[Mapping[str, Any]], hub: HubWeb, lang: str, names: Mapping[str, str]
) -> Table:
    shown = [
        {
            **r,
            "city": names.get(r["city_code"], r["city_code"]),
            "requested": local(r["requested_at"], hub),
            "answered": local(r["answered_at"], hub),
            "state_text": word(r["state"], lang),
            "found": None if r["answer"] is None else r["answer"]["found"],
            "status": "" if r["answer"] is None else ticket_word(r["answer"]["status"], lang),
            "customer_name": "" if r["answer"] is None else r["answer"]["customer_name"],
            "customer_phone": "" if r["answer"] is None else r["answer"]["customer_phone"],
        }
        for r in rows
    ]
    return Table(
        name="traces",
        title_zh="工单调阅",
        title_en="Ticket traces",
        columns=[
            Column("notice_seq", "请求号", "Request", "text"),
            Column("city", "地市", "City", "text"),
            Column("ticket_id", "工单号", "Ticket", "text"),
            Column("requested_by", "请求人", "Asked by", "text"),
            Column("requested", "请求时间", "Asked at", "text"),
            Column("state_text", "状态", "State", "text"),
            Column("answered", "回复时间", "Answered at", "text"),
            Column("found", "找到工单", "Found", "text"),
            Column("status", "工单状态", "Ticket status", "text"),
            Column("customer_name", "客户姓名", "Customer", "text"),
            Column("customer_phone", "客户电话", "Customer phone", "text"),
        ],
        rows=shown,
    )


def audit_table(entries: Sequence[Entry], hub: HubWeb, lang: str) -> Table:
    """The audit log; actions and roles in ``lang`` (an export's in Chinese)."""
    return Table(
        name="audit",
        title_zh="操作审计",
        title_en="Audit log",
        columns=[
            Column("id", "序号", "No."),
            Column("at", "时间", "When", "text"),
            Column("actor", "操作人", "Who", "text"),
            Column("role", "岗位", "Role", "text"),
            Column("action", "操作", "Action", "text"),
            Column("target", "对象", "About", "text"),
            Column("detail", "说明", "Detail", "text"),
            Column("address", "来源地址", "Address", "text"),
        ],
        rows=[
            {
                "id": e.id,
                "at": e.at.astimezone(hub.zone).strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e.actor,
                "role": role_word(e.role, lang),
                "action": action_word(e.action.value, lang),
                "target": e.target,
                "detail": detail_word(e.detail, lang),
                "address": e.address,
            }
            for e in entries
        ],
    )
