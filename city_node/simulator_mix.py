"""The traffic simulator's mix for one city: volumes, shares, staff plan and words.

What :mod:`city_node.simulator` deals from (docs/domain.md): volume scaled by the city's
population (``sync.roster``), the shares of kinds, channels, tiers, complaint fates and
survey outcomes, the category weights and working hours, the demo accounts
(:func:`staff_plan`, :func:`ensure_staff`, password :data:`DEMO_PASSWORD`), the demo store's
mark (:func:`claim_demo_store`) and the simulated staff's words by language. Proportions
are dealt from a :class:`Deck` (an error-diffusion quota) rather than drawn independently,
so even a small city over a few days shows every scenario in about its share.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select

from city_node import commands, staff
from city_node.context import CityContext, CityError
from city_node.domain import (
    Action,
    Channel,
    CustomerTier,
    Role,
    Satisfaction,
    Ticket,
    TicketKind,
)
from city_node.store import NodeSetting, Staff, TicketRow
from sync.db import UnitOfWork
from sync.roster import RosterError, load_roster
from sync.web.i18n import DEFECT_WORDS

#: Password of every account the simulator creates (demo stores only; documented in README).
DEMO_PASSWORD = "fedsync-demo"
#: Tickets per working day per 100 000 inhabitants at ``scale=1`` (Lanzhou: ~130 a day).
TICKETS_PER_100K = 3.0
#: A city never gets fewer tickets a day than this, so small cities still show every kind.
MIN_PER_DAY = 6
#: Weekend and holiday traffic relative to a working day.
OFF_DAY_FACTOR = 0.6
#: Population assumed for a city the roster does not know.
DEFAULT_POPULATION = 1_000_000


# --- the mix -----------------------------------------------------------------------------------

KIND_MIX = {
    TicketKind.COMPLAINT: 0.45,
    TicketKind.ENQUIRY: 0.33,
    TicketKind.SUGGESTION: 0.09,
    TicketKind.HELP_REQUEST: 0.09,
    TicketKind.PRAISE: 0.04,
}
CHANNEL_MIX = {
    Channel.PHONE: 0.70,
    Channel.WEB: 0.15,
    Channel.WALK_IN: 0.08,
    Channel.LETTER: 0.02,
    Channel.OTHER: 0.05,
}
#: ~5 % priority customers, served by seniors.
TIER_MIX = {
    CustomerTier.ORDINARY: 0.95,
    CustomerTier.VIP: 0.025,
    CustomerTier.IMPORTANT: 0.015,
    CustomerTier.LEASED_LINE: 0.01,
}
#: What happens to a complaint (the "fate" decides its script, see _script).
COMPLAINT_FATES = {
    "spot": 0.25,  # answered on the spot
    "branch": 0.38,  # dispatched, worked, closed in time
    "chase_rework": 0.10,  # chased, the branch's reply sent back once (退单)
    "overtime": 0.08,  # closed after the deadline; compensation for most
    "reopen": 0.05,  # dissatisfied at the survey: reopened and worked again
    "manager": 0.07,  # the customer refuses the answer: manager hotline settles it
    "province": 0.04,  # manager hotline escalates to the province and waits
    "extension": 0.03,  # the branch needs more days; the leader approves
}
SURVEY_MIX = {
    Satisfaction.VERY_SATISFIED: 0.36,
    Satisfaction.SATISFIED: 0.34,
    Satisfaction.NEUTRAL: 0.10,
    Satisfaction.DISSATISFIED: 0.07,
    Satisfaction.UNREACHABLE: 0.13,
}
#: Share of complaints that repeat an earlier one (same phone and category, within 30 days).
REPEAT_SHARE = 0.08
#: Share of closed complaints the surveyor calls back (and of other kinds worked by a branch).
SURVEY_SHARE = 0.85
#: Heavier categories get more tickets; unknown codes weigh 1.
CATEGORY_WEIGHTS = {
    "BILL.DISPUTE": 5.0,
    "NET.BROADBAND": 5.0,
    "NET.SIGNAL": 4.0,
    "BILL.VAS": 3.0,
    "MKT.CALLS": 3.0,
    "SVC.ATTITUDE": 2.0,
    "BILL.PLAN": 2.0,
    "NET.FIXED": 1.5,
    "SVC.INSTALL": 1.5,
}
#: Local hours 8..21 and how busy each is (lunch dip, evening peak).
HOUR_WEIGHTS = (3, 8, 10, 9, 6, 7, 9, 8, 7, 6, 7, 5, 3, 2)
FIRST_HOUR = 8

BRANCHES = (
    "城区营业部",
    "东区装维中心",
    "西区装维中心",
    "网络维护中心",
    "政企客户部",
    "计费中心",
    "县分公司",
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
#: Complaint texts by top-level category (codes outside the packaged tree use "OTH").
COMPLAINT_CONTENT: dict[str, tuple[str, ...]] = {
    "BILL": ("本月话费比上月多出五十元，客户不认可", "未订购的增值业务被扣费，要求退费"),
    "NET": ("家中宽带频繁掉线，已影响工作", "小区内手机信号差，通话经常中断"),
    "SVC": ("营业厅工作人员态度冷淡", "装机预约后三天无人上门"),
    "MKT": ("每天接到多次营销电话，要求停止", "携号转网被无故拒绝"),
    "OTH": ("其他问题，客户要求尽快处理",),
}
CONTENT: dict[TicketKind, tuple[str, ...]] = {
    TicketKind.ENQUIRY: ("询问套餐资费及办理方式", "询问宽带升级的办理条件", "查询积分兑换规则"),
    TicketKind.SUGGESTION: (
        "建议延长营业厅周末营业时间",
        "建议宽带报修提供上门时间段预约",
        "建议话费账单增加明细说明",
        "建议偏远乡镇增设基站",
    ),
    TicketKind.HELP_REQUEST: ("老人手机无法开机，请求上门协助", "手机丢失，请求紧急停机"),
    TicketKind.PRAISE: ("表扬装维人员服务热情、技术熟练", "表扬营业员耐心细致"),
}
SUGGESTION_LABELS = ("营业服务", "网络建设", "资费套餐", "渠道便利", "其他")


# --- staff and store ---------------------------------------------------------------------------


def population_of(city_code: str, roster: Sequence[Any] | None = None) -> int:
    """The city's population from the roster (the packaged Gansu roster by default)."""
    try:
        cities = roster if roster is not None else load_roster()
    except RosterError:
        return DEFAULT_POPULATION
    for city in cities:
        if city.code == city_code and city.population > 0:
            return int(city.population)
    return DEFAULT_POPULATION


def daily_volume(population: int, scale: float = 1.0) -> int:
    """Tickets on a working day for a city of ``population`` (never below MIN_PER_DAY)."""
    return max(MIN_PER_DAY, round(population / 100_000 * TICKETS_PER_100K * scale))


def staff_plan(population: int) -> list[tuple[str, Role]]:
    """The accounts the simulator works as: more operators in bigger cities."""
    juniors = min(6, max(1, math.ceil(population / 800_000)))
    seniors = max(1, math.ceil(juniors / 2))
    plan = [(f"op-junior-{i}", Role.OPERATOR_JUNIOR) for i in range(1, juniors + 1)]
    plan += [(f"op-senior-{i}", Role.OPERATOR_SENIOR) for i in range(1, seniors + 1)]
    plan += [
        ("manager-1", Role.MANAGER_HOTLINE),
        ("surveyor-1", Role.SURVEYOR),
        ("qa-1", Role.QA_INSPECTOR),
        ("clerk-1", Role.MATERIALS_CLERK),
        ("stat-1", Role.STATISTICIAN),
        ("leader-1", Role.LEADER),
    ]
    return plan


#: The simulated staff's words, by language (``fedsync demo --lang``).
DEMO_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "staff_name": "{role}{n}号（演示）",
        "finding_ok": "服务规范，记录完整",
        "finding_defect": "发现问题：{defect}",
        "compensation": "超时限赔付",
        "approval": "同意上报（演示）",
    },
    "en": {
        "staff_name": "{role} {n} (demo)",
        "finding_ok": "Handled by the book, record complete",
        "finding_defect": "Problem found: {defect}",
        "compensation": "compensation for the broken time limit",
        "approval": "approved (demo)",
    },
}
_ROLE_NAMES = {
    Role.OPERATOR_JUNIOR: ("初级话务员", "junior operator"),
    Role.OPERATOR_SENIOR: ("高级话务员", "senior operator"),
    Role.MANAGER_HOTLINE: ("经理热线", "manager hotline"),
    Role.SURVEYOR: ("回访员", "surveyor"),
    Role.QA_INSPECTOR: ("质检员", "QA inspector"),
    Role.MATERIALS_CLERK: ("资料员", "materials clerk"),
    Role.STATISTICIAN: ("统计员", "statistician"),
    Role.LEADER: ("中心领导", "center leader"),
}
DEFECT_NAMES = DEFECT_WORDS


def ensure_staff(
    engine: Engine, plan: Iterable[tuple[str, Role]], *, lang: str = "zh"
) -> dict[Role, list[str]]:
    """Create the accounts of ``plan`` that are missing; return staff ids by role."""
    by_role: dict[Role, list[str]] = {}
    for staff_id, role in plan:
        if staff.get(engine, staff_id) is None:
            with contextlib.suppress(CityError):  # created meanwhile by a parallel start
                staff.add(
                    engine,
                    staff_id=staff_id,
                    name=DEMO_TEXTS.get(lang, DEMO_TEXTS["zh"])["staff_name"].format(
                        role=_ROLE_NAMES[role][0 if lang == "zh" else 1],
                        n=staff_id.rsplit("-", 1)[-1],
                    ),
                    role=role,
                    password=DEMO_PASSWORD,
                )
        by_role.setdefault(role, []).append(staff_id)
    return by_role


_DEMO_MARK = "demo_store"


def claim_demo_store(ctx: CityContext) -> None:
    """Refuse to simulate into a store with real work.

    The simulator creates accounts with a published password and sends made-up reports to
    the province: it may only write into a store that is empty (which it then marks as a
    demo store) or already marked.
    """
    with UnitOfWork(ctx.engine) as uow:
        mark = uow.conn.execute(
            select(NodeSetting.value).where(NodeSetting.key == _DEMO_MARK)
        ).scalar()
        if mark == "1":
            return
        n_tickets = uow.conn.execute(select(func.count()).select_from(TicketRow)).scalar()
        n_staff = uow.conn.execute(select(func.count()).select_from(Staff)).scalar()
        if n_tickets or n_staff:
            raise CityError("simulate.real_store", tickets=n_tickets, staff=n_staff)
        uow.conn.execute(insert(NodeSetting).values(key=_DEMO_MARK, value="1"))
        uow.commit()


# --- scripts -----------------------------------------------------------------------------------


class Deck:
    """Deals values in their shares, deterministically: each deal adds every value's share
    to its credit and picks among those with the most credit (ties broken by the rng), so
    over n deals each value comes up within one of ``share * n`` times — a small sample
    still shows rare cases — while the order stays random."""

    def __init__(self, shares: dict[Any, float], rng: random.Random) -> None:
        total = sum(shares.values())
        self._shares = {k: v / total for k, v in shares.items()}
        self._credit = {k: rng.random() * v for k, v in self._shares.items()}
        self._rng = rng

    def deal(self) -> Any:
        for key, share in self._shares.items():
            self._credit[key] += share
        best = max(self._credit.values())
        ready = [k for k, c in self._credit.items() if c >= best - 1e-9]
        pick = ready[0] if len(ready) == 1 else self._rng.choice(ready)
        self._credit[pick] -= 1.0
        return pick


@dataclass(frozen=True)
class Step:
    """One thing that will be done to a ticket.

    ``delay`` is the time after the previous step; with ``frac`` the step also waits until
    that fraction of the ticket's time limit has passed (1.2 = past the deadline).
    ``action`` None with ``compensate_fen`` records compensation instead of a lifecycle step.
    """

    role: Role
    action: Action | None
    delay: timedelta
    frac: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    compensate_fen: int = 0

    def command(self) -> commands.Command:
        """The lifecycle step as the typed command :func:`city_node.tickets.perform` takes."""
        if self.action is None:
            raise ValueError("a compensation step is not a lifecycle command")
        p = self.params
        return commands.command_from(
            self.action,
            note=str(p.get("note", "")),
            branch=p.get("branch"),
            outcome=p.get("outcome"),
            reopen=bool(p.get("reopen")),
            days=p.get("days"),
            reason=p.get("reason"),
        )


@dataclass
class LiveTicket:
    """A ticket being worked: its last known state and what is left to do."""

    ticket: Ticket
    steps: deque[Step]
    operator: str  # the operator who owns it (a senior for priority tiers)
