"""The hub's use cases: ingest a city's batch, answer Hello, send and replay notices.

Each function is one thing a city link or a province person does; each runs in one
transaction (``UnitOfWork``) and returns plain data. gRPC and the CLI are thin layers on top.
This module is their one address; they live by responsibility in:

* :mod:`province_hub.ingest` — the Push path: check a batch, store its records, land report
  figures, escalations and receipts, quarantine with a REJECTION notice;
* :mod:`province_hub.links` — each city's link: Hello, the mark and refusals, ListHeld;
* :mod:`province_hub.notice_feed` — numbered notices to cities: create and send, replay
  after a cursor, mark streamed, confirm the cursor.
"""

from __future__ import annotations

from province_hub.ingest import RECORD_COLUMNS, IngestResult, ingest_batch
from province_hub.links import (
    LIST_HELD_PAGE,
    HeldPage,
    HelloResult,
    hello,
    list_held,
    record_refusal,
    with_link_mark,
)
from province_hub.notice_feed import (
    HUB_SENDER,
    MAX_NOTICE_BYTES,
    NOTICE_COUNTER,
    confirm_cursor,
    create_notice,
    mark_streamed,
    mark_streamed_many,
    notices_after,
    notices_after_many,
    open_stream,
    send_notice,
    send_notice_in,
)

__all__ = [
    "HUB_SENDER",
    "LIST_HELD_PAGE",
    "MAX_NOTICE_BYTES",
    "NOTICE_COUNTER",
    "RECORD_COLUMNS",
    "HeldPage",
    "HelloResult",
    "IngestResult",
    "confirm_cursor",
    "create_notice",
    "hello",
    "ingest_batch",
    "list_held",
    "mark_streamed",
    "mark_streamed_many",
    "notices_after",
    "notices_after_many",
    "open_stream",
    "record_refusal",
    "send_notice",
    "send_notice_in",
    "with_link_mark",
]
