"""Which language a ``?lang=``, a cookie or a browser's ``Accept-Language`` names."""

from __future__ import annotations

import pytest

from sync.web.i18n import pick_lang, preferred_lang


@pytest.mark.parametrize(
    ("value", "lang"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_Hans_CN", "zh"),
        ("ZH-tw", "zh"),
        ("en", "en"),
        ("EN", "en"),
        ("en-GB", "en"),
        (" en ", "en"),
        ("fr", None),
        ("zhx", None),
        ("", None),
        (None, None),
        ("-", None),
    ],
)
def test_a_language_tag_names_its_language_by_its_first_part(
    value: str | None, lang: str | None
) -> None:
    assert pick_lang(value) == lang


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr-FR, zh;q=0.5, en;q=0.4", "zh"),
        ("en;q=0.5, zh;q=0.5", "en"),  # a tie keeps the header's order
        ("en;q=0, zh;q=0.1", "zh"),  # q=0: not acceptable
        ("en;q=zero, zh", "zh"),  # an unreadable weight counts as none
        ("de, fr", None),
        ("*", None),
        ("", None),
        (None, None),
    ],
)
def test_the_browsers_first_language_of_the_consoles(header: str | None, lang: str | None) -> None:
    assert preferred_lang(header) == lang


def test_a_whole_number_refused_is_said_in_the_pages_language() -> None:
    """A strict whole-number field given text (``days=x`` on a ticket's form) is refused in
    the page's words, not pydantic's English."""
    from typing import Annotated

    from pydantic import BaseModel, Strict, ValidationError

    from sync.web.app import field_problem

    class Form(BaseModel):  # as the consoles declare a count: a strict whole number
        days: Annotated[int, Strict()] | None = None

    for given in ("x", 2.5):
        try:
            Form.model_validate({"days": given})
        except ValidationError as exc:
            [error] = exc.errors()
        else:  # pragma: no cover - the model takes no such value
            raise AssertionError(f"days={given!r} was taken")
        assert field_problem(error, "zh").endswith("：不是整数"), error
        assert field_problem(error, "en") == "days: Input should be a valid integer"
