"""The QA picture and the GM hotline's overtime and compensation summary."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine

from province_hub.consolidation.core import children, city_entry, headers, period_ref
from province_hub.figures import (
    OvertimeCase,
    OvertimeFigures,
    QaDefect,
    QaFigures,
    QaOperator,
    kpi,
)
from sync.masking import mask_text
from sync.roster import City


def qa_picture(
    engine: Engine, *, period_kind: str, start: date | str, roster: Sequence[City]
) -> dict[str, Any]:
    """Per city: pass rate, mean score, defects by kind, operators and the inspector's
    findings (latest QA revision); the province's pass rate, mean score weighted by the
    samples, and defects summed."""
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = headers(conn, QaFigures, p.kind, [p.start], codes)
        keys = [(r.city_code, r.seq) for r in heads.values()]
        defects = children(conn, QaDefect, keys)
        operators = children(conn, QaOperator, keys)
    by_city_defects: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in defects:
        by_city_defects[d.city_code][d.defect] += d.count
    by_city_ops: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in operators:
        by_city_ops[o.city_code].append(
            {
                "operator_id": o.operator_id,
                "sampled": o.sampled,
                "passed": o.passed,
                "mean_score": o.mean_score_centi / 100,
            }
        )
    cities = []
    sampled = passed = score_weight = 0
    province_defects: dict[str, int] = defaultdict(int)
    for city in roster:
        entry = city_entry(city)
        head = heads.get((city.code, p.start))
        if head is None:
            entry.update(missing=True, revision=None)
            cities.append(entry)
            continue
        city_defects = dict(sorted(by_city_defects[city.code].items()))
        entry.update(
            missing=False,
            revision=head.revision,
            sampled=head.sampled,
            passed=head.passed,
            pass_rate=kpi(head.passed, head.sampled),
            mean_score=head.mean_score_centi / 100 if head.sampled else None,
            defects=city_defects,
            operators=by_city_ops[city.code],
            # A QA report carries no customer: a number a city left in a finding (before
            # it masked them) is masked for every reader.
            findings=mask_text(head.findings),
            inspector=head.inspector,
        )
        cities.append(entry)
        sampled += head.sampled
        passed += head.passed
        score_weight += head.mean_score_centi * head.sampled
        for name, n in city_defects.items():
            province_defects[name] += n
    return {
        "period": p.as_dict(),
        "cities": cities,
        "province": {
            "sampled": sampled,
            "passed": passed,
            "pass_rate": kpi(passed, sampled),
            "mean_score": round(score_weight / sampled / 100, 2) if sampled else None,
            "defects": dict(sorted(province_defects.items())),
        },
    }


def overtime_summary(
    engine: Engine, *, period_kind: str, start: date | str, roster: Sequence[City]
) -> dict[str, Any]:
    """Overtime complaints and compensation per city and per branch (the GM hotline's
    summary), from each city's latest overtime report of the period; money in fen."""
    p = period_ref(period_kind, start)
    codes = [c.code for c in roster]
    with engine.connect() as conn:
        heads = headers(conn, OvertimeFigures, p.kind, [p.start], codes)
        cases = children(conn, OvertimeCase, [(r.city_code, r.seq) for r in heads.values()])
    branches: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for c in cases:
        b = branches[c.city_code].setdefault(
            c.branch, {"cases": 0, "compensation_fen": 0, "overdue_hours": 0}
        )
        b["cases"] += 1
        b["compensation_fen"] += c.compensation_fen
        b["overdue_hours"] += c.overdue_hours
    cities = []
    total_cases = total_fen = 0
    for city in roster:
        entry = city_entry(city)
        head = heads.get((city.code, p.start))
        if head is None:
            entry.update(missing=True, revision=None)
            cities.append(entry)
            continue
        entry.update(
            missing=False,
            revision=head.revision,
            cases=head.cases,
            total_compensation_fen=head.total_compensation_fen,
            branches=[{"branch": k, **v} for k, v in sorted(branches[city.code].items())],
        )
        cities.append(entry)
        total_cases += head.cases
        total_fen += head.total_compensation_fen
    return {
        "period": p.as_dict(),
        "cities": cities,
        "province": {"cases": total_cases, "total_compensation_fen": total_fen},
    }
