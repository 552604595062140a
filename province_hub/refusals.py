"""The hub's refusals in Chinese and English (with the shared ones of :mod:`sync.refusals`).

The hub's services raise their exceptions (:class:`HubRefusal` subclasses: notices, the
escalation desk, staff accounts, figures) with a code of :data:`HUB` and its values; the
English sentence is the exception's message, word for word what the HTTP API's ``detail``
and the shell have always said, and the supervisor web's pages show the Chinese one on a
Chinese page.
"""

from __future__ import annotations

from typing import ClassVar, Final

from sync.refusals import COMMON, Catalogue, Refusal

HUB: Final = COMMON.extend(
    {
        # --- notices (province_hub.notices, province_hub.notice_board) ---------------------
        "notice.nul": ("含有 NUL 字符", "contains a NUL character"),
        "notice.empty": ("不能为空", "must not be empty"),
        "notice.key_unseen": (
            "含有看不见的字符（U+{code}）：口径键是名称，两个看起来相同的键必须是同一个",
            "holds a character that shows nothing (U+{code}): a key is a name, and two keys "
            "that look the same must be one",
        ),
        "notice.too_long": (
            "共 {length} 个字符；最多 {maximum} 个",
            "is {length} characters; at most {maximum}",
        ),
        "notice.choose": (
            "{value!r} 无效：可选 {allowed}",
            "{value!r}: use one of {allowed}",
        ),
        "notice.unknown_cities": ("未知的地市代码：{codes}", "unknown city code(s): {codes}"),
        "notice.no_targets": (
            "请至少选择一个地市，或发送给全部地市",
            "choose at least one city, or send to all",
        ),
        "notice.deadline_missing": ("任务需要完成时限", "a task needs a deadline"),
        "notice.deadline_not_task": (
            "只有任务有完成时限（此通知的类型为{kind}）",
            "only a task has a deadline (this notice's kind is {kind})",
        ),
        "notice.field_not_kind": (
            "{field}只属于{owner}（此通知的类型为{kind}）",
            "{field} is for a {owner} only (this notice's kind is {kind})",
        ),
        "notice.deadline_zone": ("请给出时区", "give the time zone"),
        "notice.deadline_past": ("已经过去", "is in the past"),
        "notice.deadline_far": (
            "晚于 {year} 年：是否输入有误？",
            "is after {year}: a typing error?",
        ),
        "notice.not_datetime": ("{value!r} 不是日期和时间", "{value!r} is not a date and time"),
        "notice.version_range": (
            "请填写版本号，1 至 {maximum}",
            "give the version, 1 to {maximum}",
        ),
        "notice.unknown_category": (
            "类别 {code!r} 不在省中心的类别树中",
            "category {code!r} is not in the hub's category tree",
        ),
        "notice.not_whole": ("{value!r} 不是整数", "{value!r} is not a whole number"),
        "notice.version_sent": (
            "{key!r} 的 v{latest} 已经发送过；下一版本应为 v{next}",
            "v{latest} of {key!r} was sent already; the next is v{next}",
        ),
        "notice.not_roster_city": (
            "{city!r} 不是名册中的地市",
            "{city!r} is not a city of the roster",
        ),
        "notice.about_city_missing": (
            "请选择被通报的地市",
            "name the city the finding is about",
        ),
        "notice.too_big": (
            "公告共 {size} 字节；最多 {maximum} 字节",
            "the notice is {size} bytes; at most {maximum}",
        ),
        "notice.confirm_all": (
            "发送给全部 {count} 个地市的公告需要确认",
            "a notice to all {count} cities needs the confirmation",
        ),
        "notice.sent_by": (
            "“{kind}”类公告的发送人只能是：{who}",
            "{kind} notices are sent by: {who}",
        ),
        "notice.answered_by": (
            "异议只能由以下角色答复：{who}",
            "objections are answered by: {who}",
        ),
        "notice.not_sent_to": (
            "公告 {seq} 未发送给地市 {city!r}",
            "notice {seq} was not sent to city {city!r}",
        ),
        "notice.no_objection": (
            "地市 {city} 未对公告 {seq} 提出异议",
            "city {city} has not objected to {seq}",
        ),
        "notice.not_found": ("没有公告 {seq}", "no notice {seq}"),
        # --- the escalation desk (province_hub.desk, province_hub.desk_views) -------------
        "desk.longer_than": (
            "{field}超过 {maximum} 个字符",
            "{field} is longer than {maximum} characters",
        ),
        "desk.choose": (
            "{field} {value!r} 无效：可选 {allowed}",
            "{field} {value!r} is not one of {allowed}",
        ),
        "desk.entry_kind": (
            "{field} {value!r} 无效：备注或联系记录",
            "{field} {value!r}: note or contact",
        ),
        "desk.not_roster_city": (
            "地市 {city!r} 不是名册中的地市",
            "city {city!r} is not a city of the roster",
        ),
        "desk.ticket_missing": ("请填写地市的工单号", "name the city's ticket"),
        "desk.resolution_missing": (
            "请说明省中心如何处理该投诉",
            "say how the province resolved the complaint",
        ),
        "desk.not_gm_hotline": (
            "{field} {value!r} 不是在用的总经理热线账户",
            "{field} {value!r} is not an active general-manager hotline account",
        ),
        "desk.unknown_escalation": (
            "地市 {city} 未向省中心升级过工单 {ticket}",
            "city {city} has sent no escalation of ticket {ticket} to this hub",
        ),
        "desk.ticket_resolved": (
            "工单 {ticket} 的升级投诉已经办结",
            "the escalation of ticket {ticket} is resolved already",
        ),
        "desk.case_resolved": (
            "升级投诉 {city}/{seq} 已经办结",
            "escalation {city}/{seq} is resolved already",
        ),
        "desk.case_not_found": (
            "工作台上没有升级投诉 {city}/{seq}",
            "no escalation {city}/{seq} on the desk",
        ),
        "desk.ticket_control": (
            "含有控制字符(U+{code})；工单号只能是一行",
            "contains a control character (U+{code}); a ticket id is one line",
        ),
        "desk.city_unknown": (
            "{field} {city!r} 不在名册中",
            "{field} {city!r} is not on the roster",
        ),
        "desk.range_reversed": ("日期范围的结束早于开始", "the range ends before it starts"),
        # --- staff accounts (province_hub.staff, the account page) ------------------------
        "staff.unknown": ("没有省中心账户 {staff_id!r}", "no hub staff member {staff_id!r}"),
        "staff.unknown_active": (
            "没有在用的省中心账户 {staff_id!r}",
            "no active hub staff member {staff_id!r}",
        ),
        # --- figures and the pages' filters (province_hub.consolidation, web.views) -------
        "figures.start_bad": ("{field} {start} 无效：{problem}", "{field} {start}: {problem}"),
        "figures.start_range": (
            "{field} {start} 不在 {low} 至 {high} 之间",
            "{field} {start} is outside {low} .. {high}",
        ),
        "figures.kpi": (
            "指标 {value!r} 无效，可选：{allowed}",
            "kpi {value!r} is not one of: {allowed}",
        ),
        "figures.count": (
            "数量 {count} 必须在 1 到 400 之间",
            "count {count} must be between 1 and 400",
        ),
        "figures.too_many_cities": (
            "选了 {count} 个地市；最多 {most} 个",
            "{count} cities chosen; at most {most}",
        ),
        "figures.cities_unknown": (
            "地市 {codes} 不在名册中",
            "cities {codes} not on the roster",
        ),
        "figures.city_unknown": ("地市 {city!r} 不在名册中", "city {city!r} is not on the roster"),
        "figures.city_required": ("导出报表需要选择地市", "city is required for the report export"),
        "figures.dates_reversed": (
            "起始日期 {date_from} 晚于截止日期 {date_to}",
            "from {date_from} is after to {date_to}",
        ),
        "figures.sort": (
            "排序 {value!r} 无效，可选：{allowed}",
            "sort {value!r} is not one of: {allowed}",
        ),
        "figures.batch_key": (
            "批次 {value!r} 不是 地市:序号 格式(例如 620100:6)",
            "batch {value!r} is not CITY:SEQ (e.g. 620100:6)",
        ),
        "figures.batches_none": (
            "建议批次：请至少选择一个建议批次",
            "batches: name at least one suggestion batch",
        ),
        "figures.batches_unknown": (
            "建议批次：{count} 个不是省中心持有的建议批次({shown})",
            "batches: {count} not a suggestion batch the hub holds ({shown})",
        ),
        "figures.thresholds": (
            "基准期数和阈值必须为正数",
            "baseline and thresholds must be positive",
        ),
    },
    {
        # The fields the hub's forms and queries refuse by name.
        "title": ("标题", "title"),
        "body": ("正文", "body"),
        "priority": ("优先级", "priority"),
        "targets": ("发送给", "targets"),
        "deadline": ("完成时限", "deadline"),
        "question": ("问题", "question"),
        "answer": ("答复", "answer"),
        "version": ("版本", "version"),
        "key": ("口径标识", "key"),
        "about_city": ("被通报地市", "about_city"),
        "source": ("来源", "source"),
        "confirm_all": ("全部地市确认", "confirm_all"),
        "city_code": ("地市", "city_code"),
        "ticket_id": ("工单号", "ticket_id"),
        "resolution": ("处理意见", "resolution"),
        "outcome": ("处理结果", "outcome"),
        "assignee": ("处理人", "assignee"),
        "seq": ("序号", "seq"),
        "period": ("周期", "period"),
        "start": ("起始日", "start"),
        "kpi": ("指标", "kpi"),
        "cities": ("地市", "cities"),
        "category": ("分类", "category"),
        "from": ("起始日期", "from"),
        "order": ("顺序", "order"),
        "format": ("格式", "format"),
        "kind": ("类型", "kind"),
        "offset": ("起始位置", "offset"),
        "limit": ("条数", "limit"),
        "text": ("内容", "text"),
        "state": ("状态", "state"),
        "sort": ("排序", "sort"),
        "to": ("截止日期", "to"),
        "new": ("新密码", "new"),
        "city": ("地市", "city"),
        "last": ("截至周期", "last"),
        "current": ("当前密码", "current"),
        # the audit log's filters
        "actor": ("操作人", "actor"),
        "action": ("操作", "action"),
    },
)


class HubRefusal(Refusal):
    """Base of the hub's refusals: their sentences are :data:`HUB`'s."""

    catalogue: ClassVar[Catalogue] = HUB
