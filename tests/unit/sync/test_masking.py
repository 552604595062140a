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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # A mobile with any single spaces, dashes, or dots (not mixed with them) between digits.
        ("138 1234 5678", "138****5678"),
        ("138 1234-5678", "138****5678"),
        ("+86 173-6264-2328", "+86 173****2328"),
        ("+8617362642328", "+86173****2328"),
        # The country code kept as written, the number after it masked whatever its gaps.
        ("0086 173 6264 2328", "0086 173****2328"),
        ("0086-173-6264-2328", "0086-173****2328"),
        ("0086.173.6264.2328", "0086.173****2328"),
        ("86 173 6264 2328", "86 173****2328"),
        ("+86 931 845 6789", "+86 93******89"),
        ("+86-0931-8456789", "+86-093****6789"),
        ("86 - 173 - 6264 - 2328", "86 - 173****2328"),
        # Gaps of up to three characters; a mobile's groups (3-4-4, 7-4, 3-8) mixing dots,
        # slashes and dashes.
        ("173 - 6264 - 2328", "173****2328"),
        ("0931 - 845 - 6789", "093****6789"),
        ("173.6264 2328", "173****2328"),
        ("173-6264.2328", "173****2328"),
        ("173 . 6264 . 2328", "173****2328"),
        ("1736264.2328", "173****2328"),
        # Any dash, doubled spaces, underscores, slashes, brackets between the digits.
        ("173/6264/2328", "173****2328"),
        ("173_6264_2328", "173****2328"),
        ("173  6264  2328", "173****2328"),
        ("173\u20106264\u20102328", "173****2328"),
        ("173\u20146264\u20142328", "173****2328"),
        ("173\u00a06264\u00a02328", "173****2328"),
        ("(152)78084517", "(152****4517"),
        ("（0931）8456789", "（093****6789"),
        ("173.6264.2328", "173****2328"),
        ("1 7 3 6 2 6 4 2 3 2 8", "173****2328"),
        ("1736264 2328", "173****2328"),
        ("120 1234 5678", "120****5678"),
        # A landline: 0, an area code and the number, grouped likewise.
        ("0931-8456789", "093****6789"),
        ("0931 845 6789", "093****6789"),
        ("0931-845 6789", "093****6789"),
        ("010 1234 5678", "010****5678"),
        ("0931-8456789-123", "093****6789-123"),
        # Full-width digits and separators.
        ("１３８１２３４５６７８", "１３８****５６７８"),
        ("１３８　１２３４　５６７８", "１３８****５６７８"),
        ("１３８．１２３４．５６７８", "１３８****５６７８"),
        # A date just before a phone is neither part of it nor a reason to miss it.
        ("2026-11-28 1381234 5678", "2026-11-28 138****5678"),
        ("2026-01-05 1381234 5678", "2026-01-05 138****5678"),
        ("2026.11.28 138.1234.5678", "2026.11.28 138****5678"),
        ("回拨 138 1234 5678 3 次", "回拨 138****5678 3 次"),
        ("2026/01/05 1381234 5678", "2026/01/05 138****5678"),
        # Numbers listed with a slash: each one masked.
        ("138.1234.5678/139.1234.5678", "138****5678/139****5678"),
        ("0931 845 6789/0931 845 6790", "093****6789/093****6790"),
        ("0931-8456789/0931-8456790", "093****6789/093****6790"),
    ],
)
def test_phones_written_with_separators_are_masked_whole(text: str, shown: str) -> None:
    assert mask_text(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28",
        "2026.11.28",
        "2026/11/28",
        "10:30",
        "2026-11-28 13:00",
        "工单 123456",
        "3 次来电",
        "费用 50.00 元",
        "13.50 12.00 8.00",
        "版本 1.2.3",
        "192.168.100.200",
        "2025-2026 年度",
        "01-05 08:00-12:00",
        "第 86 号 2026-11-28",
        "时间 2026-11-28/2026-12-05",
        "第 3/5 项，12/13/14/15",
        # Scores after an 86, lists of days or fractions, money.
        "得分 86 92 78 65 88 91",
        "86 100 95 90 85",
        "1/3/5/7/9/11/13/15",
        "1/3 5/6 7/8 9/10 11/12",
        "13/6/2026 2328",
        "13.50 12.00 8.00 15.50 13.20",
        "001 002 003 004",
        # A notice's short reference at a city: its digits are a date.
        "见 N-20261127-3 号通知",
    ],
)
def test_numbers_that_are_not_phones_stay_as_written(text: str) -> None:
    assert mask_text(text, name="张丽桂") == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("张丽桂女士来电", "张**女士来电"),
        ("张 丽 桂来电", "张**来电"),
        ("张\t丽桂", "张**"),
        ("丽桂说号码停机", "**说号码停机"),
        ("丽 桂说", "**说"),
        ("张女士", "张女士"),
    ],
)
def test_the_customers_name_spaced_or_given_name_alone(text: str, shown: str) -> None:
    assert mask_text(text, name="张丽桂") == shown


def test_a_given_name_of_one_character_or_a_latin_name_is_not_masked_alone() -> None:
    assert mask_text("李明来电，明天回拨", name="李明") == "李*来电，明天回拨"
    assert mask_text("Ann: annual fee", name="Ann") == "A**: annual fee"


@pytest.mark.parametrize(
    ("name", "text", "shown"),
    [
        # A compound family name: the given name starts at the third character.
        ("欧阳娜娜", "客户娜娜说要退费", "客户**说要退费"),
        ("欧阳娜娜", "欧阳娜娜 wants refund, 娜娜 again", "欧*** wants refund, ** again"),
        ("司马光明", "光明来电", "**来电"),
        # A three-character compound name leaves a one-character given name alone.
        ("欧阳修", "欧阳修来电，修理宽带", "欧**来电，修理宽带"),
        # A four-character name of another family: both readings masked, longest first.
        ("张丽桂花", "丽桂花说桂花", "***说**"),
        # Parts joined by a middle dot: the whole name, and each part alone.
        ("扎西·多吉", "扎西·多吉来电，多吉说断网", "扎****来电，**说断网"),
        ("扎西·多吉", "找扎西", "找**"),
    ],
)
def test_a_given_name_after_a_two_character_family_name_is_masked_alone(
    name: str, text: str, shown: str
) -> None:
    assert mask_text(text, name=name) == shown


def test_a_label_is_masked_by_the_full_name_only() -> None:
    """A clerk's class label: the customer 陈建议's given name is also the word 建议."""
    assert mask_text("建议 陈建议", name="陈建议", given_names=False) == "建议 陈**"
    assert mask_text("建议", name="陈建议") == "**"  # free text: the given name alone too


def test_a_reference_named_to_keep_stays_but_a_phone_after_a_hash_is_masked() -> None:
    """An answer's title names the notice it replies to by seq ("Re #1795997375509"): kept
    when the caller names it; any other number after "#" may be a phone, and is masked."""
    title = "Re #1795997375509: 整改，客户电话 13812345678"
    kept = mask_text(title, keep=("#1795997375509",))
    assert kept == "Re #1795997375509: 整改，客户电话 138****5678"
    assert mask_text(title) == "Re #179******5509: 整改，客户电话 138****5678"
    assert mask_text("另一号码#13912345678") == "另一号码#139****5678"
    assert mask_text("call #138 1234 5678", name="张三", phone="13812345678") == (
        "call #138****5678"
    )
    assert (
        mask_text("N-20261127-3：张三 13812345678", name="张三") == "N-20261127-3：张* 138****5678"
    )


@pytest.mark.parametrize("unseen", ["\u200b", "\u200c", "\u2060", "\u00ad", "\u200e", "\ufeff"])
def test_characters_that_show_nothing_do_not_hide_a_phone_or_a_name(unseen: str) -> None:
    # To the eye these are the phone and the name: the masked text reads them so.
    assert mask_text(f"call 139{unseen}8765{unseen}4321") == "call 139****4321"
    assert mask_text(f"王{unseen}五 again", name="王五") == "王* again"
    assert mask_text("欧阳娜娜 again", name=f"欧阳{unseen}娜娜") == "欧*** again"
    assert mask_text(f"0931{unseen}8456789") == "093****6789"


def test_a_latin_name_is_masked_in_any_letter_case_as_a_whole_word() -> None:
    assert mask_text("li wei again, LI WEI", name="Li Wei") == "L**** again, L****"
    assert mask_text("Ann: annual fee, ANN", name="Ann") == "A**: annual fee, A**"
