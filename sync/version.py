"""Software and wire-schema versions.

The schema version travels in every envelope and in ``Hello`` as ``"MAJOR.MINOR"``. A hub
accepts any minor of its own major (proto3 ignores unknown fields, so minors only add fields);
another major is refused with FAILED_PRECONDITION.
"""

from __future__ import annotations

SOFTWARE_VERSION = "0.1.0"
#: 1.1: Escalation.follow_up (a resolved escalation's close and callback, city to hub).
#: 1.2: Rejection.epoch and Rejection.content_digest (which envelope a rejection is about).
#: 1.3: TicketTrace.customer_name (so the hub can mask the name inside a trace's history).
#: 1.4: SatisfactionCounts.complaints_surveyed (survey coverage counts surveys of complaints only).
#: 1.5: Notice.report_reminder (what a REMINDER is about) and Rejection.next_revision (the
#:      lowest revision the hub takes for a period whose revision it holds with other figures).
#: 1.6: EscalationResolution.escalation_epoch and .escalation_digest (which envelope a
#:      resolution answers); TraceRequest.escalation_seq, _epoch, _digest (which escalated
#:      ticket a trace asks for).
SCHEMA_VERSION = "1.6"
SCHEMA_MAJOR = 1


def schema_major(version: str) -> int | None:
    """The major number of ``"MAJOR.MINOR"``, or None when the string is not of that form."""
    major, dot, minor = version.partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major)


def is_compatible(version: str) -> bool:
    return schema_major(version) == SCHEMA_MAJOR
