"""Masking customers' contact, in the contact fields and inside free text."""

from __future__ import annotations

import pytest

from sync.masking import mask_name, mask_phone, mask_text


def test_contact_fields() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138****5678") == "138****5678"
    assert mask_name("欧阳娜娜") == "欧***" and mask_name("李") == "*"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("回拨 13812345678 未接", "回拨 138****5678 未接"),
        ("call 138 1234 5678 please", "call 138****5678 please"),
        ("固话0931-8456789", "固话093****6789"),
        ("座机 8456789", "座机 8*****9"),
        # Ticket ids, counts, dates and times are not phones.
        (
            "工单 123456 于 2026-11-28 10:30 登记，3 次来电",
            "工单 123456 于 2026-11-28 10:30 登记，3 次来电",
        ),
        ("", ""),
    ],
)
def test_phone_like_numbers_in_text(text: str, shown: str) -> None:
    assert mask_text(text) == shown


def test_the_customers_own_name_and_phone_in_text() -> None:
    text = "张三丰来电，要求张三丰本人的号码 1381234 5678 停机"
    shown = mask_text(text, name="张三丰", phone="1381234 5678")
    assert "张三丰" not in shown and shown.count("张**") == 2
    assert "1381234 5678" not in shown
    # A one-character name would mask that character everywhere: it is left to the fields.
    assert mask_text("李先生", name="李") == "李先生"
