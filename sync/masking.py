"""Masking a customer's contact for people who may not see it: enough to recognise a
customer, not to call them (``138****5678``, ``李*``). The one definition both tiers use:
the city's console and traces, the hub's escalation desk."""

from __future__ import annotations


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
