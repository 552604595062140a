"""The city outbox: gap-free seqs in the caller's transaction, delivery marks, rewind, purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from city_node import services
from city_node.context import Actor
from city_node.domain import Role
from city_node.errors import CityError
from city_node.store import create_schema
from sync import outbox
from sync.db import UnitOfWork, make_engine
from sync.outbox import Outbox, OutboxError, OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb

LEADER = Actor("leader-1", Role.LEADER)


@pytest.fixture
def engine(databases):
    eng = make_engine(databases("city"))
    create_schema(eng)
    services.open_store(eng, "620100")
    yield eng
    eng.dispose()


def body(n: int) -> pb.SuggestionBatch:
    return pb.SuggestionBatch(batch_date="2026-11-01", batch_number=n)


def seqs(engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(OutboxRow.seq).order_by(OutboxRow.seq)).scalars())


def test_rolled_back_transaction_gives_its_seq_back(engine):
    assert services.send(engine, body(1)) == 1
    with UnitOfWork(engine) as uow:
        assert outbox.append(uow.conn, body(2)) == 2
        uow.rollback()
    with UnitOfWork(engine) as uow:
        outbox.append(uow.conn, body(3))
        # no commit: leaving the block rolls back
    assert services.send(engine, body(4)) == 2
    assert seqs(engine) == [1, 2]
    with engine.connect() as conn:
        raw = conn.execute(select(OutboxRow.envelope).where(OutboxRow.seq == 2)).scalar_one()
    envelope = pb.Envelope.FromString(raw)
    assert envelope.suggestion_batch.batch_number == 4 and envelope.city_code == "620100"


def test_store_of_another_city_is_refused(engine):
    with pytest.raises(OutboxError, match="belongs to city 620100, not 620200"):
        services.open_store(engine, "620200")


def test_delivery_marks_rewind_and_purge(engine):
    for n in range(1, 11):
        services.send(engine, body(n))
    box = Outbox(engine)
    assert box.snapshot().backlog == 10
    assert [s for s, *_ in box.pending(after_seq=0, limit=4)] == [1, 2, 3, 4]
    long_ago = datetime.now(UTC) - timedelta(days=40)
    box.mark_delivered(6, now=long_ago)
    snap = box.snapshot()
    assert (snap.delivered_seq, snap.backlog, snap.state) == (6, 4, "connected")
    assert snap.oldest_unsent_age() > timedelta(0)
    # The hub lost 5 and 6: they are sent again.
    assert box.rewind(4) == 2
    assert box.snapshot().delivered_seq == 4
    box.mark_delivered(8, now=long_ago)
    assert box.purge(retention=timedelta(days=30)) == 8
    assert seqs(engine) == [9, 10]
    # Purged rows cannot refill a hub that lost them.
    with pytest.raises(OutboxError, match=r"no longer keeps seqs 4-8 \(purged after retention"):
        box.rewind(3)


def _acked(box: Outbox, after: int) -> list[tuple[int, datetime | None]]:
    """(seq, acked_before) of the pending rows, in UTC (SQLite hands back naive UTC)."""
    return [
        (
            r.seq,
            r.acked_before
            and ((r.acked_before.tzinfo and r.acked_before) or r.acked_before.replace(tzinfo=UTC)),
        )
        for r in box.pending(after_seq=after, limit=10)
    ]


def test_a_rewind_keeps_the_first_acknowledgement_of_each_row_sent_again(engine):
    for n in range(1, 6):
        services.send(engine, body(n))
    box = Outbox(engine)
    first = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    box.mark_delivered(3, now=first)
    assert [r.acked_before for r in box.pending(after_seq=0, limit=10)] == [None] * 5
    box.rewind(1)  # the hub lost 2 and 3
    assert _acked(box, 1) == [
        (2, first),
        (3, first),
        (4, None),
        (5, None),
    ]
    later = first + timedelta(hours=3)
    box.mark_delivered(5, now=later)
    box.rewind(1)  # and again, after 4 and 5 had reached it too: the earliest is kept
    assert _acked(box, 1) == [
        (2, first),
        (3, first),
        (4, later),
        (5, later),
    ]


def digests(engine) -> dict[int, bytes]:
    with engine.connect() as conn:
        return {
            seq: pb.Envelope.FromString(raw).content_digest
            for seq, raw in conn.execute(select(OutboxRow.seq, OutboxRow.envelope))
        }


def other(seq: int) -> bytes:
    """A digest no row of ours has: the hub holds something else at ``seq``."""
    return seq.to_bytes(32, "big")


def test_rebase_renumbers_rows_the_hub_does_not_hold(engine):
    for n in range(1, 6):
        services.send(engine, body(n))
    box = Outbox(engine)
    box.mark_delivered(2)
    old_epoch = box.snapshot().epoch
    mine = digests(engine)
    held = {seq: mine[seq] if seq <= 2 else other(seq) for seq in range(1, 41)}
    plan = box.rebase(hub_acked_seq=40, held=held)
    assert (plan.already_held, plan.held_elsewhere, plan.renumbered) == (2, 0, 3)
    assert plan.epoch != old_epoch and dict(plan.seq_map) == {3: 41, 4: 42, 5: 43}
    assert seqs(engine) == [1, 2, 41, 42, 43]
    snap = box.snapshot()
    assert (snap.last_seq, snap.delivered_seq, snap.epoch) == (43, 40, plan.epoch)
    rows = box.pending(after_seq=40, limit=10)
    envs = [pb.Envelope.FromString(row.envelope) for row in rows]
    assert [(e.seq, e.epoch, e.suggestion_batch.batch_number) for e in envs] == [
        (41, plan.epoch, 3),
        (42, plan.epoch, 4),
        (43, plan.epoch, 5),
    ]
    assert services.send(engine, body(6)) == 44


def test_rebase_keeps_when_a_hub_first_acknowledged_a_renumbered_row(engine):
    """A hub restored from a copy older than the city's last delivery: the rows it lost are
    renumbered, and each one a hub had acknowledged says when, at the re-send (a report
    delivered on time is not judged late)."""
    for n in range(1, 6):
        services.send(engine, body(n))
    box = Outbox(engine)
    first = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    box.mark_delivered(2, now=first - timedelta(hours=1))
    box.mark_delivered(4, now=first)
    box.rewind(2)  # 3 and 4 sent again once already: their first acknowledgement is kept
    box.mark_delivered(4, now=first + timedelta(hours=5))
    mine = digests(engine)
    plan = box.rebase(hub_acked_seq=2, held={1: mine[1], 2: other(2)})
    assert dict(plan.seq_map) == {2: 3, 3: 4, 4: 5, 5: 6}
    assert _acked(box, 2) == [
        (3, first - timedelta(hours=1)),
        (4, first),
        (5, first),
        (6, None),  # never delivered: nothing to say
    ]


def test_receipts_need_a_known_notice_and_a_reason_for_objections(engine):
    notice = pb.Notice(seq=7, kind=pb.TASK, priority=pb.HIGH, title="t")
    notice.created_at.GetCurrentTime()
    assert services.accept_notice(engine, notice) is True
    assert services.accept_notice(engine, notice) is False  # a replay is not a second copy
    assert Outbox(engine).snapshot().notice_cursor == 7
    with pytest.raises(CityError, match="not in this city's inbox"):
        services.record_receipt(engine, notice_seq=8, action="read", actor=LEADER)
    with pytest.raises(CityError, match="reason"):
        services.record_receipt(engine, notice_seq=7, action="objection", actor=LEADER, note=" ")
    with pytest.raises(CityError, match="use one of"):
        services.record_receipt(engine, notice_seq=7, action="ignore", actor=LEADER)
    assert seqs(engine) == []  # nothing queued by refused receipts
    seq = services.record_receipt(
        engine, notice_seq=7, action="objection", actor=LEADER, note="no staff"
    )
    assert seqs(engine) == [seq]
    row = services.inbox(engine)[0]
    assert row.objection_reason == "no staff" and row.objection_at is not None


def test_rebase_keeps_unsent_rows_the_hub_holds_identically(engine):
    """A store restored from a copy taken with a backlog: the hub got that backlog from the
    original store, so those rows count as delivered and are not renumbered (sent twice)."""
    for n in range(1, 6):
        services.send(engine, body(n))
    box = Outbox(engine)
    box.mark_delivered(2)
    mine = digests(engine)
    held = {seq: mine[seq] if seq <= 3 else other(seq) for seq in range(1, 11)}
    plan = box.rebase(hub_acked_seq=10, held=held)
    assert (plan.already_held, plan.renumbered) == (3, 2)  # 4 and 5 differ at the hub
    assert seqs(engine) == [1, 2, 3, 11, 12]
    snap = box.snapshot()
    assert (snap.delivered_seq, snap.last_seq, snap.state, snap.epoch) == (
        10,
        12,
        "never",
        plan.epoch,
    )
    assert [s for s, *_ in box.pending(after_seq=10, limit=10)] == [11, 12]


def test_rebase_below_delivered_rows_does_not_collide(engine):
    """The hub came back behind what this city delivered: rows above its mark move."""
    for n in range(1, 8):
        services.send(engine, body(n))
    box = Outbox(engine)
    box.mark_delivered(6)
    mine = digests(engine)
    plan = box.rebase(hub_acked_seq=3, held={seq: mine[seq] for seq in (1, 2, 3)})
    assert plan.renumbered == 4 and seqs(engine) == [1, 2, 3, 4, 5, 6, 7]
    envs = [pb.Envelope.FromString(raw) for _, raw, _ in box.pending(after_seq=3, limit=10)]
    assert [(e.seq, e.epoch, e.suggestion_batch.batch_number) for e in envs] == [
        (4, plan.epoch, 4),
        (5, plan.epoch, 5),
        (6, plan.epoch, 6),
        (7, plan.epoch, 7),
    ]


def test_rebase_plan_changes_nothing_and_rows_held_elsewhere_are_dropped(engine):
    for n in range(1, 6):
        services.send(engine, body(n))
    box = Outbox(engine)
    mine = digests(engine)
    before = box.snapshot()
    # The hub holds 1, 2 as we do, our row 3 under its seq 7 (an earlier re-base of a copy).
    held = {1: mine[1], 2: mine[2], 3: other(3), 4: other(4), 5: other(5), 6: other(6), 7: mine[3]}
    plan = box.rebase(hub_acked_seq=7, held=held, apply=False)
    assert (plan.already_held, plan.held_elsewhere, plan.renumbered) == (2, 1, 2)
    assert box.snapshot() == before and seqs(engine) == [1, 2, 3, 4, 5]
    followed = []
    plan = box.rebase(hub_acked_seq=7, held=held, on_renumber=lambda _c, m: followed.append(m))
    assert dict(plan.seq_map) == {3: 7, 4: 8, 5: 9} and followed == [plan.seq_map]
    assert seqs(engine) == [1, 2, 8, 9]
    assert [s for s, *_ in box.pending(after_seq=7, limit=10)] == [8, 9]
