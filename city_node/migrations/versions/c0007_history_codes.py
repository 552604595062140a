"""History steps record what happened as a code and its parameters, not as English text.

Until now a step's ``note`` held text the code wrote (``to 网络维护中心``, ``satisfied``,
``dissatisfied; reopened``, ``+2 workdays: parts``, ``deadline A -> B``, ``province
resolution: …``, ``12.50 yuan: …``, a suggestion's class) or the person's own words. From
here a step has ``code`` (``city_node.domain.NoteCode``) and ``params`` (JSON), shown in the
reader's language (``city_node.history_text``), and ``note`` keeps only the person's words.

The back-fill reads the steps whose action writes such text and, where the text is the one
the code wrote, stores its code and parameters and empties ``note`` (a reason or the
person's note after the generated part stays in ``note``); any other text stays as it is,
under the code ``note``. A survey step always gets its code: its outcome is the ``outcome``
column (c0003), and it reopened the ticket when it left it in progress.

Revision ID: c0007
Revises: c0004
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "c0007"
down_revision = "c0006"
branch_labels = None
depends_on = None

_OUTCOMES = ("very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable")
_SURVEY = re.compile(r"^(?P<outcome>[a-z_]+)(?P<reopened>; reopened)?$")
_EXTENSION = re.compile(r"^\+(?P<days>\d+) workdays: (?P<rest>.*)$", re.DOTALL)
_DEADLINE = re.compile(r"^deadline (?P<from>\S+) -> (?P<to>\S+)$")
_RESOLUTION = re.compile(r"^province resolution: (?P<rest>.*)$", re.DOTALL)
_COMPENSATION = re.compile(r"^(?P<yuan>\d+\.\d{2}) yuan: (?P<rest>.*)$", re.DOTALL)
_BATCH = 1000

_history = sa.table(
    "ticket_history",
    sa.column("id", sa.BigInteger()),
    sa.column("action", sa.String()),
    sa.column("note", sa.Text()),
    sa.column("to_status", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("code", sa.String()),
    sa.column("params", sa.JSON()),
)


def coded(
    action: str, note: str, to_status: str | None, outcome: str | None
) -> tuple[str, dict[str, Any] | None, str]:
    """``(code, params, note)`` for a step stored with ``note`` (exposed for the tests)."""
    if action == "dispatch" and note.startswith("to "):
        return "dispatched_to", {"branch": note[3:]}, ""
    if action == "survey":
        match = _SURVEY.match(note)
        if match and match["outcome"] in _OUTCOMES:
            return (
                "surveyed",
                {"outcome": match["outcome"], "reopened": bool(match["reopened"])},
                "",
            )
        if outcome in _OUTCOMES:
            params = {"outcome": outcome, "reopened": to_status == "in_progress"}
            return "surveyed", params, note
    if action == "request_extension" and (match := _EXTENSION.match(note)):
        return "extension_requested", {"days": int(match["days"])}, match["rest"]
    if action == "approve_extension" and (match := _DEADLINE.match(note)):
        return "deadline_moved", {"from": match["from"], "to": match["to"]}, ""
    if action == "province_resolved" and (match := _RESOLUTION.match(note)):
        return "province_resolution", {"resolution": match["rest"]}, ""
    if action == "compensate" and (match := _COMPENSATION.match(note)):
        fen = int(match["yuan"].replace(".", ""))
        return "compensation", {"fen": fen}, match["rest"]
    if action == "classify" and note:
        return "classified", {"label": note}, ""
    return "note", None, note


def upgrade() -> None:
    with op.batch_alter_table("ticket_history") as batch:
        batch.add_column(
            sa.Column("code", sa.String(length=32), server_default="note", nullable=False)
        )
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
    conn = op.get_bind()
    steps = conn.execute(
        sa.select(
            _history.c.id,
            _history.c.action,
            _history.c.note,
            _history.c.to_status,
            _history.c.outcome,
        )
        .where(
            _history.c.action.in_(
                (
                    "dispatch",
                    "survey",
                    "request_extension",
                    "approve_extension",
                    "province_resolved",
                    "compensate",
                    "classify",
                )
            )
        )
        .order_by(_history.c.id)
    ).all()
    update = (
        sa.update(_history)
        .where(_history.c.id == sa.bindparam("_id"))
        .values(
            code=sa.bindparam("_code"),
            params=sa.bindparam("_params", type_=sa.JSON()),
            note=sa.bindparam("_note"),
        )
    )
    changes = []
    for row_id, action, note, to_status, outcome in steps:
        code, params, rest = coded(action, note or "", to_status, outcome)
        if code != "note":
            changes.append({"_id": row_id, "_code": code, "_params": params, "_note": rest})
    for start in range(0, len(changes), _BATCH):
        conn.execute(update, changes[start : start + _BATCH])


def _english(code: str, p: dict[str, Any]) -> str:
    if code == "dispatched_to":
        return f"to {p.get('branch', '')}"
    if code == "surveyed":
        return str(p.get("outcome", "")) + ("; reopened" if p.get("reopened") else "")
    if code == "extension_requested":
        return f"+{p.get('days', 0)} workdays"
    if code == "deadline_moved":
        return f"deadline {p.get('from', '')} -> {p.get('to', '')}"
    if code == "province_resolution":
        return f"province resolution: {p.get('resolution', '')}"
    if code == "compensation":
        return f"{int(p.get('fen', 0)) / 100:.2f} yuan"
    if code == "classified":
        return str(p.get("label", ""))
    return ""


def downgrade() -> None:
    # The codes go back to the English text the steps held before.
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_history.c.id, _history.c.code, _history.c.params, _history.c.note).where(
            _history.c.code != "note"
        )
    ).all()
    for row_id, code, params, note in rows:
        head = _english(code, params or {})
        text = f"{head}: {note}" if head and note else head or note
        conn.execute(sa.update(_history).where(_history.c.id == row_id).values(note=text))
    with op.batch_alter_table("ticket_history") as batch:
        batch.drop_column("params")
        batch.drop_column("code")
