"""``fedsync demo``'s province side: a simulated province desk that acts, and the status
file the demo prints from.

Run by the demo as one long-lived child (``python -m province_hub.demo_desk``) over the
hub's store, it does what province staff would do, through the hub's own services
(:mod:`province_hub.services`): the welcome announcement to the demo's cities, a unified
standard answer for the category the cities escalate most, the resolution of some
escalations (the general-manager hotline) and a trace request now and then (the
supervisor). Every few seconds it writes the link picture and the notices' progress to a
JSON file, so the demo's own process never starts a command to poll (the demo's polling
costs next to nothing; see ``benchmarks/demo_footprint.py``).

Demo only: it sends made-up notices to the cities it is given.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from province_hub import desk, services
from province_hub.desk_views import Ages, queue
from province_hub.status import link_status, notice_progress
from sync.calendar import WorkCalendar
from sync.db import make_engine
from sync.pb.fedsync.v1 import federation_pb2 as pb

#: Texts the desk writes, by language (the demo runs in Chinese unless ``--lang en``).
TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "welcome_title": "欢迎加入省客服协同平台",
        "welcome_body": "各地市中心：请确认已阅读本公告。",
        "answer_topic": "{name}统一答复口径",
        "answer_body": "对“{name}”类来电，请先核实客户账户记录，"
        "向客户说明核查结果并在两个工作日内回复。",
        "resolution": "省客服中心已与相关部门核实，同意为客户办理退费，请回访客户确认。",
    },
    "en": {
        "welcome_title": "Welcome to the federation",
        "welcome_body": "Every city: please confirm you read this announcement.",
        "answer_topic": "Standard answer: {name}",
        "answer_body": "For calls about “{name}”, check the customer's account first, tell the "
        "customer what was found and answer within two working days.",
        "resolution": "The province checked with the department concerned and agreed to refund "
        "the customer; please call the customer back to confirm.",
    },
}

#: Category names for the standard answer's text (the hub keeps codes only).
_CATEGORY_FALLBACK = "BILL.DISPUTE"


@dataclass
class Desk:
    engine: Engine
    cities: list[str]
    lang: str
    roster: tuple[str, ...]
    category_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    resolved: set[tuple[str, str]] = field(default_factory=set)
    traced: set[tuple[str, str]] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    welcomed: bool = False

    def text(self, key: str, **values: str) -> str:
        return TEXTS[self.lang][key].format(**values)

    def _send(self, notice: pb.Notice) -> None:
        services.send_notice(self.engine, notice=notice, roster_codes=self.roster)

    def welcome(self) -> None:
        self._send(
            pb.Notice(
                kind=pb.ANNOUNCEMENT,
                priority=pb.NORMAL,
                title=self.text("welcome_title"),
                body=self.text("welcome_body"),
                sender="announcer",
                targets=self.cities,
            )
        )
        self.welcomed = True

    def escalations(self) -> list[tuple[str, str, str]]:
        """(city, ticket id, category) of every escalation the demo's cities sent, as the
        escalation desk holds them (one case each; a follow-up is not another)."""
        ages = Ages(WorkCalendar(), datetime.now(UTC), limit_days=0)
        cases = queue(self.engine, ages, state="all", limit=100_000)
        return [
            (c["city_code"], c["ticket_id"], c["category"])
            for c in cases
            if c["city_code"] in self.cities
        ]

    def act(self) -> None:
        """One round of province work: at most one standard answer, two resolutions and a
        trace request (so a visitor sees each happen without a flood)."""
        if not self.welcomed:
            self.welcome()
        held = self.escalations()
        used = Counter(category for _, _, category in held)
        category = used.most_common(1)[0][0] if used else _CATEGORY_FALLBACK
        if category not in self.answered and (used or not self.answered):
            zh, en = self.category_names.get(category, (category, category))
            name = zh if self.lang == "zh" else en
            self._send(
                pb.Notice(
                    kind=pb.STANDARD_ANSWER,
                    priority=pb.NORMAL,
                    title=self.text("answer_topic", name=name),
                    body=self.text("answer_body", name=name),
                    sender="materials",
                    targets=self.cities,
                    standard_answer=pb.StandardAnswer(
                        topic=self.text("answer_topic", name=name),
                        category=category,
                        answer=self.text("answer_body", name=name),
                    ),
                )
            )
            self.answered.add(category)
        todo = [(c, t) for c, t, _ in held if (c, t) not in self.resolved]
        # Resolve about half of them; the rest stay with the province for a while.
        for city, ticket in todo[: max(0, (len(todo) + 1) // 2)][:2]:
            desk.resolve_escalation(
                self.engine,
                city_code=city,
                ticket_id=ticket,
                resolution=self.text("resolution"),
                resolved_by="gm-hotline",
                roster_codes=self.roster,
                role="gm_hotline",
                # As the desk's form asks: how the complaint was settled.
                outcome=("upheld", "partly_upheld")[len(self.resolved) % 2],
            )
            self.resolved.add((city, ticket))
        untraced = [(c, t) for c, t, _ in held if (c, t) not in self.traced]
        if untraced and len(self.traced) < 3 * len(self.cities):
            city, ticket = untraced[-1]
            desk.request_trace(
                self.engine,
                city_code=city,
                ticket_id=ticket,
                requested_by="supervisor",
                roster_codes=self.roster,
                role="supervisor",
            )
            self.traced.add((city, ticket))

    def status(self, silent_after: timedelta) -> dict[str, Any]:
        progress = notice_progress(self.engine)
        if self.lang == "zh":
            # The hub writes its own notices' titles in English (the wire's); a Chinese demo
            # names them as the Chinese pages do.
            from province_hub.notice_board import titles_zh

            said = titles_zh(self.engine, [int(n["seq"]) for n in progress])
            progress = [{**n, "title": said.get(int(n["seq"]), n["title"])} for n in progress]
        return {
            "at": time.time(),
            "links": link_status(self.engine, self.cities, silent_after=silent_after),
            "notices": progress,
            "resolved": len(self.resolved),
            "traces_requested": len(self.traced),
            "standard_answers": len(self.answered),
        }


def _category_names(path: str) -> dict[str, tuple[str, str]]:
    """Names for the answer's text from a category CSV (default: the packaged tree the
    cities start with); a code the tree lacks is named by its code."""
    from sync.categories import CategoryTree

    tree = CategoryTree.load(Path(path) if path else None)
    return {c.code: (c.name_zh or c.code, c.name_en or c.code) for c in tree}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), "utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m province_hub.demo_desk")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--cities", required=True, help="comma-separated city codes")
    parser.add_argument("--roster", default="", help="the hub's roster CSV (default: Gansu)")
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument(
        "--categories", default="", help="category CSV for the names in texts (default: packaged)"
    )
    parser.add_argument("--status-file", required=True, type=Path)
    parser.add_argument("--status-seconds", type=float, default=5.0)
    parser.add_argument("--act-seconds", type=float, default=45.0)
    parser.add_argument("--silent-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    from sync.roster import load_roster

    roster = tuple(c.code for c in load_roster(Path(args.roster) if args.roster else None))
    desk = Desk(
        engine=make_engine(args.database_url),
        cities=[c for c in args.cities.split(",") if c],
        lang=args.lang,
        roster=roster,
        category_names=_category_names(args.categories),
    )
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not desk.welcomed:
        try:
            desk.welcome()
        except Exception as exc:
            print(f"demo desk: {exc}", file=sys.stderr, flush=True)
    # The first round once the cities had time to escalate something.
    next_act = time.monotonic() + min(20.0, args.act_seconds)
    silent_after = timedelta(seconds=args.silent_seconds)
    while not stopping:
        if time.monotonic() >= next_act:
            try:
                desk.act()
            except Exception as exc:  # a demo keeps going; say what broke
                print(f"demo desk: {exc}", file=sys.stderr, flush=True)
            next_act = time.monotonic() + args.act_seconds
        try:
            _write(args.status_file, desk.status(silent_after))
        except Exception as exc:
            print(f"demo desk: status: {exc}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + args.status_seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(1.0)
    desk.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
