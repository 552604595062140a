"""The console's edge, before any route, dependency or login check runs:

- a request body over ``max_body_bytes`` is refused with 413 as it arrives (the declared
  ``Content-Length`` first, then the bytes actually received), so a large unauthenticated
  POST costs at most the cap in memory;
- control characters (Unicode ``Cc`` except tab, newline and carriage return in bodies; any
  of them in the path, the query and the HTTP Basic account name) and lone surrogates are
  refused with 422 naming where they were: such text is never a person's input, and NUL
  makes PostgreSQL fail;
- a query string or form body that is not UTF-8 (a raw byte outside ASCII, a percent-escape
  that decodes to no UTF-8), a JSON body that is not UTF-8, nests deeper than
  :data:`MAX_JSON_DEPTH` or holds a number too long to read, is refused with 422 naming it;
- a ``?lang=`` naming no language the console speaks is refused with 422 naming ``lang``
  (the page would otherwise come back in another language, saying nothing);
- an exception nothing else handled becomes a 500 ``{"detail": ..., "error_id": ...}`` (an
  error page for pages), logged with its id, type and traceback lines but no message or
  request data (messages can quote customers' data); a SQLite store still locked after the
  console's short busy timeout is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync.limits import TEXT_CONTROLS, text_refusal
from sync.refusals import COMMON, Catalogue, Refusal
from sync.web.i18n import LANGS, pick_lang

log = logging.getLogger("fedsync.web")

#: Control characters a free text may hold (multi-line notes and complaints).
_TEXT_CONTROLS = TEXT_CONTROLS
#: Seconds a client is told to wait when the store is busy.
RETRY_AFTER_SECONDS = 2

ErrorAnswer = Callable[[Request, int, str], Awaitable[Response]]


class BadText(Refusal, ValueError):
    """Text with a control character or a lone surrogate; the message says where."""


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", str(key)
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}.{i}")


def _check(pairs: Iterator[tuple[str, str]], allow: frozenset[str]) -> None:
    for where, text in pairs:
        problem = text_refusal(text, allow=allow)
        if problem:
            raise BadText(problem[0], where=where, code=problem[1])


#: Deepest JSON a body may nest (the APIs' bodies nest two or three levels): deeper ones
#: are refused before anything walks them (Python's decoder gives up near 1,000 levels).
MAX_JSON_DEPTH = 32


def _url_pairs(encoded: bytes, where: str) -> list[tuple[str, str]]:
    """The ``key=value`` pairs of a query string or a form body, decoded strictly: a raw
    byte outside ASCII or a percent-escape that is not UTF-8 is refused naming its field
    (a lenient decoder would store U+FFFD or Latin-1 letters in the person's place)."""
    try:
        text = encoded.decode("ascii")
    except UnicodeDecodeError:
        raise BadText("edge.not_percent_encoded", where=where) from None
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        key = unquote_to_bytes(raw_key.replace("+", " ")).decode("utf-8", "replace")
        try:
            key, value = (
                unquote_to_bytes(x.replace("+", " ")).decode() for x in (raw_key, raw_value)
            )
        except UnicodeDecodeError:
            raise BadText("edge.bad_encoding", where=f"{where}.{key}") from None
        pairs.append((key, value))
    return pairs


def _json_depth(doc: Any) -> int:
    """How deep ``doc`` nests (a scalar: 0), walked without recursion."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((item, depth + 1) for item in value)
    return deepest


def _json_body(body: bytes) -> Any:
    """The JSON body, or ``None`` when the route's parser should answer (malformed JSON, with
    its position). Refused here: a body that is not UTF-8, nests too deep or holds a number
    too long to read (Python's decoder raises errors the routes would answer with a 500 or
    a bare 400)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadText("edge.bad_encoding", where="body") from None
    try:
        doc = json.loads(body)
    except RecursionError:
        raise BadText("edge.json_depth", limit=MAX_JSON_DEPTH) from None
    except json.JSONDecodeError:
        return None
    except ValueError:  # an integer beyond the interpreter's digit limit
        raise BadText("edge.json_number") from None
    if _json_depth(doc) > MAX_JSON_DEPTH:
        raise BadText("edge.json_depth", limit=MAX_JSON_DEPTH)
    return doc


def check_request_text(scope: Scope, body: bytes) -> None:
    """Raise :class:`BadText` when the path, query, Basic account name or body holds
    characters no person types, is not UTF-8, or (JSON) nests deeper than any API needs
    (see the module docstring)."""
    _check(iter([("path", scope.get("path", ""))]), frozenset())
    query = _url_pairs(scope.get("query_string", b""), "query")
    _check(((f"query.{k}", k + v) for k, v in query), frozenset())
    headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
    auth = headers.get("authorization", b"").decode("latin-1")
    scheme, _, encoded = auth.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            user = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        _check(iter([("authorization", user)]), frozenset())
    if not body:
        return
    ctype = headers.get("content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        doc = _json_body(body)
        if doc is not None:
            _check(_strings(doc, "body"), _TEXT_CONTROLS)
    elif ctype == "application/x-www-form-urlencoded":
        form = _url_pairs(body, "body")
        _check(((f"body.{k}", k + v) for k, v in form), _TEXT_CONTROLS)


def lang_problem(scope: Scope) -> Refusal | None:
    """Why the request's ``?lang=`` is refused (it names no language of the consoles), or
    None (none given, or a good one)."""
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "lang" and pick_lang(value) is None:
            return Refusal("edge.lang", value=repr(value[:20]), langs=", ".join(LANGS))
    return None


def _is_locked(exc: BaseException) -> bool:
    """A SQLite store still locked by another writer after the busy timeout."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


class EdgeGuard:
    """The console's edge (module docstring). Plain ASGI: it reads the body once, checks it
    and hands the same bytes on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        error_page: ErrorAnswer,
        fields: Catalogue = COMMON,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.error_page = error_page
        #: The tier's catalogue, whose ``fields`` name a form's fields on a Chinese page.
        self.fields = fields

    def _named(self, refusal: Refusal, lang: str) -> Refusal:
        """``refusal`` naming where it was as a person reads it: a form's field by its name
        in the page's language (``内容``, not ``body.text``)."""
        where = refusal.values.get("where")
        if lang != "zh" or not isinstance(where, str) or "." not in where:
            return refusal
        part, _, name = where.partition(".")
        shown = self.fields.field_name(name, lang)
        if part not in ("body", "query") or shown == name:
            return refusal
        return type(refusal)(
            refusal.code, field=refusal.field, **{**refusal.values, "where": shown}
        )

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        refusal: Refusal,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        request = Request(scope, receive)
        response: Response
        if scope.get("path", "").startswith("/api/"):
            response = JSONResponse(
                {"detail": str(refusal), **(extra or {})}, status_code=status, headers=headers
            )
        else:
            # The page's language (set by the console's outer middleware; Chinese by default).
            lang = scope.get("state", {}).get("lang", "zh")
            message = self._named(refusal, lang).say(lang)
            try:
                response = await self.error_page(request, status, message)
            except Exception:  # the page itself failed (e.g. the store is down): plain text
                response = HTMLResponse(
                    f"<p>{status}: {html.escape(message)}</p>", status_code=status
                )
            response.headers.update(headers or {})
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_large = Refusal("edge.too_large", limit=self.max_body_bytes)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._answer(scope, _empty, send, 413, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._answer(scope, _empty, send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            check_request_text(scope, body)
        except BadText as exc:
            await self._answer(scope, _empty, send, 422, exc)
            return
        refused = lang_problem(scope)
        if refused:
            await self._answer(scope, _empty, send, 422, refused)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception as exc:
            if _is_locked(exc):
                log.warning("the store is locked; answered 503 (%s)", scope.get("path", ""))
                status, text, extra = (503, Refusal("edge.busy"), None)
                headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            else:
                error_id = uuid.uuid4().hex[:12]
                # The type and where, never the message: database and validation messages
                # can quote what a customer said.
                log.error(
                    "unhandled error %s: %s\n%s",
                    error_id,
                    type(exc).__name__,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                status = 500
                text = Refusal("edge.internal", error_id=error_id)
                extra = {"error_id": error_id}
                headers = {}
            if started:  # too late for an answer: the client sees a cut response
                return
            await self._answer(
                scope, _empty, send, status, text, extra=extra, headers=headers or None
            )


async def _empty() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
