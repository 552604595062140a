"""The words both tiers use on and around the wire, one ``StrEnum`` each.

A value is the word stored in SQL, accepted by argparse ``choices`` and pydantic fields,
and the key of its label in the consoles' zh/en tables, so one spelling serves them all.
City-only vocabularies (ticket statuses, report statuses, follow-ups) live in
:mod:`city_node.domain`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI builds its parser from these without loading protobuf
    from sync.pb.fedsync.v1 import federation_pb2 as pb


class ReportKind(StrEnum):
    """What a city reports to the province (docs/domain.md, "Reports")."""

    STATISTICS = "statistics"
    QA = "qa"
    OVERTIME = "overtime"


class PeriodKind(StrEnum):
    """A report's period, cut in the federation's zone."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def pb(self) -> pb.PeriodKind.ValueType:
        """The wire's enum value (``DAY`` … ``YEAR``: the same names)."""
        from sync.pb.fedsync.v1 import federation_pb2

        return federation_pb2.PeriodKind.Value(self.name)


class ReceiptAction(StrEnum):
    """What a city records about a province notice (its receipt)."""

    READ = "read"
    DONE = "done"
    OBJECTION = "objection"

    @property
    def pb(self) -> pb.ReceiptAction.ValueType:
        """The wire's enum value (``READ``, ``DONE``, ``OBJECTION``: the same names)."""
        from sync.pb.fedsync.v1 import federation_pb2

        return federation_pb2.ReceiptAction.Value(self.name)


class LinkStatus(StrEnum):
    """The state of the city's link to the hub, as its link client records it (the
    ``state`` column of :class:`sync.outbox.LinkState`)."""

    NEVER = "never"  # no contact yet
    CONNECTED = "connected"
    BACKING_OFF = "backing-off"  # the hub was unreachable or refused; retrying
    CONFLICT = "conflict"  # sequence or epoch conflict: waits for a re-base
    REVOKED = "revoked"  # this city's certificate is revoked
    HUB_REVOKED = "hub-revoked"  # the hub's certificate is on this city's CRL
    INCOMPATIBLE = "incompatible"  # the hub does not speak this schema version
    ERROR = "error"  # an unexpected failure of the link client itself
