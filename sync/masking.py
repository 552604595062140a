"""Masking a customer's contact for people who may not see it: enough to recognise a
customer, not to call them (``138****5678``, ``李*``). The one definition both tiers use:
the city's console and traces, the hub's escalation desk."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from sync.limits import UNSEEN


def mask_phone(phone: str) -> str:
    """Hide the middle of the digits: 13812345678 → 138****5678; shorter numbers keep a
    quarter at each end. A value already masked (it holds ``*``) is returned as it is."""
    if "*" in phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    n = len(digits)
    if n < 4:
        return "*" * n
    head = 3 if n >= 11 else n // 4
    tail = 4 if n >= 11 else n // 4
    return "".join(digits[:head]) + "*" * (n - head - tail) + "".join(digits[n - tail :])


def mask_name(name: str) -> str:
    """Keep the first character (the family name in Chinese): 李四 → 李*, 欧阳娜娜 → 欧***;
    a one-character name is all hidden (``*``), or the mask would be the name."""
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


#: A phone written in free text, whole:
#:
#: * a mobile (11 digits, ``1[3-9]…``) or a landline (``0``, an area code — never ``00`` —
#:   and the number: 10 to 12 digits) with a gap of one or two separators between any two
#:   digits: spaces (any but a line break), dashes of any kind, underscores, slashes,
#:   brackets (``138 1234-5678``, ``0931 845 6789``, ``1 7 3 6 …``, ``173  6264  2328``,
#:   ``173/6264/2328``, ``(0931)8456789``), or dots only (``173.6264.2328``; two dots at
#:   least, so a decimal is not a phone); such a number does not start just after a digit and
#:   a dash or dot (the day of a date before it; a slash separates numbers in a list:
#:   ``0931-8456789/0931-8456790``, both masked);
#: * a mobile after the country code (``+86``, ``0086``, ``86``), the code kept as written;
#: * a mobile grouped 3-4-4 (``120 1234 5678``);
#: * 7 to 20 digits in a row.
#:
#: Shorter numbers (ticket ids, counts), dates (``2026-11-28``, ``2026.11.28``,
#: ``2026/11/28``), times, money (``50.00``), versions (``1.2.3``) and year ranges
#: (``2025-2026``) are left alone. Full-width digits and separators count as their ASCII
#: forms. Masking more than a phone is the safe side: a note is read, not computed with.
_DASHES = "\\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d"
_SPACES = "\\x20\\t\u00a0\u2000-\u200a\u202f\u205f\u3000"
#: Between a phone's digits: one to three spaces (not a line break), dashes of any kind,
#: underscores or brackets (``173 - 6264 - 2328``, ``(0931)8456789``).
_SEPARATORS = rf"{_SPACES}{_DASHES}_()\uff08\uff09\uff3f"
_GAP = rf"(?:[{_SEPARATORS}]{{1,3}})"
#: Between the groups of a mobile written 3-4-4, 7-4 or 3-8: slashes and dots too, mixed
#: (``173/6264/2328``, ``173.6264 2328``); not between any digits — ``1/3/5/7/9/11/13``
#: is a list and ``13.50 12.00`` money.
_GROUP_GAP = rf"(?:[{_SEPARATORS}/.\uff0f\uff0e]{{1,3}})"
_DOT = r"[.\uff0e]"
_TWO_DOTS_AHEAD = rf"(?=\d+{_DOT}\d+{_DOT}\d)"
_MOBILE_START = r"[1\uff11][3-9\uff13-\uff19]"


def _mobile(sep: str) -> str:
    return rf"[1\uff11]{sep}?[3-9\uff13-\uff19](?:{sep}?\d){{9}}"


def _landline(sep: str) -> str:
    return rf"[0\uff10]{sep}?[1-9\uff11-\uff19](?:{sep}?\d){{8,10}}"


_GROUPED = (
    rf"[1\uff11]\d{{2}}{_GROUP_GAP}\d{{4}}{_GROUP_GAP}\d{{4}}"
    rf"|{_MOBILE_START}\d{{5}}{_GROUP_GAP}\d{{4}}"
    rf"|{_MOBILE_START}\d{_GROUP_GAP}\d{{8}}"
)
_ANY_MOBILE = rf"{_GROUPED}|{_mobile(_GAP)}|{_TWO_DOTS_AHEAD}{_mobile(_DOT)}"

#: ``+86`` or ``0086`` and what follows it: a mobile, or a landline with or without its
#: area code's 0 (``+86 931 845 6789``); ``86`` alone only before a mobile (a list of
#: scores, ``86 92 78 65 88 91``, is no phone).
_ABROAD = (
    rf"(?P<country>(?:\+|\uff0b|[0\uff10]{{2}})[8\uff18][6\uff16]{_GROUP_GAP}?)"
    rf"(?:{_ANY_MOBILE}"
    rf"|(?:[0\uff10]{_GAP}?)?[1-9\uff11-\uff19]\d{{1,2}}(?:{_GAP}?\d){{7,8}})"
    rf"|(?P<code>[8\uff18][6\uff16]{_GROUP_GAP}?)(?:{_ANY_MOBILE})"
)

_PHONE_IN_TEXT = re.compile(
    r"(?<!\d)(?:"
    rf"{_ABROAD}"
    rf"|(?<!\d[{_DASHES}.\uff0e])(?:{_GROUPED}|{_mobile(_GAP)}|{_landline(_GAP)}"
    rf"|{_TWO_DOTS_AHEAD}(?:{_mobile(_DOT)}|{_landline(_DOT)}))"
    r"|\d{7,20}"
    r")(?!\d)"
)


def _masked_phone(found: re.Match[str]) -> str:
    country = found.group("country") or found.group("code") or ""
    return country + mask_phone(found.group(0)[len(country) :])


#: A notice's short reference at a city (``N-20261127-3``): its eight digits are a date.
_REFERENCE = r"N-\d{8}-\d+(?!\d)"


def mask_text(
    text: str,
    *,
    name: str = "",
    phone: str = "",
    given_names: bool = True,
    keep: Sequence[str] = (),
) -> str:
    """Free text (a ticket's history note, a complaint's content, a desk note) as a person
    who may not see the customer's contact reads it: every phone-like number masked like
    :func:`mask_phone`, and the customer's ``name`` and ``phone``, where given, masked
    wherever they appear. An operator types what the customer said; the contact fields
    alone being masked would leave the same number in the note beside them.

    The name is masked like :func:`mask_name` also when written with spaces between its
    characters (``张 丽 桂`` → ``张**``), and a Chinese given name of two characters or more
    is masked when it stands alone (``丽桂`` → ``**``; after a compound family name too:
    ``欧阳娜娜`` → ``娜娜`` → ``**``); without ``given_names``, the full name only (a short
    label in a clerk's words, where a given name such as 建议 is also a word).

    References the system wrote stay as written: a notice's short reference
    (``N-20261127-3``) and the exact strings ``keep`` names (``#1795997375509``, the notice
    an answer replies to).

    The text is read as it shows: characters that show nothing (:data:`sync.limits.UNSEEN`:
    a zero-width space, a soft hyphen, a joiner) are left out of the masked text, or
    ``139\u200b8765\u200b4321`` would pass as no phone, and ``王\u200b五`` as no name. A name
    is found in any letter case (``li wei`` for Li Wei)."""
    if not text:
        return text
    text = UNSEEN.sub("", text)
    name = UNSEEN.sub("", name)
    protected = "|".join([_REFERENCE, *(re.escape(k) for k in keep if k)])
    parts = re.split(f"({protected})", text)
    if len(parts) > 1:
        return "".join(
            part if i % 2 else _masked(part, name, phone, given_names)
            for i, part in enumerate(parts)
        )
    return _masked(text, name, phone, given_names)


def _masked(text: str, name: str, phone: str, given_names: bool) -> str:
    if not text:
        return text
    if phone and len(phone) >= 4:
        text = text.replace(phone, mask_phone(phone))
    chars = "".join(name.split())
    if len(chars) >= 2:
        text = _spaced(chars).sub(mask_name(chars), text)
        for given in _given_names(chars) if given_names else ():
            text = _spaced(given).sub("*" * len(given), text)
    return _PHONE_IN_TEXT.sub(_masked_phone, text)


#: Two-character family names: after one, the given name starts at the third character.
_COMPOUND_SURNAMES = (
    "欧阳 司马 上官 诸葛 东方 皇甫 慕容 令狐 公孙 夏侯 宇文 长孙 尉迟 轩辕 端木 "
    "西门 南宫 独孤 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 钟离 闻人 万俟 司徒 "
    "司空 呼延 赫连 拓跋 百里 东郭 南门 羊舌 微生 梁丘 左丘 第五 公良 乐正 壤驷 "
    "公西 谷梁 段干 巫马"
)
COMPOUND_SURNAMES: Final = frozenset(_COMPOUND_SURNAMES.split())


def _given_names(chars: str) -> list[str]:
    """A Chinese name's given name, as a customer may be called by it alone: after a
    one-character family name and, for a compound family name (欧阳娜娜 → 娜娜) or a name of
    four characters or more, after two; each part of a name joined by a middle dot
    (扎西·多吉 → 扎西, 多吉); longest first. Only those of two characters or more (one
    character alone is too common a word to mask)."""
    parts = [p for p in _NAME_DOTS.split(chars) if p]
    if len(parts) > 1:
        # A name of parts joined by a middle dot (扎西·多吉, as Tibetan and Uyghur names are
        # written): each part is a name a customer is called by.
        given = sorted(parts, key=len, reverse=True)
    else:
        starts = [1, 2] if chars[:2] in COMPOUND_SURNAMES or len(chars) >= 4 else [1]
        given = [chars[i:] for i in starts]
    return [g for g in given if len(g) >= 2 and g.isalpha() and not g.isascii()]


#: The middle dots that join the parts of a transcribed name.
_NAME_DOTS: Final = re.compile("[\u00b7\u2022\u30fb\u2027\uff0e]")


def _spaced(word: str) -> re.Pattern[str]:
    """``word`` as written or with whitespace between its characters (``张 丽 桂``); in any
    letter case, and a name in Latin letters as a whole word (``Ann``, not in ``annual``)."""
    pattern = r"\s*".join(re.escape(c) for c in word)
    if word.isascii():
        pattern = rf"\b{pattern}\b"
    return re.compile(pattern, re.IGNORECASE)
