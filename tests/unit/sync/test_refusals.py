"""The refusal catalogues: every entry in both languages with the same placeholders, every
code a tier's sources raise is in its catalogue and every entry is raised somewhere, and a
refusal says its sentence in either language (English: its message, as the API always said
it)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from city_node.errors import CityError, IllegalTransition, NotFound, PermissionDenied
from city_node.refusals import CITY
from city_node.vocabulary import Action, Role, Status
from province_hub.refusals import HUB, HubRefusal
from sync.limits import staff_name_problem
from sync.passwords import password_problem
from sync.refusals import COMMON, Catalogue, Refusal, placeholders, said

REPO = Path(__file__).resolve().parents[3]
CATALOGUES = {"common": COMMON, "hub": HUB, "city": CITY}
#: Each tier's catalogue and the packages that raise its codes (the shared ``sync`` raises
#: the common ones, in both tiers).
TIERS = {"hub": (HUB, ("sync", "province_hub")), "city": (CITY, ("sync", "city_node"))}
#: A code as the sources write it: a string literal naming a catalogue's area and entry, as
#: a refusal's first argument, returned (``sync.passwords.password_refusal``) or a mapping's
#: value (``sync.web.app``: pydantic's error types; ``city_node.context``: what an id names).
_AREAS = sorted({code.split(".")[0] for cat in (HUB, CITY) for code in cat.sentences})
_FILE_SUFFIXES = frozenset({"html", "py", "csv", "xlsx", "json", "js"})
# A code as a refusal names it (not a route's area in ``@area("desk.work")``).
_CODE = re.compile(r"(?:(?<!area)\(\s*|return |: )\"((?:" + "|".join(_AREAS) + r")\.[a-z_]+)\"")


def _chinese(text: str) -> bool:
    return any(unicodedata.name(ch, "").startswith("CJK UNIFIED") for ch in text)


def _entries() -> list[tuple[str, str, Catalogue]]:
    return [(name, code, cat) for name, cat in CATALOGUES.items() for code in cat.sentences]


@pytest.mark.parametrize(("name", "code", "cat"), _entries())
def test_every_entry_has_both_languages_and_the_same_placeholders(
    name: str, code: str, cat: Catalogue
) -> None:
    sentence = cat.sentences[code]
    assert sentence.zh.strip() and sentence.en.strip(), code
    assert _chinese(sentence.zh), f"{name} {code}: the Chinese sentence is not Chinese"
    assert not _chinese(sentence.en), f"{name} {code}: the English sentence holds Chinese"
    assert placeholders(sentence.zh) == placeholders(sentence.en), code
    # Both render with the same values (a placeholder spelt alike in both).
    values = {p: "x" for p in placeholders(sentence.en)}
    assert cat.say(code, "zh", values, "title") and cat.say(code, "en", values, "title")


def test_every_field_name_has_both_languages() -> None:
    for catalogue in CATALOGUES.values():
        for field, (zh, en) in catalogue.fields.items():
            assert _chinese(zh), field
            assert en == field  # English names a field as the API does: its identifier


def _source_codes(packages: tuple[str, ...]) -> dict[str, list[str]]:
    """Code → where the sources of ``packages`` (not the catalogues) name it."""
    found: dict[str, list[str]] = {}
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            if path.name == "refusals.py" or "pb" in path.relative_to(REPO).parts:
                continue
            for code in _CODE.findall(path.read_text("utf-8")):
                if code.rsplit(".", 1)[1] in _FILE_SUFFIXES:  # a template's name
                    continue
                found.setdefault(code, []).append(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_every_code_a_tier_raises_is_in_its_catalogue_and_every_entry_is_used(tier: str) -> None:
    catalogue, packages = TIERS[tier]
    used = _source_codes(packages)
    # The scan sees the codes (each tier's own, and the shared ones).
    seen = {"hub": {"notice.empty", "staff.unknown"}, "city": {"text.required"}}
    assert seen[tier] | {"password.too_short"} <= set(used)
    assert sorted(set(used) - set(catalogue.sentences)) == []
    assert sorted(set(catalogue.sentences) - set(COMMON.sentences) - set(used)) == []


def test_every_shared_entry_is_used_by_a_tier() -> None:
    used = _source_codes(("sync", "city_node", "province_hub"))
    assert sorted(set(COMMON.sentences) - set(used)) == []


def test_a_refusal_is_english_as_its_message_and_chinese_when_asked() -> None:
    refusal = HubRefusal("notice.empty", field="title")
    assert str(refusal) == "title: must not be empty"
    assert refusal.say("en") == str(refusal)
    assert refusal.say("zh") == "标题：不能为空"
    assert said(refusal, "zh") == "标题：不能为空"
    assert said(ValueError("plain"), "zh") == "plain"  # not a catalogued refusal: as raised


def test_a_sentence_that_places_its_field_names_it_there_in_either_language() -> None:
    refusal = HubRefusal("text.required", field="resolution")
    assert str(refusal) == "resolution is required"
    assert refusal.say("zh") == "处理意见为必填项"


def test_values_fill_both_sentences() -> None:
    refusal = HubRefusal("notice.too_long", field="title", length=201, maximum=200)
    assert str(refusal) == "title: is 201 characters; at most 200"
    assert refusal.say("zh") == "标题：共 201 个字符；最多 200 个"


def test_an_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match=r"no refusal 'notice\.nope'"):
        HubRefusal("notice.nope")
    with pytest.raises(KeyError):  # the shared base knows only the shared entries
        Refusal("notice.empty")


def test_a_tier_cannot_redefine_a_shared_code() -> None:
    with pytest.raises(ValueError, match=r"password\.too_short"):
        COMMON.extend({"password.too_short": ("短", "short")})


def test_the_shared_helpers_still_say_what_they_said() -> None:
    assert password_problem("short", "ann") == "password must have at least 12 characters"
    assert password_problem("            ", "ann") == "password must not be only spaces"
    assert password_problem("ann-is-long-id", "ANN-IS-LONG-ID") == (
        "password must not be the staff id"
    )
    assert password_problem("a-long-password", "ann") is None
    assert staff_name_problem(" ") == "name: give the person's name (it is empty)"
    assert staff_name_problem("x" * 101) == "name: 101 characters; at most 100"
    assert staff_name_problem("a\x07b") == (
        "name: contains U+0007; control characters and line breaks are refused"
    )
    assert staff_name_problem("李督查") is None
    # Blank to the eye: a zero-width space or a byte-order mark alone is no name.
    for invisible in ("\u200b", "\ufeff \u200b", "\u2060"):
        assert staff_name_problem(invisible) == "name: give the person's name (it is empty)"
    assert staff_name_problem("李\u2028督查") == (
        "name: contains U+2028; control characters and line breaks are refused"
    )


def test_a_page_names_roles_and_kinds_in_its_language() -> None:
    words = {"supervisor": "服务督查岗", "admin": "系统管理员", "announcer": "公告发布岗"}
    refusal = HubRefusal("notice.sent_by", kind="task", who="admin, announcer")

    def word(value: str) -> str:
        return {**words, "task": "任务"}.get(value, value)

    assert refusal.say("zh", word) == "“任务”类公告的发送人只能是：系统管理员、公告发布岗"
    # English, and a value typed by the reader, stay as they are.
    assert refusal.say("en", word) == "task notices are sent by: admin, announcer"
    typed = HubRefusal("period.kind", value="admin", allowed="day, week")
    assert typed.say("zh", word) == "周期 'admin' 无效，可选：day, week"


# --- the city's refusals -------------------------------------------------------------------


def test_a_city_refusal_is_english_as_its_message_and_chinese_when_asked() -> None:
    refusal = CityError("phone.length", field="customer_phone", count=3, low=5, high=20)
    assert str(refusal) == "customer_phone has 3 digits; a phone number has 5 to 20"
    assert refusal.say("zh") == "客户电话共 3 位；电话号码应为 5 至 20 位"
    assert isinstance(refusal, ValueError) and isinstance(refusal, Refusal)
    prefixed = CityError("phone.digits", field="customer_phone")
    assert str(prefixed) == "customer_phone: use digits (spaces and dashes are dropped)"
    assert prefixed.say("zh") == "客户电话：请填写数字(空格和短横线会被去掉)"
    missing = NotFound("ticket.not_found", ticket=7)
    assert isinstance(missing, LookupError) and isinstance(missing, CityError)
    assert (str(missing), missing.say("zh")) == (
        "ticket 7 does not exist in this city's store",
        "本市没有工单 7",
    )
    with pytest.raises(KeyError):  # the city's base knows the city's codes only
        CityError("notice.empty")


def test_the_ticket_rules_name_roles_actions_and_statuses_in_the_page_language() -> None:
    words = {
        "operator_junior": "初级话务员",
        "leader": "中心领导",
        "approve_extension": "批准延期",
        "closed": "已结案",
        "survey": "满意度回访",
        "rework": "退单",
    }

    def word(value: str) -> str:
        return words.get(value, value)

    denied = PermissionDenied(
        "role.may_not", role=Role.OPERATOR_JUNIOR, action=Action.APPROVE_EXTENSION, roles="leader"
    )
    assert str(denied) == "role operator_junior may not approve_extension: only leader"
    assert denied.say("zh", word) == "角色“初级话务员”无权执行“批准延期”；仅限：中心领导"
    assert (denied.role, denied.action) == (Role.OPERATOR_JUNIOR, Action.APPROVE_EXTENSION)
    illegal = IllegalTransition(
        Status.CLOSED, Action.APPROVE_EXTENSION, [Action.SURVEY, Action.REWORK]
    )
    assert str(illegal) == (
        "cannot approve_extension a ticket in status closed; allowed from closed: rework, survey"
    )
    assert illegal.say("zh", word) == (
        "工单当前状态为“已结案”，不能执行“批准延期”；此状态下可执行：退单、满意度回访"
    )
    assert illegal.allowed == ("rework", "survey")
    stuck = IllegalTransition(Status.CLOSED, Action.SURVEY, [])
    assert str(stuck) == "cannot survey a ticket in status closed; allowed from closed: nothing"
    assert (
        stuck.say("zh", word)
        == "工单当前状态为“已结案”，不能执行“满意度回访”；此状态下已无可执行的操作"
    )
