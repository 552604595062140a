"""The city's labels in Chinese and English: the console's words, and the enum values a
history line shows in the CLI and the API too (:mod:`city_node.history_text`), so they live
outside ``web/``; :mod:`city_node.web.i18n` hands them to the console. The shared
login/layout/error labels are the web foundation's, :data:`sync.web.i18n.COMMON_LABELS`,
and are part of :data:`LABELS`.

Every word a template shows goes through :func:`label` (``t(...)`` in templates), so a
missing translation is a missing key here, which ``tests`` catch by rendering both
languages. Enum values (statuses, actions, roles…) are keyed by their value, so the same
words are used in the UI as in code and docs (conventions: domain words from docs/domain.md).
Chinese is the default: the people using the console work in Chinese.
"""

from __future__ import annotations

import re
from typing import Final

from city_node.review_labels import REVIEW_LABELS
from sync.web.i18n import COMMON_LABELS, DEFECT_WORDS, TICKET_WORDS, Labels, Lang

#: The console's own labels: key -> (Chinese, English).
_OWN: Final[dict[str, tuple[str, str]]] = {
    # chrome and navigation
    "app_title": ("地市客服控制台", "City service console"),
    "city": ("地市", "City"),
    "nav_tickets": ("工单", "Tickets"),
    "nav_new_ticket": ("登记工单", "Register ticket"),
    # English menu words kept short: the whole menu fits on one line at 1280 px.
    "nav_reports": ("报表审批", "Reports"),
    "nav_qa": ("质检工作台", "QA"),
    "nav_suggestions": ("建议汇总", "Suggestions"),
    "to_classify": ("待分类建议", "To classify"),
    "waiting_for_batch": ("已分类、待报送", "Classified, waiting for the batch"),
    "suggestion_class": ("建议类别", "Class"),
    "classify_it": ("归类", "Classify"),
    "send_batch": ("报送本批建议", "Send the batch"),
    "nothing_to_classify": ("没有待分类的建议", "Nothing to classify"),
    "no_suggestions_waiting": ("没有待报送的建议", "Nothing waiting"),
    "nav_inbox": ("省公告", "Notices"),
    "nav_link": ("链路状态", "Link"),
    "nav_staff": ("人员", "Staff"),
    "nav_access_log": ("访问记录", "Access log"),
    "access_what": ("内容", "What"),
    # what an access-log entry read (city_node.personal_data.record_access)
    "ticket detail": ("工单详情", "ticket detail"),
    "ticket list": ("工单列表", "ticket list"),
    "phone search": ("按电话查询", "phone search"),
    # The console's areas, as a refusal names them ("角色…无权使用…", city_node.web.auth.AREAS).
    "area.register": ("登记工单", "registering tickets"),
    "area.compensate": ("登记赔偿", "recording compensation"),
    "area.reports": ("报表", "reports"),
    "area.reports.decide": ("审批报表", "deciding reports"),
    "area.qa": ("质检", "QA"),
    "area.qa.work": ("质检评分", "scoring QA"),
    "area.suggestions": ("建议", "suggestions"),
    "area.suggestions.work": ("建议分类", "classifying suggestions"),
    "area.inbox": ("省中心公告", "province notices"),
    "area.inbox.receipt": ("公告回执", "notice receipts"),
    "area.link": ("链路状态", "the link"),
    "area.staff": ("人员管理", "staff accounts"),
    "area.access_log": ("访问记录", "the access log"),
    "area.phone_search": ("按电话查询", "phone search"),
    "compensation_paid": ("已付赔偿", "Compensation paid"),
    "compensation_yuan": ("赔偿金额(元)", "Compensation (yuan)"),
    "record_compensation": ("登记赔偿", "Record compensation"),
    "yuan": ("元", "yuan"),
    "password_change_hint": (
        "修改密码会退出该账户的所有其他会话。忘记密码请联系中心领导或节点管理员重置。",
        "Changing the password ends every other session of the account. "
        "If you forgot it, ask a leader or the node's administrator to reset it.",
    ),
    "none": ("无", "none"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "submit": ("提交", "Submit"),
    "search": ("查询", "Search"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "all"),
    # ticket fields
    "ticket": ("工单", "Ticket"),
    "id": ("编号", "Id"),
    "kind": ("类型", "Kind"),
    "category": ("分类", "Category"),
    "channel": ("渠道", "Channel"),
    "phone": ("电话", "Phone"),
    "customer_name": ("客户姓名", "Customer name"),
    "tier": ("客户级别", "Customer tier"),
    "content": ("内容", "Content"),
    "status": ("状态", "Status"),
    "registered_at": ("登记时间", "Registered"),
    "deadline": ("时限", "Deadline"),
    "operator": ("话务员", "Operator"),
    "branch": ("承办单位", "Branch"),
    "closed_at": ("结案时间", "Closed"),
    "satisfaction": ("满意度", "Satisfaction"),
    "repeat": ("重复投诉", "Repeat complaint"),
    "overtime": ("超时", "Overtime"),
    "open_only": ("仅未结案", "Open only"),
    "overtime_only": ("仅超时", "Overtime only"),
    "extension_pending": ("待批延期", "Extension pending"),
    "follow_up": ("后续处理", "Follow-up"),
    "register_only": ("仅登记", "Register only"),
    "note": ("备注", "Note"),
    "history": ("处理记录", "History"),
    "at": ("时间", "At"),
    "actor": ("处理人", "By"),
    "role": ("角色", "Role"),
    "action": ("操作", "Action"),
    "from_to": ("状态变化", "Status change"),
    "actions": ("可执行操作", "Actions"),
    "no_actions": ("当前角色在此状态下无可执行操作", "Nothing your role can do in this status"),
    "outcome": ("调查结果", "Outcome"),
    "reopen": ("重新处理", "Reopen"),
    "days": ("天数", "Days"),
    "reason": ("原因", "Reason"),
    "pending_extension": ("待批延期", "Pending extension"),
    "no_tickets": ("没有工单", "No tickets"),
    "standard_answers": ("统一口径", "Standard answers"),
    "topic": ("主题", "Topic"),
    "answer_text": ("口径", "Answer"),
    "published_at": ("发布时间", "Published"),
    "no_answers": ("没有匹配的口径", "No matching answer"),
    # reports
    "pending_reports": ("待审批报表", "Reports awaiting approval"),
    "recent_reports": ("近期报表", "Recent reports"),
    "report": ("报表", "Report"),
    "period": ("周期", "Period"),
    "revision": ("版次", "Revision"),
    "drafted": ("起草", "Drafted"),
    "decided": ("审批", "Decided"),
    "figures": ("数据", "Figures"),
    "approve": ("批准并上报", "Approve and send"),
    "reject": ("驳回", "Reject"),
    "decision_note": ("审批意见", "Decision note"),
    "no_reports": ("没有待审批的报表", "No report awaits approval"),
    "report_statistics": ("统计报表", "Statistics report"),
    "report_qa": ("质检报告", "QA report"),
    "report_overtime": ("超时限及赔偿报告", "Overtime and compensation report"),
    "draft": ("草稿", "draft"),
    "approved": ("已批准", "approved"),
    "rejected": ("已驳回", "rejected"),
    "superseded": ("已替代", "superseded"),
    "hub_refused": ("省中心已拒收，见收件箱", "refused by the hub: see the inbox"),
    "day": ("日", "day"),
    "week": ("周", "week"),
    "month": ("月", "month"),
    "quarter": ("季", "quarter"),
    "year": ("年", "year"),
    "outbox_seq": ("发送序号", "Outbox seq"),
    # QA
    "draw_sample": ("随机抽检", "Draw a random sample"),
    "count": ("数量", "Count"),
    "worklist": ("待评分", "To score"),
    "scored": ("已评分", "Scored"),
    "sampled_at": ("抽取时间", "Sampled"),
    "how": ("方式", "How"),
    "scheduled": ("定期", "scheduled"),
    "random": ("随机", "random"),
    "inspector": ("质检员", "Inspector"),
    "score": ("得分", "Score"),
    "weight": ("权重", "Weight"),
    "defects": ("差错", "Defects"),
    "finding": ("质检意见", "Finding"),
    "score_it": ("评分", "Score it"),
    "nothing_to_score": ("没有待评分的样本", "Nothing to score"),
    "points": ("分 (0-100)", "points (0-100)"),
    # inbox
    "notice": ("公告", "Notice"),
    "title": ("标题", "Title"),
    "priority": ("优先级", "Priority"),
    "sender": ("发布方", "Sender"),
    "received_at": ("收到时间", "Received"),
    "task_deadline": ("任务期限", "Task deadline"),
    "receipt": ("回执", "Receipt"),
    "read": ("已阅", "Read"),
    "done": ("已办结", "Done"),
    "objection": ("异议", "Objection"),
    "done_note": ("办结说明", "Done note"),
    "objection_reason": ("异议理由", "Objection reason"),
    "no_notices": ("没有公告", "No notices"),
    "reply_to": ("答复公告", "In reply to notice"),
    "superseded_by": ("已被新版本取代", "Superseded by"),
    "current_version": ("现行口径", "Current version"),
    # link
    "link_state": ("链路状态", "Link state"),
    "backlog": ("待发送", "Backlog"),
    "last_push": ("最近推送", "Last push"),
    "last_contact": ("最近联系", "Last contact"),
    "last_error": ("最近错误", "Last error"),
    "last_rejection": ("最近退回", "Last rejection"),
    "conflict_seq": ("冲突序号", "Conflicting seq"),
    "delivered_seq": ("已送达序号", "Delivered through seq"),
    "last_seq": ("最新序号", "Last seq"),
    "epoch": ("存储纪元", "Store epoch"),
    "oldest_unsent": ("最早未发送", "Oldest unsent"),
    "notice_cursor": ("公告游标", "Notice cursor"),
    # staff
    "name": ("姓名", "Name"),
    "active": ("在岗", "Active"),
    "staff_manage": ("账号管理", "Manage"),
    "staff_disable": ("停用", "Disable"),
    "staff_enable": ("启用", "Enable"),
    "staff_set_role": ("更改岗位", "Change role"),
    "staff_new_password": ("新密码", "New password"),
    "staff_reset_password": ("重置密码", "Reset password"),
    "staff_changes_end_sessions": (
        "停用、重置密码或更改岗位后，该账号已登录的会话立即失效。",
        "Disabling, a password reset or a role change ends the account's open sessions at once.",
    ),
    # ticket kinds, channels and statuses: the words the hub shows too (the phone channel
    # under its own key: "phone" is the customer's number)
    **{k: v for k, v in TICKET_WORDS.items() if k != "phone"},
    "phone_channel": TICKET_WORDS["phone"],
    # tiers
    "ordinary": ("普通", "ordinary"),
    "vip": ("VIP", "VIP"),
    "important": ("重要客户", "important"),
    "leased_line": ("专线客户", "leased line"),
    # actions: a ticket's steps are in TICKET_WORDS (the hub names a trace's history by them)
    "classify": ("分类", "classify"),
    "approve_report": ("审批报表", "approve report"),
    "score_qa": ("质检评分", "score QA"),
    "send_suggestions": ("报送建议", "send suggestions"),
    # actions that are no ticket step (a refusal of the role table names them)
    "draft_report": ("起草报表", "draft report"),
    "manage_staff": ("管理人员账户", "manage staff"),
    "record_receipt": ("答复省公告", "record receipt"),
    "search_by_phone": ("按电话查询", "search by phone"),
    "read_access_log": ("查看访问记录", "read the access log"),
    # QA defect kinds
    **{f"defect_{kind}": words for kind, words in DEFECT_WORDS.items()},
    # satisfaction
    "very_satisfied": ("非常满意", "very satisfied"),
    "satisfied": ("满意", "satisfied"),
    "neutral": ("一般", "neutral"),
    "dissatisfied": ("不满意", "dissatisfied"),
    "unreachable": ("未接通", "unreachable"),
    # roles
    "operator_junior": ("初级话务员", "junior operator"),
    "operator_senior": ("高级话务员", "senior operator"),
    "manager_hotline": ("经理热线", "manager hotline"),
    "surveyor": ("满意度调查员", "surveyor"),
    "qa_inspector": ("质检员", "QA inspector"),
    "materials_clerk": ("资料员", "materials clerk"),
    "statistician": ("统计员", "statistician"),
    "leader": ("中心领导", "center leader"),
    "province": ("省中心", "province"),
    # report kinds (``overtime`` is the ticket field's word above)
    "statistics": ("统计", "statistics"),
    "qa": ("质检", "QA"),
    # link states
    "connected": ("已连接", "connected"),
    "backing-off": ("重试中", "backing off"),
    "conflict": ("序号冲突", "sequence conflict"),
    "revoked": ("证书已吊销", "revoked"),
    "hub-revoked": ("省平台证书已吊销", "hub certificate revoked"),
    "incompatible": ("版本不兼容", "incompatible"),
    "never": ("从未连接", "never connected"),
    "stopped": ("链路已停止，需人工处理", "stopped: needs a person"),
}

# A key in two of the parts would silently keep the last one's words on every page that
# uses it (the link page once said the suggestions page's "Nothing waiting").
_PARTS = {"sync.web.i18n": COMMON_LABELS, "review_labels": REVIEW_LABELS, "labels": _OWN}
for _a, _b in (
    ("sync.web.i18n", "review_labels"),
    ("sync.web.i18n", "labels"),
    ("review_labels", "labels"),
):
    _twice = sorted(set(_PARTS[_a]) & set(_PARTS[_b]))
    if _twice:
        raise RuntimeError(f"console label keys in both {_a} and {_b}: {', '.join(_twice)}")

#: key -> (Chinese, English)
LABELS: Final[dict[str, tuple[str, str]]] = {**COMMON_LABELS, **REVIEW_LABELS, **_OWN}

#: Enum values that collide with a label key of another meaning get a suffixed key.
_ALIASES: Final[dict[str, str]] = {"phone": "phone_channel"}


TABLE: Final = Labels(LABELS, _ALIASES)


def label(lang: Lang, key: str) -> str:
    """The label for ``key``; an unknown key is shown as itself (visible, never a crash)."""
    return TABLE.label(lang, key)


def value_label(lang: Lang, value: str) -> str:
    """The label of an enum value (status, action, channel…), which may share a spelling
    with a field label (``phone`` is both a channel and the phone-number field)."""
    return TABLE.value_label(lang, value)


def reworded(
    note: str | None, lang: Lang, zh: tuple[tuple[re.Pattern[str], str], ...]
) -> str | None:
    """A note the node wrote in English (``note``) as a reader in ``lang`` reads it: on a
    Chinese page the template of the first pattern of ``zh`` it matches whole, filled with
    what the pattern took (a key, a number, an error: quoted as written); else as stored."""
    if not note or lang != "zh":
        return note
    for pattern, template in zh:
        found = pattern.fullmatch(note)
        if found:
            return template.format(*found.groups())
    return note


#: The notes the node writes on a decision itself (a draft superseded, an auto-approval),
#: as a Chinese page says them; a person's own note is shown as written.
_NODE_NOTES_ZH = (
    (re.compile(r"revision (\d+) drafted"), "已起草第 {0} 版，本稿不再审批"),
    (re.compile(r"auto-approved \(node setting\)"), "自动批准（节点设置）"),
)


def decision_text(note: str | None, lang: Lang) -> str | None:
    """A report's decision note in the reader's language where the node wrote it."""
    return reworded(note, lang, _NODE_NOTES_ZH)
