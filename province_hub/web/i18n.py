"""Supervisor web labels in Chinese and English (plus the foundation's shared ones).

Table headers are not here: a table's columns carry both languages
(:mod:`province_hub.web.tables`), as its exports use the Chinese ones.
"""

from __future__ import annotations

from typing import Final

from sync.web.i18n import COMMON_LABELS, Labels

LABELS: Final[dict[str, tuple[str, str]]] = {
    **COMMON_LABELS,
    "app_title": ("省客服中心督查平台", "Province supervision"),
    "nav_overview": ("全省概览", "Overview"),
    "nav_comparison": ("地市对比", "Comparison"),
    "nav_trends": ("趋势", "Trends"),
    "nav_reports": ("报表浏览", "Reports"),
    "nav_hotspots": ("咨询热点", "Hot-spots"),
    "nav_overtime": ("超时与赔偿", "Overtime"),
    "nav_qa": ("质检", "QA"),
    "nav_suggestions": ("建议", "Suggestions"),
    "nav_quarantine": ("隔离记录", "Quarantine"),
    "nav_links": ("链路状态", "Link health"),
    "period": ("周期", "Period"),
    "start": ("起始日", "Start"),
    "last": ("截至周期", "Last period"),
    "show": ("显示", "Show"),
    "city": ("地市", "City"),
    "cities": ("地市(可多选)", "Cities (several)"),
    "category": ("分类", "Category"),
    "date_from": ("起始日期", "From"),
    "date_to": ("截止日期", "To"),
    "export": ("导出", "Export"),
    "sort_by": ("排序", "Sort by"),
    "descending": ("降序", "descending"),
    "ascending": ("升序", "ascending"),
    "vs_last": ("与上期相比", "vs last period"),
    "missing_reports": ("未报地市", "Cities without a report"),
    "none_missing": ("全部地市已报", "Every city has reported"),
    "reporting": ("已报地市", "Cities reporting"),
    "warnings": ("预警", "Early warnings"),
    "no_warnings": ("无预警", "No warnings"),
    "no_rows": ("没有数据", "No data"),
    "revision": ("版次", "Revision"),
    "compare": ("比较", "Compare"),
    "no_revisions": ("该地市此周期没有报表", "No report from this city for this period"),
    "mark_seen": ("标记为已阅", "Mark as seen"),
    "new_batches": ("新建议批次", "New suggestion batches"),
    "province": ("全省", "Province"),
    "chart_hint": (
        "全省曲线为各地市数据汇总后计算；可选择地市叠加显示",
        "The province line is computed from the summed counts; choose cities to add theirs",
    ),
    "not_compared": ("缺少本期或上期报表、未比较的地市", "Cities not compared (a period missing)"),
    "day": ("日", "day"),
    "week": ("周", "week"),
    "month": ("月", "month"),
    "quarter": ("季", "quarter"),
    "year": ("年", "year"),
    "supervisor": ("服务督查岗", "supervisor"),
    "statistics_manager": ("统计管理岗", "statistics manager"),
    "materials_manager": ("资料管理岗", "materials manager"),
    "gm_hotline": ("总经理热线", "GM hotline"),
    "announcer": ("公告发布岗", "announcer"),
    "admin": ("系统管理员", "administrator"),
}

TABLE: Final = Labels(LABELS)
