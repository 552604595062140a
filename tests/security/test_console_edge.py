"""Promises about what the console accepts (real console over uvicorn, SQLite and PostgreSQL).

- A request body over the cap (1 MiB by default) is refused with 413 before it is parsed
  and before anyone is authenticated, whether it declares its length or streams it.
- Control characters (NUL, ANSI escapes…) and lone surrogates in a JSON body, a form, the
  query or the HTTP Basic account name are refused with 422 naming where they were.
- Anything unhandled answers 500 ``{"detail", "error_id"}`` (an error page for pages); the
  log names the error id and type, never the request's data.
- A SQLite store locked by another writer answers 503 with ``Retry-After`` quickly.
- Every response but static files carries ``Cache-Control: no-store``.
- Strict values: ``"fen": true``, ``"start": 0``, ``"reopen": "yes"`` are refused; ids of
  2^63 or more are 404/422, never 500; report dates outside 2000..2100 and searches of more
  than 20 words are 422; ``branch`` without dispatch is refused; notes are bounded by the
  hub's limit (``sync.limits``).
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from city_node import services
from city_node.store import TicketRow
from sync.db import make_engine
from sync.limits import MAX_NOTE_CHARS
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving
from tests.security.conftest import PASSWORD, Console, csrf_of, make_console, new_ticket

MIB = 1024 * 1024
TOO_BIG = 2**63


def tickets_stored(console: Console) -> int:
    with console.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(TicketRow)).scalar_one())


# --- body size ----------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_refused_before_login(console: Console) -> None:
    big = b'{"kind": "' + b"x" * (MIB + 10) + b'"}'
    with console.anonymous() as c:  # no credentials at all: the size is judged first
        declared = c.post(
            "/api/v1/tickets", content=big, headers={"content-type": "application/json"}
        )

        def stream() -> Iterator[bytes]:  # chunked: no Content-Length to trust
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]

        streamed = c.post(
            "/api/v1/tickets", content=stream(), headers={"content-type": "application/json"}
        )
        page = c.post("/login", content=b"a=" + b"x" * (MIB + 10))
    for refused in (declared, streamed):
        assert refused.status_code == 413, refused.text
        assert "limit" in refused.json()["detail"]
    assert page.status_code == 413
    # Just under the cap is read (and refused for what it is: no credentials).
    with console.anonymous() as c:
        fits = c.post("/api/v1/tickets", json=new_ticket(content="x" * 1000))
    assert fits.status_code == 401


def test_the_body_cap_is_a_setting(databases: Any) -> None:
    engine, _, app = make_console(databases("cap"), max_body_bytes=4096)
    with serving(app) as url, httpx.Client(base_url=url, auth=("junior", PASSWORD)) as c:
        refused = c.post("/api/v1/tickets", json=new_ticket(content="x" * 5000))
        taken = c.post("/api/v1/tickets", json=new_ticket(content="x" * 3000))
    engine.dispose()
    assert refused.status_code == 413 and taken.status_code == 201


# --- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["\x00", "\x1b[2J\x1b]0;pwned\x07", "\ud800", "\x7f", "\x9b"], ids=repr
)
def test_control_characters_are_refused_at_the_edge(console: Console, bad: str) -> None:
    def as_json(**fields: str) -> dict[str, Any]:
        # json.dumps writes a lone surrogate as the escape a client would send: \ud800
        return {
            "content": json.dumps(new_ticket(**fields)),
            "headers": {"content-type": "application/json"},
        }

    with console.api("junior") as c:
        in_name = c.post("/api/v1/tickets", **as_json(customer_name=f"Li{bad}"))
        in_content = c.post("/api/v1/tickets", **as_json(content=f"a{bad}b"))
        answers = [(in_name, "customer_name"), (in_content, "content")]
        if bad != "\ud800":  # a URL or a form cannot carry a lone surrogate in UTF-8
            answers.append((c.get("/api/v1/answers", params={"q": f"bill{bad}"}), "q"))
    for refused, where in answers:
        assert refused.status_code == 422, (where, refused.text)
        assert where in refused.json()["detail"]
    if bad != "\ud800":
        with console.browser("junior") as b:
            token = csrf_of(b.get("/tickets/new").text)
            form = b.post(
                "/tickets", data={**new_ticket(customer_name=f"Li{bad}"), "csrf_token": token}
            )
        assert form.status_code == 422
    assert tickets_stored(console) == 0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"[" * 1000 + b"]" * 1000, "deeper than 32"),  # Python's decoder gives up here
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "deeper than 32"),
        (b'{"kind": "complaint", "content": "\xff\xfe"}', "UTF-8"),
        (b'{"fen": ' + b"9" * 5000 + b"}", "too many digits"),
    ],
    ids=["1000-deep", "40-deep", "not-utf8", "5000-digits"],
)
def test_json_no_parser_can_read_is_422_before_login(
    console: Console, body: bytes, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), console.anonymous() as c:
        refused = c.post(
            "/api/v1/tickets", content=body, headers={"content-type": "application/json"}
        )
    assert refused.status_code == 422, refused.text
    assert "body" in refused.json()["detail"] and named in refused.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert tickets_stored(console) == 0


def test_query_and_form_bytes_that_are_not_utf8_are_refused_naming_the_field(
    console: Console,
) -> None:
    with console.browser("junior") as b:
        token = csrf_of(b.get("/tickets/new").text)
        fields = {**new_ticket(), "csrf_token": token}
        form = urlencode({k: v for k, v in fields.items() if k != "content"})
        headers = {"content-type": "application/x-www-form-urlencoded"}
        escaped = b.post("/tickets", content=form + "&content=%ff%fe", headers=headers)
        raw = b.post("/tickets", content=form.encode() + b"&content=\xff\xfe", headers=headers)
        query = b.get("/api/v1/answers?q=%ff")
    # A Chinese page names the field as the form does (an English one: body.content).
    assert escaped.status_code == 422 and "内容：不是有效的 UTF-8 文本" in escaped.text
    assert raw.status_code == 422 and "body" in raw.text and "ASCII" in raw.text, raw.text
    assert query.status_code == 422 and "query.q" in query.json()["detail"]
    assert tickets_stored(console) == 0


def test_newlines_and_tabs_stay_allowed_in_free_text(console: Console) -> None:
    with console.api("junior") as c:
        ok = c.post("/api/v1/tickets", json=new_ticket(content="line one\n\tline two\r\n"))
    assert ok.status_code == 201


def test_a_nul_in_the_basic_account_name_is_422_not_a_database_error(console: Console) -> None:
    token = base64.b64encode(f"jun\x00ior:{PASSWORD}".encode()).decode()
    with console.anonymous() as c:
        refused = c.get("/api/v1/me", headers={"Authorization": f"Basic {token}"})
        in_path = c.get("/api/v1/tickets/1%00")
    assert refused.status_code == 422 and "authorization" in refused.json()["detail"]
    assert in_path.status_code == 422


def test_ansi_escapes_in_a_stored_name_are_not_printed_raw(console: Console, capsys) -> None:
    # A name stored before the edge refused them (or written to the store by other means).
    from sqlalchemy import update

    from sync.cli import main

    with console.api("junior") as c:
        ticket = c.post("/api/v1/tickets", json=new_ticket()).json()
    with console.engine.begin() as conn:
        conn.execute(
            update(TicketRow)
            .where(TicketRow.id == ticket["id"])
            .values(customer_name="\x1b]0;owned\x07\x1b[2JLi")
        )
    url = console.engine.url.render_as_string(hide_password=False)
    code = main(
        [
            "city",
            "ticket",
            "show",
            "--code",
            "620100",
            "--database-url",
            url,
            "--id",
            str(ticket["id"]),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07\\x1b[2JLi" in out


# --- unhandled errors, busy store, caching -------------------------------------------------------


def test_an_unhandled_error_answers_an_error_id_and_logs_no_data(
    console: Console, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    said = "customer 13812345678 Li Si said something"

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(said)  # as a database error would quote a statement's data

    monkeypatch.setattr(services, "inbox", boom)
    caplog.set_level(logging.ERROR, logger="fedsync.web")
    with console.api("leader") as c:
        api = c.get("/api/v1/inbox")
    with console.browser("leader") as b:
        page = b.get("/inbox")
    assert api.status_code == 500
    body = api.json()
    assert set(body) == {"detail", "error_id"} and body["error_id"] in body["detail"]
    assert page.status_code == 500 and "text/html" in page.headers["content-type"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert body["error_id"] in logged and "RuntimeError" in logged
    assert "13812345678" not in logged and "Li Si" not in logged
    assert "13812345678" not in api.text + page.text


def test_a_locked_sqlite_store_answers_503_quickly(databases: Any, tmp_path) -> None:
    url = databases("locked")
    if not url.startswith("sqlite"):
        pytest.skip("SQLite's writer lock")
    engine, ctx, _ = make_console(url)
    from city_node.web.app import create_app
    from sync.outbox import Outbox

    short = make_engine(url, busy_timeout=0.3)  # what build_console gives the console
    app = create_app(
        ctx.__class__(**{**_fields(ctx), "engine": short}), Outbox(short), secret_key=b"k" * 32
    )
    database = make_url(url).database
    assert database is not None  # a SQLite URL names its file
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the store
    try:
        with (
            serving(app) as base,
            httpx.Client(base_url=base, auth=("junior", PASSWORD), timeout=30) as c,
        ):
            started = time.monotonic()
            busy = c.post("/api/v1/tickets", json=new_ticket())
            waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        short.dispose()
        engine.dispose()
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"].isdigit()
    assert "busy" in busy.json()["detail"]
    assert waited < 10


def _fields(ctx: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx) if f.init}


def test_a_trailing_slash_is_no_redirect_to_the_host_a_request_names(console: Console) -> None:
    """Starlette's slash redirect built its target from the Host header: a forged Host sent
    the browser elsewhere."""
    with console.api("junior") as c:
        answer = c.get("/api/v1/me/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert answer.status_code == 404 and "location" not in answer.headers
        assert c.get("/api/v1/me").status_code == 200


def test_responses_are_not_cached_but_static_files_are_allowed(console: Console) -> None:
    with console.browser("junior") as b:
        for path in ("/tickets", "/api/v1/tickets", "/login", "/api/v1/nothing-here"):
            assert b.get(path).headers.get("cache-control") == "no-store", path
        assert b.get("/static/common/fedsync.css").headers.get("cache-control") != "no-store"


# --- strict values and bounds --------------------------------------------------------------------


def test_loose_values_are_refused(console: Console) -> None:
    with console.api("manager") as c:
        ticket = c.post("/api/v1/tickets", json=new_ticket()).json()
        fen = c.post(
            f"/api/v1/tickets/{ticket['id']}/compensation", json={"fen": True, "note": "x"}
        )
        fen_text = c.post(
            f"/api/v1/tickets/{ticket['id']}/compensation", json={"fen": "100", "note": "x"}
        )
        zero = c.post(f"/api/v1/tickets/{ticket['id']}/compensation", json={"fen": 0, "note": "x"})
    with console.api("surveyor") as c:
        reopen = c.post(
            f"/api/v1/tickets/{ticket['id']}/actions",
            json={"action": "survey", "outcome": "dissatisfied", "reopen": "yes"},
        )
    with console.api("stat") as c:
        epoch = c.post(
            "/api/v1/reports", json={"kind": "statistics", "period_kind": "day", "start": 0}
        )
        # A date-time at midnight, a number in digits: neither is YYYY-MM-DD text.
        spelled = [
            c.post(
                "/api/v1/reports",
                json={"kind": "statistics", "period_kind": "day", "start": start},
            )
            for start in ("2026-11-02T00:00", "20261102", "2026-W45-1")
        ]
    answers = [(fen, "fen"), (fen_text, "fen"), (zero, "fen"), (reopen, "reopen")]
    answers += [(epoch, "start"), *((s, "YYYY-MM-DD") for s in spelled)]
    for refused, field in answers:
        assert refused.status_code == 422, (field, refused.text)
        assert field in refused.json()["detail"]
    with console.api("leader") as c:
        detail = c.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert detail["compensation_fen"] == 0


@pytest.mark.parametrize("start", ["0001-01-01", "1900-01-01", "2101-01-01", "9999-12-31"])
def test_report_dates_outside_2000_to_2100_are_422(console: Console, start: str) -> None:
    with console.api("stat") as c:
        refused = c.post(
            "/api/v1/reports", json={"kind": "statistics", "period_kind": "day", "start": start}
        )
    assert refused.status_code == 422, refused.text


def test_ids_beyond_64_bits_are_never_a_server_error(console: Console) -> None:
    services.accept_notice(console.engine, _notice(3))
    calls: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("stat", "GET", f"/api/v1/reports/{TOO_BIG}", None),
        ("leader", "POST", f"/api/v1/reports/{TOO_BIG}/approve", {}),
        ("inspector", "POST", f"/api/v1/qa/samples/{TOO_BIG}/score", {"items": {}}),
        ("leader", "POST", f"/api/v1/inbox/{TOO_BIG}/receipts", {"action": "read"}),
        ("junior", "GET", f"/api/v1/tickets/{TOO_BIG}", None),
        ("junior", "GET", f"/api/v1/tickets/{2**64 + 1}", None),
        ("stat", "GET", "/api/v1/reports/0", None),
    ]
    for who, method, path, body in calls:
        with console.api(who) as c:
            answer = c.request(method, path, json=body)
        assert answer.status_code in (404, 422), (path, answer.text)
        assert "detail" in answer.json()
    with console.browser("leader") as b:
        assert b.get(f"/tickets/{TOO_BIG}").status_code in (404, 422)


def _notice(seq: int) -> pb.Notice:
    n = pb.Notice(seq=seq, kind=pb.TASK, priority=pb.HIGH, title="t", body="b", sender="hq")
    n.created_at.GetCurrentTime()
    return n


def test_searches_are_capped_at_20_words(console: Console) -> None:
    with console.api("junior") as c:
        many = c.get("/api/v1/answers", params={"q": " ".join(["a"] * 1200)})
        one_more = c.get("/api/v1/answers", params={"q": " ".join(["bill"] * 21)})
        twenty = c.get("/api/v1/answers", params={"q": " ".join(["bill"] * 20)})
    for refused in (many, one_more):
        assert refused.status_code == 422 and "at most 20" in refused.json()["detail"]
    assert twenty.status_code == 200


def test_a_branch_without_dispatch_is_refused(console: Console) -> None:
    with console.api("junior") as c:
        registered = c.post(
            "/api/v1/tickets", json=new_ticket(then="answer", branch="Chengguan branch")
        )
        ticket = c.post("/api/v1/tickets", json=new_ticket()).json()
        stepped = c.post(
            f"/api/v1/tickets/{ticket['id']}/actions",
            json={"action": "answer", "branch": "Chengguan branch"},
        )
    for refused in (registered, stepped):
        assert refused.status_code == 422 and "branch" in refused.json()["detail"]
    assert tickets_stored(console) == 1


def test_notes_are_bounded_by_the_hubs_limit(console: Console) -> None:
    services.accept_notice(console.engine, _notice(4))
    with console.api("leader") as c:
        long = c.post(
            "/api/v1/inbox/4/receipts",
            json={"action": "objection", "note": "x" * (MAX_NOTE_CHARS + 1)},
        )
        fits = c.post(
            "/api/v1/inbox/4/receipts", json={"action": "objection", "note": "x" * MAX_NOTE_CHARS}
        )
    assert long.status_code == 422 and "note" in long.json()["detail"]
    assert fits.status_code == 201
