"""Masking a customer's contact for people who may not see it: enough to recognise a
customer, not to call them (``138****5678``, ``李*``)."""

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
    """Keep the first character (the family name in Chinese): 李四 → 李*, 欧阳娜娜 → 欧***."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)
