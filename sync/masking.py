"""Masking a customer's contact for people who may not see it: enough to recognise a
customer, not to call them (``138****5678``, ``李*``). The one definition both tiers use:
the city's console and traces, the hub's escalation desk."""

from __future__ import annotations

import re
from typing import Final


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
#: * a mobile (11 digits, ``1[3-9]…``) or a landline (``0``, an area code and the number:
#:   10 to 12 digits) with at most one separator between any two digits: spaces and dashes
#:   (``138 1234-5678``, ``0931 845 6789``, ``1 7 3 6 …``, ``1736264 2328``), or dots only
#:   (``173.6264.2328``; two dots at least, so a decimal is not a phone); such a number does
#:   not start just after a digit and a dash or dot (the day of a date before it; a slash
#:   separates numbers in a list: ``0931-8456789/0931-8456790``, both masked);
#: * a mobile grouped 3-4-4 (``120 1234 5678``);
#: * 7 to 20 digits in a row.
#:
#: Shorter numbers (ticket ids, counts), dates (``2026-11-28``, ``2026.11.28``), times,
#: money (``50.00``), versions (``1.2.3``) and year ranges (``2025-2026``) are left alone.
#: Full-width digits and separators count as their ASCII forms.
_SPACE_OR_DASH = r"[\x20\u3000\-\uff0d]"
_DOT = r"[.\uff0e]"
_MOBILE_HEAD = r"[1\uff11]{sep}?[3-9\uff13-\uff19]"
_LANDLINE_HEAD = r"[0\uff10]"
_TWO_DOTS_AHEAD = rf"(?=\d+{_DOT}\d+{_DOT}\d)"


def _separated(sep: str, *, dotted: bool = False) -> str:
    ahead = _TWO_DOTS_AHEAD if dotted else ""
    mobile = _MOBILE_HEAD.format(sep=sep) + rf"(?:{sep}?\d){{9}}"
    landline = _LANDLINE_HEAD + rf"(?:{sep}?\d){{9,11}}"
    return rf"{ahead}(?:{mobile}|{landline})"


_PHONE_IN_TEXT = re.compile(
    r"(?<!\d)(?:"
    rf"(?<!\d[\-.\uff0d\uff0e])(?:{_separated(_SPACE_OR_DASH)}|{_separated(_DOT, dotted=True)})"
    rf"|[1\uff11]\d{{2}}{_SPACE_OR_DASH}\d{{4}}{_SPACE_OR_DASH}\d{{4}}"
    r"|\d{7,20}"
    r")(?!\d)"
)


def mask_text(text: str, *, name: str = "", phone: str = "") -> str:
    """Free text (a ticket's history note, a complaint's content, a desk note) as a person
    who may not see the customer's contact reads it: every phone-like number masked like
    :func:`mask_phone`, and the customer's ``name`` and ``phone``, where given, masked
    wherever they appear. An operator types what the customer said; the contact fields
    alone being masked would leave the same number in the note beside them.

    The name is masked like :func:`mask_name` also when written with spaces between its
    characters (``张 丽 桂`` → ``张**``), and a Chinese given name of two characters or more
    is masked when it stands alone (``丽桂`` → ``**``; after a compound family name too:
    ``欧阳娜娜`` → ``娜娜`` → ``**``)."""
    if not text:
        return text
    if phone and len(phone) >= 4:
        text = text.replace(phone, mask_phone(phone))
    chars = "".join(name.split())
    if len(chars) >= 2:
        text = _spaced(chars).sub(mask_name(chars), text)
        for given in _given_names(chars):
            text = _spaced(given).sub("*" * len(given), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


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
    """``word`` as written, or with whitespace between its characters (``张 丽 桂``)."""
    return re.compile(r"\s*".join(re.escape(c) for c in word))
