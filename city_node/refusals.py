"""The city's refusals in Chinese and English (with the shared ones of :mod:`sync.refusals`).

Every refusal of the city's services is a :class:`city_node.errors.CityError` (a
:class:`sync.refusals.Refusal` whose catalogue is :data:`CITY`) raised with a code of this
catalogue and its values. The English sentence is the exception's message, word for word
what the HTTP API's ``detail``, the shell and the logs have always said; the city console's
pages show the Chinese one on a Chinese page, with the roles, actions, statuses and kinds it
names in Chinese too (the console's label table).
"""

from __future__ import annotations

from typing import Final

from sync.refusals import COMMON

CITY: Final = COMMON.extend(
    {
        # --- a form's values (city_node.commands, city_node.context, web.pages) ------------
        "choice.not_one_of": (
            "{field} {value!r} 无效，可选：{choices}",
            "{field} {value!r} is not one of: {choices}",
        ),
        "choice.missing": (
            "请填写{field}，可选：{choices}",
            "{field} is required: one of {choices}",
        ),
        "text.not_text": ("{field}必须是文本", "{field} must be text"),
        "text.over_hub_limit": (
            "{field}共 {length} 个字符；最多 {maximum} 个(省中心不接收更长的内容)",
            "{field} is {length} characters; at most {maximum} are accepted "
            "(the province hub refuses longer ones)",
        ),
        "text.bad_char": (
            "含有字符 U+{code}，不接受此类字符",
            "contains U+{code}; such characters are refused",
        ),
        "number.not_whole": (
            "{field}应为整数(收到 {value!r})",
            "{field} must be a whole number, got {value!r}",
        ),
        "number.range": (
            "{field}应在 {low} 到 {high} 之间(收到 {number})",
            "{field} must be {low} to {high}, got {number}",
        ),
        "command.only_for": (
            "{field}仅用于“{for_action}”操作，不适用于“{action}”",
            "{field} is only for action={for_action}, not {action}",
        ),
        "form.invalid": ("{problems}；请修改后重新提交", "{problems}"),
        "actor.missing": ("请说明由谁操作(操作人工号)", "say who acts (actor id)"),
        # --- ids that no store holds (city_node.context.existing_id) ----------------------
        "id.no_notice": (
            "公告 {value!r} 不存在(编号为 1 至 {maximum})",
            "notice {value!r} does not exist (ids are 1 to {maximum})",
        ),
        "id.no_report": (
            "报表 {value!r} 不存在(编号为 1 至 {maximum})",
            "report {value!r} does not exist (ids are 1 to {maximum})",
        ),
        "id.no_qa_sample": (
            "质检样本 {value!r} 不存在(编号为 1 至 {maximum})",
            "QA sample {value!r} does not exist (ids are 1 to {maximum})",
        ),
        # --- the ticket rules (city_node.domain, city_node.errors) ------------------------
        "role.may_not": (
            "角色“{role}”无权执行“{action}”；仅限：{roles}",
            "role {role} may not {action}: only {roles}",
        ),
        "role.priority_customer": (
            "角色“{role}”无权执行“{action}”：“{tier}”级别的客户由高级话务员服务，请转交高级话务员",
            "role {role} may not {action}: {tier} customers are served by senior operators; "
            "hand it to a senior",
        ),
        "role.manager_settles": (
            "角色“{role}”无权执行“{action}”：已升级至经理热线的工单由经理热线处理",
            "role {role} may not {action}: a ticket escalated to the manager hotline is the "
            "manager hotline's to settle",
        ),
        "ticket.illegal_transition": (
            "工单当前状态为“{status}”，不能执行“{action}”；此状态下可执行：{actions}",
            "cannot {action} a ticket in status {status}; allowed from {status}: {actions}",
        ),
        "ticket.nothing_allowed": (
            "工单当前状态为“{status}”，不能执行“{action}”；此状态下已无可执行的操作",
            "cannot {action} a ticket in status {status}; allowed from {status}: nothing",
        ),
        "time.naive": (
            "{field}必须带时区(收到不带时区的 {value!r})",
            "{field} must be a timezone-aware datetime, got naive {value!r}",
        ),
        "ticket.step_before_last": (
            "工单 {ticket}：“{action}”的时间 {at} 早于上一步的记录时间 {last}",
            "ticket {ticket}: {action} at {at} is before the last recorded step at {last}",
        ),
        "ticket.reopen_needs_dissatisfied": (
            "工单 {ticket}：只有回访结果为不满意时才能重新打开",
            "ticket {ticket}: only a dissatisfied survey may reopen it",
        ),
        "extension.days": (
            "工单 {ticket}：延期至少 1 天(收到 {days})",
            "ticket {ticket}: an extension needs at least 1 day, got {days}",
        ),
        "extension.pending": (
            "工单 {ticket}：已有待审批的延期申请",
            "ticket {ticket}: an extension request is already pending",
        ),
        "extension.none_pending": (
            "工单 {ticket}：没有待审批的延期申请",
            "ticket {ticket}: no extension request is pending",
        ),
        # --- tickets (city_node.tickets, city_node.ticket_store, web.models) --------------
        "ticket.bad_id": (
            "工单号 {value!r} 无效(工单号为 1 至 {maximum})",
            "ticket id {value!r} is not a ticket (ids are 1 to {maximum})",
        ),
        "ticket.id_not_number": (
            "工单号 {value!r} 不是数字",
            "ticket id {value!r} is not a number",
        ),
        "ticket.category_unknown": (
            "分类 {value!r} 不在本市的分类目录中",
            "category {value!r} is not in this city's category tree",
        ),
        "ticket.category_code_unknown": (
            "未知的分类代码 {code!r}",
            "unknown category code {code!r}",
        ),
        "ticket.follow_up": (
            "登记后不能接着“{action}”；可接：{actions}",
            "then={action}: register can be followed by {actions}",
        ),
        "ticket.dispatch_needs_branch": (
            "派单须填写承办单位",
            "dispatch needs the branch to send the ticket to",
        ),
        "ticket.branch_then_dispatch": (
            "只有派单才需填写承办单位",
            "branch is only for then=dispatch",
        ),
        "ticket.branch_action_dispatch": (
            "只有派单才需填写承办单位",
            "branch is only for action=dispatch",
        ),
        "ticket.reason_needed": ("“{action}”须说明理由(备注)", "{action} needs the reason (note)"),
        "ticket.not_an_action": (
            "“{action}”不是对已有工单的操作",
            "{action} is not an action on an existing ticket",
        ),
        "ticket.changed": (
            "工单 {ticket} 已被他人修改，请刷新后重试",
            "ticket {ticket} was changed by someone else meanwhile; reload it",
        ),
        "ticket.not_found": (
            "本市没有工单 {ticket}",
            "ticket {ticket} does not exist in this city's store",
        ),
        "compensation.fen": (
            "赔偿金额 {fen!r} 无效：请填写 1 至 {maximum} 之间的整数(单位：分)",
            "compensation {fen!r}: give a whole number of fen, 1 to {maximum}",
        ),
        "compensation.yuan": (
            "赔偿金额 {value!r} 无效：请填写以元为单位的金额，最多两位小数(如 50 或 12.50)",
            "amount {value!r}: give yuan with at most two decimals (50 or 12.50)",
        ),
        "compensation.not_overtime": (
            "工单 {ticket} 未超时：只有超时限的投诉才能赔偿",
            "ticket {ticket} has not run past its time limit: only overtime complaints are "
            "compensated",
        ),
        "compensation.not_complaint": (
            "工单 {ticket} 是{kind}工单：只有投诉工单才能赔偿",
            "ticket {ticket} is not a complaint but a {kind}: only complaints are compensated",
        ),
        # --- customers' personal data (city_node.personal_data) ---------------------------
        "phone.digits": (
            "请填写数字(空格和短横线会被去掉)",
            "use digits (spaces and dashes are dropped)",
        ),
        "phone.length": (
            "{field}共 {count} 位；电话号码应为 {low} 至 {high} 位",
            "{field} has {count} digits; a phone number has {low} to {high}",
        ),
        # --- suggestions (city_node.suggestions) ------------------------------------------
        "suggestion.not_suggestion": (
            "工单 {ticket} 是{kind}工单，不是建议",
            "ticket {ticket} is not a suggestion but a {kind}",
        ),
        "suggestion.label_length": (
            "请填写 1-{maximum} 个字符的建议类别",
            "give a class of 1-{maximum} characters",
        ),
        "suggestion.already_sent": (
            "工单 {ticket} 已随建议批次报送，类别不能再改",
            "ticket {ticket} was already sent in a suggestion batch; its class stays",
        ),
        "suggestion.batch_race": (
            "另一批建议刚刚报送，请重新报送",
            "another suggestion batch was sent meanwhile; send again",
        ),
        # --- province notices and answers (city_node.services) ----------------------------
        "rules.broken": ("不符合省中心的数据规则：{problem}", "{problem}"),
        "receipt.action": (
            "回执类型 {value!r} 无效：可选 {allowed}",
            "action {value!r}: use one of {allowed}",
        ),
        "receipt.objection_reason": (
            "提出异议须说明理由(备注)",
            "an objection needs its reason (note)",
        ),
        "notice.not_in_inbox": (
            "本市收件箱中没有公告 {notice}",
            "notice {notice} is not in this city's inbox",
        ),
        "search.too_many_words": (
            "查询内容共 {words} 个词；最多 {maximum} 个",
            "q has {words} words; search with at most {maximum}",
        ),
        # --- QA (city_node.qa) ------------------------------------------------------------
        "qa.how": (
            "抽样方式 {value!r} 无效：可选 scheduled 或 random",
            "how {value!r}: use scheduled or random",
        ),
        "qa.count": (
            "抽样数量 {count} 无效：应在 1 到 1000 之间",
            "count {count}: draw between 1 and 1000 samples",
        ),
        "qa.rate": (
            "抽样比例 {rate} 无效：应在 0 到 1 之间",
            "rate {rate}: give a share between 0 and 1",
        ),
        "qa.draw_race": (
            "另一次抽样同时抽中了同一工单，请重新抽样",
            "another draw sampled the same ticket meanwhile; draw again",
        ),
        "qa.sample_not_found": ("质检样本 {sample} 不存在", "QA sample {sample} does not exist"),
        "qa.unknown_items": (
            "评分表中没有评分项 {items}；评分项为：{known}",
            "scorecard has no item {items}; items: {known}",
        ),
        "qa.missing_items": ("请为每一项评分；缺少：{items}", "score every item; missing: {items}"),
        "qa.points": (
            "评分项 {item}：分数应为 0-100 的整数(收到 {points!r})",
            "item {item}: points must be a whole number 0-100, got {points!r}",
        ),
        "qa.defects": (
            "差错类型 {defects} 无效，可选：{allowed}",
            "defect {defects} is not one of: {allowed}",
        ),
        "qa.defects_twice": (
            "差错类型 {defects} 重复填写，每种差错只填一次",
            "defect {defects} is listed twice; list each kind once",
        ),
        "qa.already_scored": (
            "质检样本 {sample} 已经评分，评分不能修改",
            "QA sample {sample} is already scored; a score is not changed",
        ),
        # --- report periods and reports (city_node.report_figures, city_node.reports) -----
        "period.invalid": ("统计周期无效：{problem}", "{problem}"),
        "report.kind": (
            "报表类型 {value!r} 无效，可选：{allowed}",
            "report kind {value!r} is not one of: {allowed}",
        ),
        "report.inspectors_draft": (
            "角色“{role}”无权执行“{action}”：{kind}报表由质检员起草",
            "role {role} may not {action}: {kind} reports are a QA inspector's",
        ),
        "report.statisticians_draft": (
            "角色“{role}”无权执行“{action}”：{kind}报表由统计员起草",
            "role {role} may not {action}: {kind} reports are a statistician's",
        ),
        "report.not_begun": (
            "统计周期({kind}，始于 {start})尚未开始",
            "the {kind} starting {start} has not begun yet",
        ),
        "report.draft_race": (
            "同一时间已有人起草了 {start} 的{kind}报表，请重试",
            "another {kind} report for {start} was drafted meanwhile; retry",
        ),
        "report.not_found": ("报表 {report} 不存在", "report {report} does not exist"),
        "report.reject_needs_note": (
            "驳回须填写理由(审批意见)",
            "a rejection needs the reason (note)",
        ),
        "report.decided": (
            "报表 {report} 的状态为“{status}”，不是待审批的草稿",
            "report {report} is already {status}, not a draft awaiting approval",
        ),
        "report.own_draft": (
            "角色“{role}”无权执行“{action}”：报表 {report} 由 {actor} 起草，须由另一位中心领导"
            "审批(审批与起草分离：approver_not_drafter)",
            "role {role} may not {action}: {actor} drafted report {report}; another leader "
            "approves it (separation of duties: approver_not_drafter)",
        ),
        "report.cannot_send": (
            "报表 {report} 无法上报：{problem}",
            "report {report} cannot be sent: {problem}",
        ),
        # --- staff accounts (city_node.staff) ---------------------------------------------
        "staff.unknown": ("没有人员账户 {staff_id!r}", "no staff member {staff_id!r}"),
        "staff.disable_self": (
            "不能停用自己的账户(请另一位中心领导操作)",
            "you cannot disable your own account (ask another leader)",
        ),
        "staff.own_role": (
            "不能修改自己的角色(请另一位中心领导操作)",
            "you cannot change your own role (ask another leader)",
        ),
        "staff.enable_self": (
            "不能启用自己的账户(请另一位中心领导操作)",
            "you cannot enable your own account (ask another leader)",
        ),
        "staff.own_password": (
            "不能重置自己的密码(请另一位中心领导或节点管理员操作)",
            "you cannot reset your own password (ask another leader or the node's administrator)",
        ),
        # --- one node per store (city_node.node_lock) ----------------------------------------
        "node.running": (
            "城市 {city} 的节点正在使用此数据库运行：请先停止它"
            "(再启动第二个节点或重定基线都会出错)",
            "a node of city {city} is running on this store: stop it first (a second node, "
            "or a re-base under it, would go wrong)",
        ),
        # --- the demo simulator (city_node.simulator, city_node.simulator_mix) ------------
        "simulate.days": ("模拟天数至少为 1(收到 {days})", "days must be 1 or more, got {days}"),
        "simulate.scale": (
            "规模应大于 0 且不超过 {maximum}(收到 {scale})",
            "scale must be above 0 and at most {maximum}, got {scale}",
        ),
        "simulate.naive_now": ("当前时间必须带时区", "now must be timezone-aware"),
        "simulate.too_early": (
            "模拟 {days} 天：历史数据的起始日期过早({problem})",
            "days {days}: the history would begin too early ({problem})",
        ),
        "simulate.real_store": (
            "该数据库已有实际业务数据({tickets} 张工单、{staff} 个人员账户)，不是演示数据库："
            "模拟器只写入空数据库或由它自己创建的数据库",
            "this store has real work ({tickets} tickets, {staff} staff accounts) and is not "
            "a demo store: the simulator only writes into an empty store or one it made",
        ),
    },
    {
        # The fields the city's forms, queries and commands refuse by name.
        "customer_phone": ("客户电话", "customer_phone"),
        "customer_name": ("客户姓名", "customer_name"),
        "tier": ("客户级别", "tier"),
        "content": ("内容", "content"),
        "then": ("后续处理", "then"),
        "branch": ("承办单位", "branch"),
        "note": ("备注", "note"),
        "action": ("操作", "action"),
        "outcome": ("回访结果", "outcome"),
        "reopen": ("重新打开", "reopen"),
        "days": ("天数", "days"),
        "reason": ("理由", "reason"),
        "fen": ("赔偿金额", "fen"),
        "yuan": ("赔偿金额(元)", "yuan"),
        "open_only": ("仅未办结", "open_only"),
        "overtime_only": ("仅超时", "overtime_only"),
        "extension_pending": ("待批延期", "extension_pending"),
        "operator": ("话务员", "operator"),
        "count": ("数量", "count"),
        "label": ("建议类别", "label"),
        "finding": ("质检意见", "finding"),
        "items": ("评分项", "items"),
        "defects": ("差错类型", "defects"),
        "at": ("时间", "at"),
        "now": ("当前时间", "now"),
        "registered_at": ("登记时间", "registered_at"),
    },
)
