"""What the command line prints: stored text never drives the terminal."""

from __future__ import annotations

import argparse
import json

import pytest

from sync.commands import print_data
from sync.limits import terminal_safe


def test_control_characters_are_shown_as_escapes_but_the_newline() -> None:
    assert terminal_safe("a\x1b[2Jb\nc\x07\x85") == "a\\x1b[2Jb\nc\\x07\\x85"
    assert terminal_safe(terminal_safe("x\x1by")) == "x\\x1by"  # once is enough
    # A bidirectional override would show what follows it reversed.
    assert terminal_safe("ok \u202eevil\u2066") == "ok \\u202eevil\\u2066"


def test_print_data_makes_the_human_text_safe_and_json_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"title": "clear\x1b[2Jscreen"}
    print_data(argparse.Namespace(json=False), data, f"title: {data['title']}")
    shown = capsys.readouterr().out
    assert shown == "title: clear\\x1b[2Jscreen\n" and "\x1b" not in shown
    print_data(argparse.Namespace(json=True), data, "unused")
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and json.loads(shown) == data
