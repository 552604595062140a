"""The Federation gRPC service: a thin edge over ``province_hub.services``.

Each method reads the caller's identity from its client certificate, runs one service
function on the database thread pool, and maps link exceptions to statuses with structured
details (``sync.rpc_errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from sqlalchemy import Engine

from province_hub import services
from province_hub.broker import NoticeBroker
from province_hub.settings import HubSettings
from sync import errors
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import NodeIdentity, PkiError, Revocations, identity_from_pem
from sync.rpc_errors import to_status
from sync.validation import INT64_MAX
from sync.version import SCHEMA_VERSION, is_compatible, schema_major
from sync.wire import WireError, push_bodies, push_envelopes

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=Message)
R = TypeVar("R")
SERVICE = pb.DESCRIPTOR.services_by_name["Federation"].full_name


#: How long a notice stream must stay open after the notices numbered below the city's
#: cursor were sent before they count as streamed (twice the time keepalive takes to find a
#: silent peer: 30 s of quiet, then 20 s for the ping's answer).
MISSED_CONFIRM_SECONDS = 100.0


class _Denied(Exception):
    """A call refused before any work, with a plain status (no structured details needed)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _malformed_push(data: bytes, exc: WireError | DecodeError) -> errors.MalformedEnvelope:
    """The refusal of Push bytes that do not parse, naming the envelope at fault."""
    if isinstance(exc, WireError):
        return errors.MalformedEnvelope(
            f"the request is not a valid fedsync.v1.PushRequest: {exc.where} is not "
            f"well-formed protobuf wire format ({exc.reason})",
            field=exc.where,
        )
    # Well-framed but not a message (bad UTF-8 in a string, a bad nested message...): find
    # the first envelope the parser refuses.
    for index, envelope in enumerate(push_envelopes(data)):
        try:
            pb.Envelope.FromString(envelope)
        except DecodeError:
            where = f"envelopes[{index}]"
            return errors.MalformedEnvelope(
                f"the request is not a valid fedsync.v1.PushRequest: {where} is not a valid "
                f"fedsync.v1.Envelope message ({exc})",
                field=where,
            )
    return errors.MalformedEnvelope("the request is not a valid fedsync.v1.PushRequest message")


def _peer_serial(context: grpc.aio.ServicerContext) -> int | None:
    """The serial of the caller's verified client certificate (None: none presented)."""
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    try:
        return identity_from_pem(pems[0]).serial
    except PkiError:
        return None


class RevocationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses a revoked client certificate on every service of the port (health, reflection).

    The TLS layer only checks that the CA signed the certificate; without this a revoked city
    could still probe the hub's health and read its whole API through reflection. Federation's
    own methods are left to ``FederationService``, which refuses the same certificates with a
    structured ``CertificateRevoked`` the city reacts to and records the refusal on its link.

    An interceptor sees no peer, so it wraps the method's behaviour, which does.
    """

    def __init__(self, revocations: Revocations) -> None:
        self._revocations = revocations

    async def _refuse_revoked(self, context: grpc.aio.ServicerContext) -> None:
        serial = _peer_serial(context)
        if serial is not None and self._revocations.is_revoked(serial):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"certificate serial {serial} has been revoked by the province CA",
            )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(f"/{SERVICE}/"):
            return handler
        return self._guarded(handler)

    def _guarded(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        check = self._refuse_revoked
        streaming_out = handler.response_streaming
        kinds = {
            (False, False): (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            (False, True): (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (True, False): (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            (True, True): (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        }
        behavior, build = kinds[(handler.request_streaming, streaming_out)]
        wrapped: Callable[[Any, grpc.aio.ServicerContext], Any]
        if streaming_out and inspect.isasyncgenfunction(behavior):

            async def generator(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await check(context)
                async for item in behavior(request, context):
                    yield item

            wrapped = generator
        else:
            # Coroutine behaviours, streaming ones included (health's Watch writes with
            # ``context.write``): a generator wrapper would change how gRPC drives them.
            async def coroutine(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await check(context)
                return await behavior(request, context)

            wrapped = coroutine
        return build(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class FederationService:
    """Implements fedsync.v1.Federation.

    Requests arrive as raw bytes and are parsed here (``handler``), so that bytes which are
    not a valid message get INVALID_ARGUMENT naming the message, rather than gRPC's generic
    "exception deserializing request"; Push also reads the bodies' bytes as they travelled.
    Every structured refusal of a city carries what the hub holds for it (``_refuse``).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        settings: HubSettings,
        roster_codes: tuple[str, ...],
        broker: NoticeBroker,
        executor: ThreadPoolExecutor,
        revocations: Revocations,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._roster = frozenset(roster_codes)
        self._broker = broker
        self._executor = executor
        self._revocations = revocations
        self._identities: dict[bytes, NodeIdentity] = {}
        self._city_locks: dict[str, asyncio.Lock] = {}
        self._in_flight: dict[str, int] = {}
        #: Notices streamed and not yet marked so, by city (see ``_mark_streamed``).
        self._streamed: dict[str, list[int]] = {}
        self._streamed_since: datetime | None = None
        self._marking: asyncio.Task[None] | None = None
        #: Streams waiting for their notices to be read (see ``_notices_after``).
        self._reads: dict[tuple[str, int], list[asyncio.Future[list[bytes]]]] = {}
        self._reading: asyncio.Task[None] | None = None

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler that routes the service's methods to this object."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Hello": grpc.unary_unary_rpc_method_handler(
                    self._parsing(pb.HelloRequest, self.Hello),
                    response_serializer=pb.HelloResponse.SerializeToString,
                ),
                "Push": grpc.unary_unary_rpc_method_handler(
                    self.Push,
                    response_serializer=pb.PushResponse.SerializeToString,
                ),
                "ListHeld": grpc.unary_unary_rpc_method_handler(
                    self._parsing(pb.ListHeldRequest, self.ListHeld),
                    response_serializer=pb.ListHeldResponse.SerializeToString,
                ),
                "Subscribe": grpc.unary_stream_rpc_method_handler(
                    self._parsing_stream(pb.SubscribeRequest, self.Subscribe),
                    response_serializer=pb.Notice.SerializeToString,
                ),
            },
        )

    async def _parse(self, cls: type[M], data: bytes, context: grpc.aio.ServicerContext) -> M:
        try:
            return cls.FromString(data)
        except DecodeError:
            # Refused as a Push's malformed bytes are: MALFORMED_ENVELOPE with what the hub
            # holds for the calling city (who it is comes from its certificate, not the
            # bytes), so a client resynchronises from this answer too.
            city = await self._city(context)
            await self._refuse(
                context,
                city,
                errors.MalformedEnvelope(
                    f"the request is not a valid fedsync.v1.{cls.__name__} message",
                    field=cls.__name__,
                ),
            )
            raise  # unreachable: the refusal aborts the call

    def _parsing(
        self, cls: type[M], method: Callable[[M, Any], Awaitable[R]]
    ) -> Callable[[bytes, Any], Awaitable[R]]:
        async def call(data: bytes, context: grpc.aio.ServicerContext) -> R:
            return await method(await self._parse(cls, data, context), context)

        return call

    def _parsing_stream(
        self, cls: type[M], method: Callable[[M, Any], AsyncIterator[R]]
    ) -> Callable[[bytes, Any], AsyncIterator[R]]:
        async def call(data: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[R]:
            async for item in method(await self._parse(cls, data, context), context):
                yield item

        return call

    async def _refuse(
        self, context: grpc.aio.ServicerContext, city: str, exc: errors.LinkError
    ) -> None:
        """Abort with ``exc``, telling the city what the hub holds for it."""
        await self._run(services.with_link_mark, city_code=city, exc=exc)
        await self._abort(context, exc)

    async def _run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._engine, **kwargs))

    async def _abort(self, context: grpc.aio.ServicerContext, exc: errors.LinkError) -> None:
        await context.abort_with_status(to_status(exc))

    def _identify(self, pem_list: list[bytes]) -> str:
        """The calling city's code from its verified client certificate, or ``_Denied``."""
        if not pem_list:
            raise _Denied(
                grpc.StatusCode.UNAUTHENTICATED, "a client certificate is required (mutual TLS)"
            )
        pem = pem_list[0]
        identity = self._identities.get(pem)
        if identity is None:
            try:
                identity = identity_from_pem(pem)
            except PkiError as exc:
                raise _Denied(grpc.StatusCode.UNAUTHENTICATED, str(exc)) from None
            if len(self._identities) > 10_000:
                self._identities.clear()
            self._identities[pem] = identity
        if self._revocations.is_revoked(identity.serial):
            raise errors.CertificateRevoked(
                f"certificate serial {identity.serial} ({identity.kind} {identity.code or ''}) "
                "has been revoked by the province CA; ask for a new certificate "
                "(fedsync pki issue)",
                field=identity.code or "",
            )
        if identity.kind != "city" or identity.code is None:
            raise _Denied(
                grpc.StatusCode.PERMISSION_DENIED, "only city certificates may call Federation"
            )
        if identity.code not in self._roster:
            raise _Denied(
                grpc.StatusCode.PERMISSION_DENIED,
                f"city {identity.code} is not on this hub's roster",
            )
        return identity.code

    async def _city(self, context: grpc.aio.ServicerContext) -> str:
        """The calling city's code; aborts the call when the certificate does not do."""
        try:
            return self._identify(context.auth_context().get("x509_pem_cert") or [])
        except errors.CertificateRevoked as exc:
            # Recorded on the city's link only for a roster city: a revoked certificate of
            # any other code would otherwise become one more "city" on the status views.
            if exc.field and exc.field in self._roster:
                await self._run(services.record_refusal, city_code=exc.field, exc=exc)
                await self._run(services.with_link_mark, city_code=exc.field, exc=exc)
            exc.field = ""
            await self._abort(context, exc)
        except _Denied as denied:
            await context.abort(denied.code, denied.message)
        raise AssertionError("unreachable: abort raises")

    def city_lock(self, city: str) -> asyncio.Lock:
        """The lock that lets one Push of ``city`` at a time ingest (in this process)."""
        return self._city_locks.setdefault(city, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def _slot(self, city: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """Hold one of the city's ``max_calls_per_city`` call slots, or refuse the call.

        Every call holds its request in memory (up to the message cap) while it waits for the
        city's ingest lock; a city that opens calls faster than the hub ingests them would
        otherwise grow the hub without bound. Refusing at once, rather than queueing, is what
        frees that memory: the city backs off and retries.
        """
        held = self._in_flight.get(city, 0)
        if held >= self._settings.max_calls_per_city:
            log.warning("refused a call of %s: %d calls already in flight", city, held)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"city {city} already has {held} calls in flight at the hub (at most "
                f"{self._settings.max_calls_per_city}); retry after the earlier ones finish",
            )
        self._in_flight[city] = held + 1
        try:
            yield
        finally:
            left = self._in_flight[city] - 1
            if left:
                self._in_flight[city] = left
            else:
                del self._in_flight[city]

    async def Hello(
        self, request: pb.HelloRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelloResponse:
        city = await self._city(context)
        async with self._slot(city, context):
            return await self._hello(city, request, context)

    async def _hello(
        self, city: str, request: pb.HelloRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelloResponse:
        response = pb.HelloResponse(
            schema_version=SCHEMA_VERSION,
            compatible=is_compatible(request.schema_version),
            max_batch_envelopes=self._settings.max_batch,
            max_message_bytes=self._settings.max_message_mb * 1024 * 1024,
        )
        response.server_time.FromDatetime(datetime.now(UTC))
        if not response.compatible:
            spoken = errors.shown(request.schema_version)
            response.message = (
                f"city speaks schema {spoken}; this hub speaks {SCHEMA_VERSION}: upgrade the "
                "older side"
                if schema_major(request.schema_version) is not None
                else f"schema_version {spoken} is not of the form MAJOR.MINOR; this hub speaks "
                f"{SCHEMA_VERSION}"
            )
        try:
            result = await self._run(
                services.hello, city_code=city, request=request, compatible=response.compatible
            )
        except errors.LinkError as exc:
            await self._abort(context, exc)
        response.acked_through_seq = result.acked_through_seq
        response.epoch = result.epoch
        if result.message and not response.message:  # an incompatible schema says it first
            response.message = result.message
        return response

    async def Push(self, data: bytes, context: grpc.aio.ServicerContext) -> pb.PushResponse:
        """Push, from the request's raw bytes: the digests cover the bodies as they travelled.

        Parsing alone would lose those bytes, so ``sync.wire`` finds them first; it also
        names the envelope whose bytes are malformed, which protobuf's parser cannot tell.
        """
        city = await self._city(context)
        async with self._slot(city, context):
            return await self._push(city, data, context)

    async def _push(
        self, city: str, data: bytes, context: grpc.aio.ServicerContext
    ) -> pb.PushResponse:
        try:
            bodies = push_bodies(data)
            request = pb.PushRequest.FromString(data)
        except (WireError, DecodeError) as exc:
            refusal = _malformed_push(data, exc)
            log.warning("refused push from %s: %s", city, refusal.message)
            await self._refuse(context, city, refusal)
        async with self.city_lock(city):
            try:
                result = await self._run(
                    services.ingest_batch,
                    city_code=city,
                    envelopes=request.envelopes,
                    tz_name=self._settings.timezone,
                    max_batch=self._settings.max_batch,
                    bodies=bodies,
                    acked_before=request.acked_before,
                )
            except errors.LinkError as exc:
                log.warning("refused push from %s: %s", city, exc.message)
                await self._abort(context, exc)
        if result.notified_cities:
            self._broker.notify(result.notified_cities)
        return pb.PushResponse(
            acked_through_seq=result.acked_through_seq,
            quarantined=result.quarantined,
            duplicates=result.duplicates,
        )

    async def ListHeld(
        self, request: pb.ListHeldRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHeldResponse:
        city = await self._city(context)
        async with self._slot(city, context):
            return await self._list_held(city, request, context)

    async def _list_held(
        self, city: str, request: pb.ListHeldRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListHeldResponse:
        try:
            if request.city_code != city:
                raise errors.IdentityMismatch(
                    f"ListHeld names city {errors.shown(request.city_code)} but the client "
                    f"certificate belongs to city {city}",
                    field="city_code",
                )
            page = await self._run(
                services.list_held,
                city_code=city,
                from_seq=request.from_seq,
                through_seq=request.through_seq,
            )
        except errors.LinkError as exc:
            await self._refuse(context, city, exc)
        return pb.ListHeldResponse(
            acked_through_seq=page.acked_through_seq,
            epoch=page.epoch,
            held=[
                pb.HeldEnvelope(seq=seq, content_digest=digest, epoch=epoch)
                for seq, digest, epoch in page.held
            ],
            next_seq=page.next_seq,
        )

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.Notice]:
        city = await self._city(context)
        if request.city_code != city:
            # An empty code is a mismatch too, as for Hello: the request must name the
            # certificate's city, so a client that forgot it learns so at once.
            await self._refuse(
                context,
                city,
                errors.IdentityMismatch(
                    f"Subscribe names city {errors.shown(request.city_code)} but the client "
                    f"certificate belongs to city {city}; city_code must be the certificate's code",
                    field="city_code",
                ),
            )
        if request.after_notice_seq > INT64_MAX:
            await self._refuse(
                context,
                city,
                errors.MalformedEnvelope(
                    f"after_notice_seq {request.after_notice_seq} is above {INT64_MAX}; notice "
                    "seqs are 64-bit signed values (hold them as 64-bit integers)",
                    field="after_notice_seq",
                ),
            )
        cursor = request.after_notice_seq
        missed = await self._run(services.open_stream, city_code=city, cursor=cursor)
        wakeup = self._broker.register(city)
        loop = asyncio.get_running_loop()
        unconfirmed: list[int] = []
        confirm_at = 0.0
        try:
            if missed:
                # Numbered below the cursor by a hub restored from an older store: sent
                # first, without moving the cursor (the city files each by its seq, once).
                # No cursor will ever confirm them: they count as streamed only once this
                # stream has stayed open a while after them. A city that dies before filing
                # them ends its stream first (keepalive finds a silent one within a minute)
                # and gets them again when it comes back.
                for payload in missed:
                    notice = pb.Notice.FromString(payload)
                    yield notice
                    unconfirmed.append(notice.seq)
                confirm_at = loop.time() + MISSED_CONFIRM_SECONDS
            while not self._broker.closed:
                if unconfirmed and loop.time() >= confirm_at:
                    self._mark_streamed(city, unconfirmed)
                    unconfirmed = []
                # A certificate revoked while its stream is open is cut off too.
                await self._city(context)
                # Clear before looking, so a notice committed after the query wakes us.
                wakeup.clear()
                payloads = await self._notices_after(city, cursor)
                if payloads:
                    sent: list[int] = []
                    for payload in payloads:
                        notice = pb.Notice.FromString(payload)
                        yield notice
                        sent.append(notice.seq)
                        cursor = notice.seq
                    self._mark_streamed(city, sent)
                    continue
                wait = self._settings.notice_poll_seconds
                if unconfirmed:
                    wait = min(wait, max(0.0, confirm_at - loop.time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=wait)
        finally:
            self._broker.unregister(city, wakeup)

    async def _notices_after(self, city: str, cursor: int) -> list[bytes]:
        """The city's notices after ``cursor``, read together with the other streams' reads.

        A notice to every city wakes every stream in the same instant; each reading on its
        own would cost a hop to the database threads and a pooled connection (a round trip
        of pre-ping on PostgreSQL) per stream, queued one after another on SQLite's single
        database thread. The reads wait here instead and one task reads for all of them on
        one connection.
        """
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._reads.setdefault((city, cursor), []).append(future)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_notices(), name="notice-reads")
        return await future

    async def _read_notices(self) -> None:
        while self._reads:
            batch, self._reads = self._reads, {}
            keys = list(batch)
            try:
                results = await self._run(services.notices_after_many, cursors=keys)
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, payloads in zip(keys, results, strict=True):
                for future in batch[key]:
                    if not future.done():  # its stream may have ended meanwhile
                        future.set_result(payloads)

    def _mark_streamed(self, city: str, seqs: list[int]) -> None:
        """Record that ``seqs`` were streamed to ``city``, in one write with the others.

        A notice to every city wakes every stream at once; one transaction per stream would
        queue 14 commits (14 fsyncs on SQLite, whose single database thread also serves the
        next notice's reads) behind each notice. The marks wait here instead, and one task
        writes everything pending in one transaction (``streamed_at``: when the first of them
        was streamed). The mark is for the supervisors' view only: delivery is proven by the
        city's cursor, so a mark lost to a failed write or a crash costs no notice.
        """
        if self._streamed_since is None:
            self._streamed_since = datetime.now(UTC)
        self._streamed.setdefault(city, []).extend(seqs)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._write_streamed(), name="mark-streamed")

    async def _write_streamed(self) -> None:
        while self._streamed:
            batch, self._streamed = self._streamed, {}
            since, self._streamed_since = self._streamed_since, None
            try:
                await self._run(services.mark_streamed_many, seqs_by_city=batch, now=since)
            except Exception:
                log.exception("could not mark %d cities' notices streamed", len(batch))

    async def flush_streamed(self) -> None:
        """Write the pending streamed marks (the hub is stopping)."""
        if self._marking is not None:
            await self._marking
