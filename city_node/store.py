"""The city node's tables beyond the outbox: the notice inbox (tickets come with the city work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Engine, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sync.outbox import OutboxBase


class Base(DeclarativeBase):
    pass


class InboxNotice(Base):
    """A province notice as persisted here; one row per notice seq, never twice."""

    __tablename__ = "inbox"

    notice_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    task_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The whole fedsync.v1.Notice (details such as a rejection's seq live there).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_note: Mapped[str | None] = mapped_column(Text)
    objection_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    objection_reason: Mapped[str | None] = mapped_column(Text)


def create_schema(engine: Engine) -> None:
    OutboxBase.metadata.create_all(engine)
    Base.metadata.create_all(engine)
