"""Masking a customer's contact for people who may not see it: enough to recognise a
customer, not to call them (``138****5678``, ``李*``). The one definition both tiers use:
the city's console and traces, the hub's escalation desk."""

from __future__ import annotations

import re


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


#: A phone written in free text: 7 to 20 digits in a row, a mobile grouped 3-4-4
#: (``138 1234 5678``), or an area code and a number joined by a dash or a space
#: (``0931-8456789``). Shorter runs (ticket ids, counts, years) and dates (``2026-11-28``:
#: no part of 7 digits) are left alone.
_PHONE_IN_TEXT = re.compile(
    r"(?<!\d)(?:1\d{2}[- ]\d{4}[- ]\d{4}|0\d{2,3}[- ]\d{7,8}|\d{7,20})(?!\d)"
)


def mask_text(text: str, *, name: str = "", phone: str = "") -> str:
    """Free text (a ticket's history note, a complaint's content, a desk note) as a person
    who may not see the customer's contact reads it: every phone-like number masked like
    :func:`mask_phone`, and the customer's ``name`` and ``phone``, where given, masked
    wherever they appear. An operator types what the customer said; the contact fields
    alone being masked would leave the same number in the note beside them."""
    if not text:
        return text
    if phone and len(phone) >= 4:
        text = text.replace(phone, mask_phone(phone))
    name = name.strip()
    if len(name) >= 2:
        text = text.replace(name, mask_name(name))
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
