"""When `fedsync city rebase` has nothing to do (``city_node.cli.in_step``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from city_node.cli import in_step


def _case(
    *, epoch: str = "e1", delivered: int = 10, last: int = 12, acked: int = 10, moves=None
) -> tuple[SimpleNamespace, SimpleNamespace]:
    snapshot = SimpleNamespace(epoch="e1", delivered_seq=delivered, last_seq=last)
    plan = SimpleNamespace(held_elsewhere=0, seq_map=moves if moves is not None else {11: 11})
    return snapshot, SimpleNamespace(hub_epoch=epoch, hub_acked_seq=acked, plan=plan)


def test_a_store_whose_unsent_rows_keep_their_numbers_is_in_step() -> None:
    assert in_step(*_case())


def test_a_store_re_based_and_not_sent_yet_is_in_step_under_its_new_epoch() -> None:
    # `rebase --yes` run twice before the node reconnects: the first counted what the hub
    # holds as delivered and numbered the rest after the hub's mark.
    assert in_step(*_case(epoch="e0"))


@pytest.mark.parametrize(
    ("case", "why"),
    [
        (dict(epoch="e2", delivered=8), "another epoch, rows the hub holds still unsent"),
        (dict(acked=13), "the hub holds seqs this store never assigned"),
        (dict(acked=4, moves={}), "a restored hub lost rows this store has purged"),
        (dict(moves={11: 13}), "a row would be renumbered"),
    ],
)
def test_a_store_out_of_step_is_re_based(case: dict[str, Any], why: str) -> None:
    assert not in_step(*_case(**case)), why
