"""Languages and the labels every console shares (login, layout, errors).

Every word a template shows goes through ``t(...)``: a tier's table is these labels plus its
own (:class:`Labels`), so a missing translation is a missing key, which tests catch by
rendering both languages. Enum values are keyed by their value, so the same words are used
in the UI as in code and docs. Chinese is the default: the people using the consoles work
in Chinese.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT_LANG: Final[Lang] = "zh"

#: QA defect kinds (a city's ``qa.DEFECT_KINDS``: the wire's ``DefectKind`` names, ``other``
#: for OTHER_DEFECT) → (zh, en), as the city's console and the hub's pages say them.
DEFECT_WORDS: Final[dict[str, tuple[str, str]]] = {
    "late": ("超时处理", "late"),
    "wrong_answer": ("答复错误", "wrong answer"),
    "incomplete_record": ("记录不完整", "incomplete record"),
    "wrong_category": ("分类错误", "wrong category"),
    "attitude": ("服务态度", "attitude"),
    "no_callback": ("未回访", "no callback"),
    "other": ("其他差错", "other defect"),
}

#: A ticket's kind, channel and status as the city stores them (and the wire carries them:
#: an escalation's and a trace's), in the words both tiers' pages show: value ->
#: (Chinese, English).
TICKET_WORDS: Final[dict[str, tuple[str, str]]] = {
    "complaint": ("投诉", "complaint"),
    "suggestion": ("建议", "suggestion"),
    "enquiry": ("咨询", "enquiry"),
    "help_request": ("求助", "help request"),
    "praise": ("表扬", "praise"),
    "phone": ("电话", "phone"),
    "web": ("网站", "web"),
    "walk_in": ("到访", "walk-in"),
    "letter": ("信件", "letter"),
    "other": ("其他", "other"),
    "registered": ("已登记", "registered"),
    "answered": ("已答复", "answered"),
    "dispatched": ("已派单", "dispatched"),
    "with_senior": ("转高级话务员", "with senior"),
    "in_progress": ("处理中", "in progress"),
    "returned": ("已回单", "returned"),
    "closed": ("已结案", "closed"),
    "surveyed": ("已回访", "surveyed"),
    "escalated_manager": ("已升级经理热线", "escalated to manager"),
    "escalated_province": ("已升级省中心", "escalated to province"),
    # a ticket's steps, as its history (and a trace's, an escalation's) names them
    "register": ("登记", "register"),
    "answer": ("答复", "answer"),
    "dispatch": ("派单", "dispatch"),
    "hand_to_senior": ("转高级话务员", "hand to senior"),
    "start": ("承办受理", "start"),
    "branch_return": ("回单", "branch return"),
    "close": ("结案", "close"),
    "survey": ("满意度回访", "survey"),
    "chase": ("追单", "chase"),
    "rework": ("退单", "rework"),
    "escalate_manager": ("升级经理热线", "escalate to manager"),
    "escalate_province": ("升级省中心", "escalate to province"),
    "province_resolved": ("省中心已处理", "province resolved"),
    "request_extension": ("申请延期", "request extension"),
    "approve_extension": ("批准延期", "approve extension"),
    "reject_extension": ("驳回延期", "reject extension"),
    "compensate": ("赔偿", "compensate"),
}


def worded(words: Mapping[str, tuple[str, str]], value: str | None, lang: str) -> str:
    """``value`` in ``lang`` by ``words`` (value -> (Chinese, English)); an unknown one (a
    newer peer's) as it came, none as "-"."""
    if not value:
        return "-"
    pair = words.get(value)
    return value if pair is None else pair[0 if lang == "zh" else 1]


def ticket_word(value: str | None, lang: str) -> str:
    """A ticket kind, channel, status or step in ``lang``."""
    return worded(TICKET_WORDS, value, lang)


#: key -> (Chinese, English): the shared layout, login and error pages.
COMMON_LABELS: Final[dict[str, tuple[str, str]]] = {
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "staff_id": ("工号", "Staff id"),
    "password": ("密码", "Password"),
    "login_failed": ("工号或密码错误", "Wrong staff id or password"),
    "login_throttled": (
        "登录失败次数过多，请稍后再试",
        "Too many failed logins; try again later",
    ),
    "language": ("语言", "Language"),
    "error": ("无法完成", "Could not be done"),
    "back": ("返回", "Back"),
    # the account page (sync/web/templates/account.html); its hint is each tier's own
    "nav_account": ("我的账户", "My account"),
    "current_password": ("当前密码", "Current password"),
    "new_password": ("新密码(至少 12 个字符)", "New password (12 characters or more)"),
    "new_password_again": ("再次输入新密码", "New password again"),
    "change_password": ("修改密码", "Change password"),
    "password_changed": (
        "密码已修改;该账户在其他浏览器中的会话已全部退出。",
        "Password changed; the account's sessions in other browsers have ended.",
    ),
}


def pick_lang(value: str | None) -> Lang | None:
    """The language a ``?lang=`` or cookie value names, or None when it names none.

    A language tag names its language by its first part, in any case: ``zh``, ``zh-CN``,
    ``zh_Hans`` are Chinese, ``en-GB`` English (what a browser or a person types)."""
    if not value:
        return None
    primary = value.strip().replace("_", "-").split("-", 1)[0].lower()
    if primary == "zh":
        return "zh"
    if primary == "en":
        return "en"
    return None


def preferred_lang(accept_language: str | None) -> Lang | None:
    """The language of the consoles a browser's ``Accept-Language`` ranks first, or None.

    ``en-US,en;q=0.9,zh-CN;q=0.8`` is English; a language with ``q=0`` is one the browser
    refuses; unknown languages are passed over. Ties keep the header's order."""
    ranked: list[tuple[float, int, Lang]] = []
    for index, item in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = item.partition(";")
        lang = pick_lang(tag)
        if lang is None:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, lang))
    return min(ranked)[2] if ranked else None


class Labels:
    """One console's label table: :data:`COMMON_LABELS` plus the tier's own.

    ``aliases`` maps enum values that share a spelling with a label of another meaning
    (``phone`` is a channel and the phone-number field) to their own key."""

    def __init__(
        self, labels: Mapping[str, tuple[str, str]], aliases: Mapping[str, str] | None = None
    ) -> None:
        self.table: dict[str, tuple[str, str]] = {**COMMON_LABELS, **labels}
        self.aliases = dict(aliases or {})

    def label(self, lang: Lang, key: str) -> str:
        """The label for ``key``; an unknown key is shown as itself (visible, never a crash)."""
        pair = self.table.get(key)
        if pair is None:
            return key
        return pair[0] if lang == "zh" else pair[1]

    def value_label(self, lang: Lang, value: str) -> str:
        """The label of an enum value (status, role, period…)."""
        return self.label(lang, self.aliases.get(value, value))
