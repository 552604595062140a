"""The city console's labels: the table is :mod:`city_node.labels` (outside ``web/``, since
history lines outside the console read it too); the language helpers are the web
foundation's (:mod:`sync.web.i18n`)."""

from __future__ import annotations

from city_node.labels import LABELS, TABLE, label, value_label
from sync.web.i18n import DEFAULT_LANG, LANGS, Lang, pick_lang

__all__ = ["DEFAULT_LANG", "LABELS", "LANGS", "TABLE", "Lang", "label", "pick_lang", "value_label"]
