"""Promises about customers' personal data at the console (real console, SQLite and
PostgreSQL).

- Roles that never call customers (QA inspector, materials clerk, statistician, leader) see
  phones and names masked (``138****5678``, ``李*``) in ticket lists, details and pages;
  operators, the manager hotline and surveyors see them in full. The same name and any
  phone-like number inside the ticket's content and history notes are masked alike, and
  inside a suggestion's content on the suggestions page and API.
- Only operators, the manager hotline and surveyors may search by phone (403 for the rest).
- Every unmasked read — a ticket's detail, a phone search, a list — appends to the access log (who,
  role, when, which ticket, what), which the leader (only) sees on a page and in the API.
- Phones are stored as digits: ``138 1234-5678`` is the same customer as ``13812345678``
  (so repeat complaints are found); ``0----`` and letters are refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from city_node.store import AccessLog
from tests.security.conftest import Console, new_ticket

CONTACT = ("junior", "senior", "manager", "surveyor")
MASKED = ("inspector", "clerk", "stat", "leader")


def register(console: Console, **overrides: Any) -> dict[str, Any]:
    with console.api("junior") as c:
        created = c.post("/api/v1/tickets", json=new_ticket(**overrides))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def log_rows(console: Console) -> list[Any]:
    with console.engine.connect() as conn:
        return list(conn.execute(select(AccessLog).order_by(AccessLog.id)))


def test_roles_that_never_call_customers_see_them_masked(console: Console) -> None:
    ticket = register(console)
    for who in MASKED:
        with console.api(who) as c:
            listed = c.get("/api/v1/tickets").json()
            detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
        with console.browser(who) as b:
            page = b.get(f"/tickets/{ticket['id']}").text + b.get("/tickets").text
        for shown in (listed[0], detail):
            assert (shown["customer_phone"], shown["customer_name"]) == ("138****5678", "李*"), who
        assert "13812345678" not in page and "李四" not in page, who
        assert "138****5678" in page, who
    for who in CONTACT:
        with console.api(who) as c:
            listed = c.get("/api/v1/tickets").json()
            detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
        for shown in (listed[0], detail):
            assert (shown["customer_phone"], shown["customer_name"]) == ("13812345678", "李四")


def test_the_name_and_numbers_inside_content_and_notes_are_masked_too(console: Console) -> None:
    ticket = register(console, content="李四来电：另一号码 0931-8456789 也被扣费")
    with console.api("junior") as c:
        r = c.post(
            f"/api/v1/tickets/{ticket['id']}/actions",
            json={"action": "hand_to_senior", "note": "已回拨 13812345678"},
        )
        assert r.status_code == 200, r.text
    for who in MASKED:
        with console.api(who) as c:
            detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
        with console.browser(who) as b:
            page = b.get(f"/tickets/{ticket['id']}").text
        assert detail["content"] == "李*来电：另一号码 093****6789 也被扣费", who
        notes = [h["note"] for h in detail["history"] if h["note"]]
        assert notes == ["已回拨 138****5678"], who
        assert not any("13812345678" in h["text"] for h in detail["history"]), who
        for secret in ("13812345678", "李四", "0931-8456789"):
            assert secret not in page, (who, secret)
    with console.api("senior") as c:
        detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert detail["content"] == "李四来电：另一号码 0931-8456789 也被扣费"
    assert [h["note"] for h in detail["history"] if h["note"]] == ["已回拨 13812345678"]


def test_only_roles_that_call_customers_search_by_phone(console: Console) -> None:
    ticket = register(console)
    for who in MASKED:
        with console.api(who) as c:
            refused = c.get("/api/v1/tickets", params={"phone": "13812345678"})
        with console.browser(who) as b:
            page = b.get("/tickets", params={"phone": "13812345678"})
        assert refused.status_code == 403, who
        assert "search_by_phone" in refused.json()["detail"]
        assert page.status_code == 403 and "charged twice" not in page.text
    for who in CONTACT:
        with console.api(who) as c:
            found = c.get("/api/v1/tickets", params={"phone": "138 1234-5678"}).json()
        assert [t["id"] for t in found] == [ticket["id"]], who


def test_unmasked_reads_go_to_the_access_log(console: Console) -> None:
    ticket = register(console)  # the registration answer shows the ticket: one read
    with console.api("surveyor") as c:
        assert c.get(f"/api/v1/tickets/{ticket['id']}").status_code == 200
        assert c.get("/api/v1/tickets", params={"phone": "13812345678"}).status_code == 200
        assert c.get("/api/v1/tickets", params={"phone": "13900000000"}).status_code == 200
        # A list shows phones and names in full to this role: each ticket shown is logged.
        assert c.get("/api/v1/tickets").status_code == 200
    with console.browser("senior") as b:
        assert b.get("/tickets").status_code == 200
    with console.api("stat") as c:  # masked reads are not personal data: not logged
        assert c.get(f"/api/v1/tickets/{ticket['id']}").status_code == 200
        assert c.get("/api/v1/tickets").status_code == 200
    with console.browser("leader") as b:
        assert b.get("/tickets").status_code == 200
    rows = [(r.staff_id, r.role, r.ticket_id, r.what) for r in log_rows(console)]
    assert rows == [
        ("junior", "operator_junior", ticket["id"], "ticket detail"),
        ("surveyor", "surveyor", ticket["id"], "ticket detail"),
        ("surveyor", "surveyor", ticket["id"], "phone search"),
        ("surveyor", "surveyor", None, "phone search"),
        ("surveyor", "surveyor", ticket["id"], "ticket list"),
        ("senior", "operator_senior", ticket["id"], "ticket list"),
    ]
    assert all(r.at is not None for r in log_rows(console))


def test_the_leader_reads_the_access_log_and_no_one_else(console: Console) -> None:
    ticket = register(console)
    with console.api("leader") as c:
        entries = c.get("/api/v1/access-log").json()
    with console.browser("leader") as b:
        page = b.get("/access-log")
    assert [(e["staff_id"], e["ticket_id"], e["what"]) for e in entries] == [
        ("junior", ticket["id"], "ticket detail")
    ]
    assert page.status_code == 200 and "junior" in page.text
    with console.browser("leader") as b:  # the page names what was read in its language
        assert "工单详情" in b.get("/access-log", params={"lang": "zh-CN"}).text
        assert "ticket detail" in b.get("/access-log", params={"lang": "en"}).text
    for who in ("junior", "stat", "surveyor"):
        with console.api(who) as c:
            assert c.get("/api/v1/access-log").status_code == 403, who
        with console.browser(who) as b:
            assert b.get("/access-log").status_code == 403, who


def test_the_access_log_is_kept_by_the_code_as_append_only(console: Console) -> None:
    # Reading the log is not itself a change to it, and nothing in the console removes rows.
    register(console)
    with console.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(AccessLog)).scalar_one()
    with console.api("leader") as c:
        c.get("/api/v1/access-log")
    with console.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AccessLog)).scalar_one() == before


def test_phones_are_stored_as_digits(console: Console) -> None:
    first = register(console, customer_phone="138 1234-5678")
    second = register(console, customer_phone="13812345678")
    assert first["customer_phone"] == second["customer_phone"] == "13812345678"
    assert second["is_repeat"] is True  # the same customer, however the number was typed
    with console.api("junior") as c:
        for bad in ("0----", "138-abcd-5678", "+86 138 1234 5678", "1234"):
            refused = c.post("/api/v1/tickets", json=new_ticket(customer_phone=bad))
            assert refused.status_code == 422, bad
            assert "customer_phone" in refused.json()["detail"], bad


def test_suggestions_are_masked_for_the_roles_the_ticket_views_mask_for(
    console: Console,
) -> None:
    words = "欧阳探针建议在小区加建基站，回电 13977665544"
    ticket = register(
        console,
        kind="suggestion",
        category="NET",
        customer_name="欧阳探针",
        customer_phone="13977665544",
        content=words,
    )
    masked = "欧***建议在小区加建基站，回电 139****5544"
    for who in ("clerk", "leader"):
        with console.api(who) as c:
            (listed,) = c.get("/api/v1/suggestions").json()
            detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
        with console.browser(who) as b:
            page = b.get("/suggestions").text
        assert listed["content"] == detail["content"] == masked, who
        assert masked in page, who
        for secret in ("欧阳探针", "13977665544"):
            assert secret not in page, (who, secret)
    with console.api("clerk") as c:
        classified = c.post(
            f"/api/v1/suggestions/{ticket['id']}/classify", json={"label": "coverage"}
        )
        assert classified.status_code == 200, classified.text
        (waiting,) = c.get("/api/v1/suggestions", params={"classified": "true"}).json()
    assert classified.json()["content"] == waiting["content"] == masked


def test_a_class_label_and_every_steps_words_are_masked_in_the_whole_answer(
    console: Console,
) -> None:
    """Not only the note and the sentence: a step's parameters (a class label, the
    province's resolution) and the ticket's class are words a person typed too."""
    ticket = register(
        console,
        kind="suggestion",
        category="NET",
        customer_name="欧阳探针",
        customer_phone="13977665544",
        content="建议加建基站",
    )
    with console.api("clerk") as c:
        classified = c.post(
            f"/api/v1/suggestions/{ticket['id']}/classify",
            json={"label": "欧阳探针 0931 8456700"},
        )
        assert classified.status_code == 200, classified.text
    for who in MASKED:
        with console.api(who) as c:
            answer = c.get(f"/api/v1/tickets/{ticket['id']}")
        assert answer.status_code == 200, answer.text
        detail = answer.json()
        assert detail["suggestion_class"] == "欧*** 093****6700", who
        params = [h["params"] for h in detail["history"] if h["params"].get("label")]
        assert params and all(p["label"] == "欧*** 093****6700" for p in params), params
        for secret in ("欧阳探针", "8456700", "13977665544"):
            assert secret not in answer.text, (who, secret)
    with console.api("senior") as c:
        detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert detail["suggestion_class"] == "欧阳探针 0931 8456700"


def test_a_qa_finding_is_shown_masked_to_the_qa_roles(console: Console) -> None:
    """The QA area's roles (inspector, leader) never call customers: the finding an
    inspector typed shows the sampled ticket's customer and any phone-like number masked,
    in the worklist, the score's answer and the page, as the QA report the city sends."""
    with console.api("senior") as op:
        op.post("/api/v1/tickets", json=new_ticket(then="answer", note="explained the bill"))
    finding = "对李四态度差，客户电话13812345678，另一号码 0931 8456789"
    masked = "对李*态度差，客户电话138****5678，另一号码 093****6789"
    with console.api("inspector") as inspector:
        (sample_id,) = inspector.post("/api/v1/qa/draw").json()["sample_ids"]
        keys = [i["key"] for i in inspector.get("/api/v1/qa/scorecard").json()["items"]]
        scored = inspector.post(
            f"/api/v1/qa/samples/{sample_id}/score",
            json={"items": dict.fromkeys(keys, 80), "defects": ["attitude"], "finding": finding},
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["finding"] == masked
    for who in ("inspector", "leader"):
        with console.api(who) as c:
            done = c.get("/api/v1/qa/samples", params={"scored": True})
        with console.browser(who) as b:
            page = b.get("/qa").text
        assert done.json()[0]["finding"] == masked, who
        assert masked in page, who
        for secret in ("李四", "13812345678", "8456789"):
            assert secret not in done.text and secret not in page, (who, secret)
