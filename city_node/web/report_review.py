"""The leader's review of one report (``/reports/{id}``): the report as the report it is
(:mod:`city_node.review`), with approve / reject for a draft and the reason for a rejected
one; ``?print=1`` is the same page without the console's chrome, for paper or PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from city_node import reports, review
from city_node.context import CityContext
from city_node.staff import StaffMember
from city_node.vocabulary import ReportStatus
from city_node.web.auth import may, page_user
from city_node.web.pages import render
from sync.web.auth import area

router = APIRouter(include_in_schema=False)

User = Annotated[StaffMember, Depends(page_user)]


def _ctx(request: Request) -> CityContext:
    ctx: CityContext = request.app.state.ctx
    return ctx


@router.get("/reports/{report_id}", response_class=HTMLResponse)
@area("reports")
def report_review_page(
    request: Request, report_id: int, user: User, print: bool = False
) -> Response:
    ctx = _ctx(request)
    found = review.review(ctx, reports.get(ctx, report_id))
    return render(
        request,
        "report_review.html",
        user=user,
        review=found,
        print_view=print,
        may_decide=may(user.role, "reports.decide") and found.report.status == ReportStatus.DRAFT,
    )
