"""The Federation gRPC service: a thin edge over ``province_hub.services``.

Each method reads the caller's identity from its client certificate, runs one service
function on the database thread pool, and maps link exceptions to statuses with structured
details (``sync.rpc_errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from sqlalchemy import Engine

from province_hub import services
from province_hub.broker import NoticeBroker
from province_hub.settings import HubSettings
from sync import errors
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pki import NodeIdentity, PkiError, identity_from_pem, load_revoked_serials
from sync.rpc_errors import to_status
from sync.validation import INT64_MAX
from sync.version import SCHEMA_VERSION, is_compatible
from sync.wire import WireError, push_bodies, push_envelopes

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=Message)
R = TypeVar("R")
SERVICE = pb.DESCRIPTOR.services_by_name["Federation"].full_name


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


class Revocations:
    """The CA's revocation list, re-read when the file changes (checked at most once a second).

    Fails closed: the hub does not start without a valid CRL (``fedsync pki init`` writes an
    empty one), and a replacement that is missing or does not verify is logged and ignored,
    keeping the last good list, rather than re-admitting revoked certificates.
    """

    def __init__(self, crl_path: Path) -> None:
        self._path = crl_path
        self._checked = 0.0
        try:
            self._stamp: tuple[int, int, int] | None = self._file_stamp()
            self._serials: frozenset[int] = load_revoked_serials(crl_path)
        except (OSError, PkiError) as exc:
            raise PkiError(
                f"cannot use the revocation list {crl_path}: {exc} (copy crl.pem from the "
                "PKI directory; `fedsync pki init` creates an empty one)"
            ) from None

    def _file_stamp(self) -> tuple[int, int, int]:
        st = self._path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def is_revoked(self, serial: int) -> bool:
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            try:
                stamp = self._file_stamp()
                if stamp != self._stamp:
                    self._serials = load_revoked_serials(self._path)
                    self._stamp = stamp
            except (OSError, PkiError) as exc:
                log.error("keeping the previous revocation list: %s", exc)
        return serial in self._serials


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

    @staticmethod
    async def _parse(cls: type[M], data: bytes, context: grpc.aio.ServicerContext) -> M:
        try:
            return cls.FromString(data)
        except DecodeError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid fedsync.v1.{cls.__name__} message",
            )
            raise  # unreachable: abort raises

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
            if exc.field:
                await self._run(services.record_refusal, city_code=exc.field, exc=exc)
                await self._run(services.with_link_mark, city_code=exc.field, exc=exc)
            exc.field = ""
            await self._abort(context, exc)
        except _Denied as denied:
            await context.abort(denied.code, denied.message)
        raise AssertionError("unreachable: abort raises")

    async def Hello(
        self, request: pb.HelloRequest, context: grpc.aio.ServicerContext
    ) -> pb.HelloResponse:
        city = await self._city(context)
        response = pb.HelloResponse(
            schema_version=SCHEMA_VERSION,
            compatible=is_compatible(request.schema_version),
            max_batch_envelopes=self._settings.max_batch,
            max_message_bytes=self._settings.max_message_mb * 1024 * 1024,
        )
        response.server_time.FromDatetime(datetime.now(UTC))
        if not response.compatible:
            response.message = (
                f"city speaks schema {request.schema_version!r}; this hub speaks "
                f"{SCHEMA_VERSION}: upgrade the older side"
            )
        try:
            result = await self._run(
                services.hello, city_code=city, request=request, compatible=response.compatible
            )
        except errors.LinkError as exc:
            await self._abort(context, exc)
        response.acked_through_seq = result.acked_through_seq
        response.epoch = result.epoch
        return response

    async def Push(self, data: bytes, context: grpc.aio.ServicerContext) -> pb.PushResponse:
        """Push, from the request's raw bytes: the digests cover the bodies as they travelled.

        Parsing alone would lose those bytes, so ``sync.wire`` finds them first; it also
        names the envelope whose bytes are malformed, which protobuf's parser cannot tell.
        """
        city = await self._city(context)
        try:
            bodies = push_bodies(data)
            request = pb.PushRequest.FromString(data)
        except (WireError, DecodeError) as exc:
            refusal = _malformed_push(data, exc)
            log.warning("refused push from %s: %s", city, refusal.message)
            await self._refuse(context, city, refusal)
        lock = self._city_locks.setdefault(city, asyncio.Lock())
        async with lock:
            try:
                result = await self._run(
                    services.ingest_batch,
                    city_code=city,
                    envelopes=request.envelopes,
                    tz_name=self._settings.timezone,
                    max_batch=self._settings.max_batch,
                    bodies=bodies,
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
        try:
            if request.city_code != city:
                raise errors.IdentityMismatch(
                    f"ListHeld names city {request.city_code!r} but the client certificate "
                    f"belongs to city {city}",
                    field="city_code",
                )
            page = await self._run(
                services.list_held,
                city_code=city,
                from_seq=request.from_seq,
                through_seq=request.through_seq,
            )
        except errors.LinkError as exc:
            await self._abort(context, exc)
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
                    f"Subscribe names city {request.city_code!r} but the client certificate "
                    f"belongs to city {city}; city_code must be the certificate's code",
                    field="city_code",
                ),
            )
        if request.after_notice_seq > INT64_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"after_notice_seq {request.after_notice_seq} is above {INT64_MAX}; notice "
                "seqs are 64-bit signed values (hold them as 64-bit integers)",
            )
        cursor = request.after_notice_seq
        await self._run(services.confirm_cursor, city_code=city, cursor=cursor)
        wakeup = self._broker.register(city)
        try:
            while not self._broker.closed:
                # A certificate revoked while its stream is open is cut off too.
                await self._city(context)
                # Clear before looking, so a notice committed after the query wakes us.
                wakeup.clear()
                payloads = await self._run(services.notices_after, city_code=city, after_seq=cursor)
                if payloads:
                    sent: list[int] = []
                    for payload in payloads:
                        notice = pb.Notice.FromString(payload)
                        yield notice
                        sent.append(notice.seq)
                        cursor = notice.seq
                    await self._run(services.mark_streamed, city_code=city, seqs=sent)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        wakeup.wait(), timeout=self._settings.notice_poll_seconds
                    )
        finally:
            self._broker.unregister(city, wakeup)
