"""Refusals in the reader's language: a catalogue of sentences by stable code, and the base
class of the exceptions that carry a code and its values.

A service raises ``SomeRefusal("notice.empty", field="title")``; the exception's ``str`` is
the English sentence (what the HTTP API's ``detail`` and the shell print, unchanged for the
clients that read them), and a page shows ``exc.say(lang)``, the sentence in its own
language. Each entry has the Chinese and the English sentence with the same named
placeholders (``str.format`` fields, ``{value!r}`` allowed); ``tests/unit/sync/
test_refusals.py`` checks every catalogue.

A refusal about one field of a form names it: in English by its identifier, as the API has
always said (``title: must not be empty``), in Chinese by the field's name in the
catalogue's ``fields`` (``标题：不能为空``); before the sentence, or where the sentence
places ``{field}``.

This module holds the base and what both tiers' consoles share (roles, CSRF, passwords,
staff names); each tier adds its own entries (``province_hub.refusals``,
``city_node.refusals``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

#: The consoles' languages (the same as ``sync.web.i18n.Lang``, without the web stack).
Lang = Literal["zh", "en"]


@dataclass(frozen=True)
class Sentence:
    """One refusal in both languages, with named placeholders."""

    zh: str
    en: str

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


def placeholders(template: str) -> frozenset[str]:
    """The named placeholders of a ``str.format`` template."""
    return frozenset(
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    )


@dataclass(frozen=True)
class Catalogue:
    """Sentences by code, and the names of the fields they may be about (identifier →
    (Chinese, English)); ``extend`` adds a tier's own to a shared one."""

    sentences: Mapping[str, Sentence]
    fields: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def extend(
        self,
        sentences: Mapping[str, tuple[str, str]],
        fields: Mapping[str, tuple[str, str]] | None = None,
    ) -> Catalogue:
        overlap = set(sentences) & set(self.sentences)
        if overlap:
            raise ValueError(f"refusal codes defined twice: {', '.join(sorted(overlap))}")
        return Catalogue(
            {**self.sentences, **{code: Sentence(*pair) for code, pair in sentences.items()}},
            {**self.fields, **(fields or {})},
        )

    def field_name(self, field_name: str, lang: str) -> str:
        """A form field's name: its identifier in English, its catalogue name in Chinese."""
        if lang == "zh":
            return self.fields.get(field_name, (field_name, field_name))[0]
        return field_name

    def say(
        self,
        code: str,
        lang: str,
        values: Mapping[str, Any],
        field_name: str = "",
        word: Callable[[str], str] | None = None,
    ) -> str:
        """The sentence ``code`` in ``lang`` with ``values``. A refusal about a field names
        it: where the sentence has a ``{field}`` placeholder, there; else before it.

        ``word`` names a value in ``lang`` (a page's label table): a Chinese sentence then
        says the roles and kinds of :data:`WORDED` placeholders in Chinese — ``角色 服务督查岗``,
        not ``角色 supervisor`` — a list of them joined with ``、``."""
        template = self.sentences[code].text(lang)
        if word is not None and lang == "zh":
            values = {
                k: "、".join(word(item) for item in str(v).split(", ")) if k in WORDED else v
                for k, v in values.items()
            }
        name = self.field_name(field_name, lang)
        if "field" in placeholders(template):
            return template.format(**{**values, "field": name})
        text = template.format(**values)
        if not field_name:
            return text
        return f"{name}：{text}" if lang == "zh" else f"{field_name}: {text}"


#: Placeholders whose values are words of the domain (a role, a list of roles, a period,
#: notice or ticket kind, an area of a role table, a ticket's action, actions, status or
#: customer tier), said in the page's language when the page gives its words. Others (a
#: value typed, the choices to type instead) stay as written: they are what the reader types.
WORDED: Final = frozenset(
    {"role", "roles", "who", "kind", "area", "action", "actions", "for_action", "status", "tier"}
)


def catalogue(
    sentences: Mapping[str, tuple[str, str]], fields: Mapping[str, tuple[str, str]] | None = None
) -> Catalogue:
    return Catalogue({code: Sentence(*pair) for code, pair in sentences.items()}, fields or {})


#: What both consoles refuse alike.
COMMON: Final = catalogue(
    {
        # sync.web.auth
        "role.not_allowed": (
            "角色“{role}”无权使用“{area}”；仅限：{roles}",
            "role {role} may not use {area}; only {roles}",
        ),
        # the city console's register page
        "role.register_tickets": (
            "登记工单仅限话务员和经理热线",
            "registering tickets is for operators and the manager hotline",
        ),
        "csrf.header_missing": (
            "通过会话登录的 {method} 请求需要 {header}",
            "a session-authenticated {method} needs {header}",
        ),
        "csrf.form_expired": (
            "表单已过期或并非来自本平台，请刷新后重试",
            "the form has expired or did not come from this console; reload it",
        ),
        # sync.limits.text_refusal, said by each tier's services of a field (whichever edge)
        "text.control_char": (
            "含有控制字符(U+{code})，不接受此类字符",
            "contains a control character (U+{code}); such characters are refused",
        ),
        "text.line_break": (
            "含有换行符(U+{code})，此处只能写一行",
            "contains a line break (U+{code}); one line only",
        ),
        "text.surrogate": (
            "含有孤立代理字符(U+{code})，不接受此类字符",
            "contains a lone surrogate (U+{code}); such characters are refused",
        ),
        # sync.web.app: what the router itself answers
        "router.not_found": ("页面不存在", "Not Found"),
        "router.method_not_allowed": ("不支持该请求方式", "Method Not Allowed"),
        # sync.web.edge: before any route
        "edge.too_large": (
            "请求内容超过 {limit} 字节的上限",
            "the request body is over the limit of {limit} bytes",
        ),
        "edge.control_char": (
            "{where}：含有控制字符(U+{code})，不接受此类字符",
            "{where}: contains a control character (U+{code}); such characters are refused",
        ),
        "edge.surrogate": (
            "{where}：含有孤立代理字符(U+{code})，不接受此类字符",
            "{where}: contains a lone surrogate (U+{code}); such characters are refused",
        ),
        "edge.bad_encoding": ("{where}：不是有效的 UTF-8 文本", "{where}: is not valid UTF-8 text"),
        "edge.not_percent_encoded": (
            "{where}：含有未经百分号编码的非 ASCII 字节",
            "{where}: holds bytes outside ASCII that are not percent-encoded",
        ),
        "edge.json_depth": (
            "body：JSON 嵌套超过 {limit} 层",
            "body: the JSON nests deeper than {limit} levels",
        ),
        "edge.json_number": (
            "body：JSON 中的数字位数过多，无法读取",
            "body: a number in the JSON has too many digits to read",
        ),
        "edge.lang": (
            "语言参数 lang={value} 无效，可选：{langs}",
            "lang {value} is not one of: {langs}",
        ),
        "edge.busy": ("数据库正忙，请稍后再试", "the store is busy; try again in a moment"),
        "edge.internal": (
            "内部错误；请将错误编号 {error_id} 告知系统管理员",
            "internal error; give the administrator the error id {error_id}",
        ),
        # sync.passwords
        "password.too_short": (
            "密码至少需要 {minimum} 个字符",
            "password must have at least {minimum} characters",
        ),
        "password.only_spaces": ("密码不能全是空格", "password must not be only spaces"),
        "password.is_staff_id": ("密码不能与工号相同", "password must not be the staff id"),
        # the account page's change of one's own password (sync.passwords.change_refusal)
        "password.wrong_current": ("当前密码不正确", "the current password is wrong"),
        "password.same": ("新密码与当前密码相同", "the new password is the current one"),
        "password.repeat_differs": (
            "两次输入的新密码不一致",
            "the new password and its repetition differ",
        ),
        # sync.web.params: a query parameter given more than once
        "query.repeated": (
            "只能给出一次，却给出了 {count} 次",
            "given {count} times; give it once",
        ),
        # sync.web.params: a query parameter the API request does not take
        "query.unknown": (
            "不是本请求的参数；可用参数：{takes}",
            "not a parameter of this request; it takes {takes}",
        ),
        # sync.limits: a report's date
        "date.as_text": (
            "日期请以 YYYY-MM-DD 格式的文本填写",
            "give the date as YYYY-MM-DD text",
        ),
        "date.outside_years": (
            "{field} {day} 不在 {low}..{high} 年之间",
            "{field} {day} is outside the years {low}..{high}",
        ),
        # a query or form value the console's parser refuses (pages; the API says pydantic's
        # English, sync.web.app.validation_message)
        "input.choose": ("应为以下之一：{expected}", "Input should be {expected}"),
        "input.not_date": ("不是有效的日期(YYYY-MM-DD)", "Input should be a valid date"),
        "input.not_int": ("不是整数", "Input should be a valid integer"),
        "input.pattern": ("格式应符合 {pattern!r}", "String should match pattern {pattern!r}"),
        "input.city_code": ("应为六位数字的地市代码", "should be a city's six-digit code"),
        "input.too_long": (
            "最多 {max_length} 个字符",
            "String should have at most {max_length} characters",
        ),
        "input.at_least": ("不能小于 {ge}", "Input should be greater than or equal to {ge}"),
        "input.at_most": ("不能大于 {le}", "Input should be less than or equal to {le}"),
        "input.missing": ("必填", "Field required"),
        "input.not_bool": (
            "应为 true 或 false",
            "Input should be a valid boolean, unable to interpret input",
        ),
        # Both tiers: a text field, a report period, a staff account.
        "text.required": ("{field}为必填项", "{field} is required"),
        "text.too_long": (
            "{field}共 {length} 个字符；最多 {maximum} 个",
            "{field} is {length} characters; at most {maximum}",
        ),
        "period.kind": (
            "周期 {value!r} 无效，可选：{allowed}",
            "period {value!r} is not one of: {allowed}",
        ),
        "period.start_not_date": (
            "{field} {value!r} 不是 YYYY-MM-DD 格式的日期",
            "{field} {value!r} is not a YYYY-MM-DD date",
        ),
        "period.start_not_first": (
            "{field} {start} 不是所在周期({kind})的第一天(该周期始于 {first})",
            "{field} {start} is not the first day of a {kind} (that {kind} starts {first})",
        ),
        "staff.bad_id": (
            "工号 {staff_id!r}：请使用 2-64 个字母、数字、'.'、'_' 或 '-'",
            "staff id {staff_id!r}: use 2-64 letters, digits, '.', '_' or '-'",
        ),
        "staff.bad_role": (
            "角色 {value!r} 无效，可选：{roles}",
            "role {value!r} is not one of: {roles}",
        ),
        "staff.id_taken": ("工号 {staff_id!r} 已被占用", "staff id {staff_id!r} is taken"),
        # sync.limits: a staff member's name
        "staff_name.empty": ("请填写姓名(当前为空)", "give the person's name (it is empty)"),
        "staff_name.too_long": (
            "{length} 个字符；最多 {maximum} 个",
            "{length} characters; at most {maximum}",
        ),
        "staff_name.control": (
            "含有 U+{code}；不接受控制字符或换行符",
            "contains U+{code}; control characters and line breaks are refused",
        ),
    },
    {
        "name": ("姓名", "name"),
        "date": ("日期", "date"),
        # Fields both tiers' forms and queries have.
        "kind": ("类型", "kind"),
        "category": ("分类", "category"),
        "channel": ("渠道", "channel"),
        "start": ("起始日", "start"),
        "status": ("状态", "status"),
        "phone": ("电话", "phone"),
        "q": ("查询词", "q"),
        "limit": ("条数", "limit"),
        "offset": ("起始位置", "offset"),
        "from": ("起始日期", "from"),
        "to": ("截止日期", "to"),
        # the login and account forms
        "staff_id": ("工号", "staff_id"),
        "password": ("密码", "password"),
        "current": ("当前密码", "current"),
        "new": ("新密码", "new"),
        "again": ("再次输入的新密码", "again"),
        "role": ("角色", "role"),
    },
)


class Refusal(Exception):
    """Something a person asked that is refused, as a catalogue code and its values.

    ``str(exc)`` is the English sentence; :meth:`say` gives it in a page's language. A
    tier's subclass names its catalogue; ``field`` is the form field the refusal is about
    (empty: none)."""

    catalogue: ClassVar[Catalogue] = COMMON

    def __init__(self, code: str, /, *, field: str = "", **values: Any) -> None:
        if code not in self.catalogue.sentences:
            raise KeyError(f"no refusal {code!r} in {type(self).__name__}'s catalogue")
        self.code = code
        self.values: dict[str, Any] = values
        self.field = field
        super().__init__(self.say("en"))

    def say(self, lang: str, word: Callable[[str], str] | None = None) -> str:
        """The refusal in ``lang`` (``zh`` or ``en``); ``word`` names roles and kinds in it
        (:meth:`Catalogue.say`)."""
        return self.catalogue.say(self.code, lang, self.values, self.field, word)


def said(exc: BaseException, lang: str, word: Callable[[str], str] | None = None) -> str:
    """What a page shows of a refusal: its sentence in ``lang`` when it is a
    :class:`Refusal`, else its message as raised."""
    return exc.say(lang, word) if isinstance(exc, Refusal) else str(exc)
