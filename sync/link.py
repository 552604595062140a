"""The city's side of the link: Hello, outbox delivery and the notice subscription.

Delivery pushes the outbox in seq order, in batches, and marks rows delivered only when the
hub's ack (sent after its commit) comes back. Transport failures back off exponentially with
full jitter; refusals the city cannot fix by retrying (sequence conflict, revoked
certificate, incompatible schema) park the link in a named state and tell the operator
through ``link_state`` instead of hammering the hub.

The subscription persists each notice (and the cursor, in one transaction, through the
``on_notice`` callback) before reading the next, and reconnects forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import grpc

from sync import errors
from sync.envelopes import build_envelope
from sync.outbox import LinkSnapshot, Outbox, OutboxError, RebasePlan, as_utc
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import (
    HubRevoked,
    NodeIdentity,
    PkiError,
    Revocations,
    TlsFiles,
    identity_from_pem,
)
from sync.rpc_errors import from_rpc_error
from sync.version import SCHEMA_VERSION, SOFTWARE_VERSION
from sync.vocabulary import LinkStatus

log = logging.getLogger(__name__)
T = TypeVar("T")
PUSH_METHOD = "/fedsync.v1.Federation/Push"
_ENVELOPES_TAG = b"\x0a"  # PushRequest.envelopes: field 1, length-delimited
#: The hub's default message cap (``HubSettings.max_message_mb``); a push is cut below it.
_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class LinkSettings:
    hub_address: str
    #: TLS name to verify on the hub certificate when it differs from the address's host.
    server_name: str = ""
    batch_size: int = 5000
    #: Cap on a Push's size, under the hub's message limit (32 MiB by default).
    max_batch_bytes: int = 16 * 1024 * 1024
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    heartbeat_seconds: float = 10.0
    idle_poll_seconds: float = 0.5
    retention_days: int = 30
    call_timeout: float = 60.0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_push_request(
    envelopes: list[bytes], acked_before: Mapping[int, datetime] | None = None
) -> bytes:
    """A serialized PushRequest from already-serialized envelopes (no re-encoding), with
    ``acked_before`` (seq -> when the hub first acknowledged it) for rows a hub lost."""
    data = b"".join(_ENVELOPES_TAG + _varint(len(e)) + e for e in envelopes)
    if acked_before:
        # Serialized messages concatenate into their merge: the map goes after the envelopes.
        extra = pb.PushRequest()
        for seq, moment in acked_before.items():
            extra.acked_before[seq].FromDatetime(moment)
        data += extra.SerializeToString()
    return data


_Rows = TypeVar("_Rows", bound=Sequence[tuple[Any, ...]])


def _within_bytes(rows: _Rows, budget: int) -> _Rows:
    """The longest prefix of ``rows`` (seq, envelope, ...) whose envelopes fit in ``budget``
    bytes (at least one)."""
    total = 0
    for index, row in enumerate(rows):
        total += len(row[1]) + 8
        if total > budget and index > 0:
            return rows[:index]  # type: ignore[return-value]
    return rows


def _one_epoch(rows: _Rows) -> _Rows:
    """The leading rows that share the first row's epoch.

    The hub applies one epoch per batch; after a re-base the outbox holds the old epoch's
    rows below the new epoch's, and a hub restored from a backup older than the re-base asks
    for both. Epochs are contiguous runs, so equal ends mean one epoch (the common case,
    two parses per batch).
    """
    if len(rows) < 2:
        return rows
    first = pb.Envelope.FromString(rows[0][1]).epoch
    if pb.Envelope.FromString(rows[-1][1]).epoch == first:
        return rows
    for index, row in enumerate(rows):
        if pb.Envelope.FromString(row[1]).epoch != first:
            return rows[:index]  # type: ignore[return-value]
    return rows


def backoff_delay(attempt: int, *, initial: float, maximum: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(max, initial * 2**attempt)]."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return random.uniform(0, ceiling)


def make_channel(
    address: str, tls: TlsFiles, *, server_name: str = "", backoff_max: float = 30.0
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert, private_key=tls.private_key, certificate_chain=tls.cert_chain
    )
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", int(backoff_max * 1000)),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(address, credentials, options=options)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _peer_certificate(address: str, tls: TlsFiles, *, server_name: str, seconds: float) -> bytes:
    """The DER certificate the server at ``address`` presents after a verified handshake."""
    host, port = _split_address(address)
    context = ssl.create_default_context(cadata=tls.ca_cert.decode("ascii"))
    context.set_alpn_protocols(["h2"])
    if tls.cert_path is not None and tls.key_path is not None:
        # The hub requires a client certificate; without one it ends the handshake.
        context.load_cert_chain(tls.cert_path, tls.key_path)
    # Blocking socket (in a thread): closing it does not wait for the server's close_notify,
    # which a gRPC server never sends to a connection that spoke no HTTP/2.
    deadline = time.monotonic() + seconds
    with socket.create_connection((host, port), timeout=seconds) as raw:
        conn = tls_handshake(raw, context, server_hostname=server_name or host, deadline=deadline)
        return conn.getpeercert(binary_form=True) or b""


def tls_handshake(
    raw: socket.socket,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    deadline: float | None = None,
) -> ssl.SSLObject:
    """TLS over the connected socket ``raw``, once the handshake is done; ``raw`` stays open.

    Through memory buffers rather than ``SSLContext.wrap_socket``: that one takes the
    socket's descriptor over, and when the peer resets the connection just before the
    handshake it raises without closing it, leaving the descriptor to the garbage collector.
    Here ``raw`` stays the caller's to close. ``deadline`` (``time.monotonic()``) bounds the
    whole handshake, not each read: a peer sending a byte at a time cannot hold it longer.
    Errors are a socket's: ``OSError``, with ``ssl.SSLError`` (``SSLEOFError`` for a peer
    that hangs up during the handshake; a reset is ``ConnectionResetError``) and
    ``TimeoutError``. A refusal of ours (an alert: its certificate does not verify) is sent
    to the peer before the error is raised.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = context.wrap_bio(
        incoming, outgoing, server_side=server_side, server_hostname=server_hostname
    )
    while True:
        try:
            conn.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the TLS handshake did not finish in time") from None
                raw.settimeout(left)
            data = raw.recv(65536)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()
        except ssl.SSLError:
            with contextlib.suppress(OSError):
                raw.sendall(outgoing.read())  # our alert, so the peer knows why
            raise
    raw.sendall(outgoing.read())  # our last flight (TLS 1.3: the client's Finished)
    return conn


async def check_hub_certificate(
    address: str,
    tls: TlsFiles,
    revocations: Revocations,
    *,
    server_name: str = "",
    handshake_seconds: float = 10.0,
) -> NodeIdentity:
    """Handshake with the hub on our own and refuse it when its certificate is revoked.

    gRPC's Python API neither checks a CRL nor shows the client the server's certificate,
    so before each session the city opens one TLS connection of its own (Python's ``ssl``,
    the same CA, name and client key as the channel) and looks the presented certificate
    up in the CRL from its PKI directory. It is a check of the hub at that address, not of
    each later gRPC connection: a stolen, revoked hub key is refused unless an attacker can
    also steer this probe and the channel to different servers.

    Raises ``HubRevoked`` for a revoked or non-hub certificate; ``OSError`` (``ssl.SSLError``
    included) when the hub cannot be reached, which the caller treats as a transport failure.
    """
    der = await asyncio.to_thread(
        _peer_certificate, address, tls, server_name=server_name, seconds=handshake_seconds
    )
    if not der:
        raise HubRevoked(f"the hub at {address} presented no certificate")
    try:
        identity = identity_from_pem(ssl.DER_cert_to_PEM_cert(der).encode("ascii"))
    except PkiError as exc:
        raise HubRevoked(f"the server at {address} is not the fedsync hub: {exc}") from None
    if identity.kind != "hub":
        raise HubRevoked(f"the server at {address} presented a {identity.kind} certificate")
    if await asyncio.to_thread(revocations.is_revoked, identity.serial):
        raise HubRevoked(
            f"the hub at {address} presented certificate serial {identity.serial}, which the "
            "province CA has revoked; refusing to send to it (install a new hub certificate, "
            "or check the address)"
        )
    return identity


def hello_request(snapshot: LinkSnapshot) -> pb.HelloRequest:
    """What a city says at Hello: who it is and how far its store has got."""
    return pb.HelloRequest(
        city_code=snapshot.city_code,
        epoch=snapshot.epoch,
        software_version=SOFTWARE_VERSION,
        schema_version=SCHEMA_VERSION,
        delivered_through_seq=snapshot.delivered_seq,
        last_assigned_seq=snapshot.last_seq,
    )


async def fetch_held(
    stub: pb_grpc.FederationStub,
    *,
    city_code: str,
    from_seq: int,
    through_seq: int,
    call_timeout: float = 30.0,
) -> dict[int, bytes]:
    """Seq -> content digest of what the hub holds for this city in the range (all pages)."""
    held: dict[int, bytes] = {}
    next_seq = max(1, from_seq)
    while next_seq and next_seq <= through_seq:
        page: pb.ListHeldResponse = await stub.ListHeld(
            pb.ListHeldRequest(city_code=city_code, from_seq=next_seq, through_seq=through_seq),
            timeout=call_timeout,
        )
        held.update((item.seq, item.content_digest) for item in page.held)
        next_seq = page.next_seq
    return held


@dataclass(frozen=True)
class RebaseOutcome:
    hub_acked_seq: int
    hub_epoch: str
    plan: RebasePlan


async def rebase_against_hub(
    outbox: Outbox,
    channel: grpc.aio.Channel,
    *,
    apply: bool,
    on_renumber: Callable[[Any, Mapping[int, int]], None] | None = None,
    call_timeout: float = 30.0,
) -> RebaseOutcome:
    """Ask the hub what it holds and re-base the outbox after it (``apply=False``: plan only).

    Run with the node stopped: the hub's answer must still be true when the rows move.
    """
    snapshot = outbox.snapshot()
    stub = pb_grpc.FederationStub(channel)
    hello: pb.HelloResponse = await stub.Hello(hello_request(snapshot), timeout=call_timeout)
    kept = outbox.kept_range()
    held: dict[int, bytes] = {}
    if kept is not None and hello.acked_through_seq >= kept[0]:
        held = await fetch_held(
            stub,
            city_code=snapshot.city_code,
            from_seq=kept[0],
            through_seq=hello.acked_through_seq,
            call_timeout=call_timeout,
        )
    plan = outbox.rebase(
        hub_acked_seq=hello.acked_through_seq, held=held, apply=apply, on_renumber=on_renumber
    )
    return RebaseOutcome(hub_acked_seq=hello.acked_through_seq, hub_epoch=hello.epoch, plan=plan)


class LinkStopped(Exception):
    """Raised inside the delivery loop when the link must wait for an operator."""

    def __init__(self, state: LinkStatus, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class LinkClient:
    """Runs delivery and subscription for one city until ``stop`` is set."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        city_code: str,
        tls: TlsFiles,
        settings: LinkSettings,
        on_notice: Callable[[pb.Notice], None],
        revocations: Revocations | None = None,
    ) -> None:
        """``revocations``: the CRL the hub's certificate is checked against before every
        session (see ``check_hub_certificate``); None only in tests of other things."""
        self._outbox = outbox
        self._revocations = revocations
        self._city = city_code
        self._tls = tls
        self._settings = settings
        self._on_notice = on_notice
        self._wakeup = asyncio.Event()
        self._last_error = ""
        self._attempt = 0
        self._last_purge = float("-inf")  # purge once at the first session, then hourly
        self.pushed_batches = 0
        # Our own pool for database work, so that stopping waits for calls in flight and the
        # store can be closed cleanly afterwards (the loop's default pool would not wait).
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"link-{city_code}")

    async def _db(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def wake(self) -> None:
        """New outbox rows were committed in this process: push without waiting."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        channel = make_channel(
            self._settings.hub_address,
            self._tls,
            server_name=self._settings.server_name,
            backoff_max=self._settings.backoff_max,
        )
        try:
            tasks = [
                asyncio.create_task(self._deliver_forever(channel, stop), name="deliver"),
                asyncio.create_task(self._subscribe_forever(channel, stop), name="subscribe"),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await channel.close(grace=None)
            await asyncio.to_thread(self._executor.shutdown, wait=True)

    # --- delivery --------------------------------------------------------------------------

    async def _deliver_forever(self, channel: grpc.aio.Channel, stop: asyncio.Event) -> None:
        stub = pb_grpc.FederationStub(channel)
        push = channel.unary_unary(PUSH_METHOD, response_deserializer=pb.PushResponse.FromString)
        self._attempt = 0
        while not stop.is_set():
            delay: float | None = None
            try:
                await self._session(stub, push, stop)
                return
            except Exception as exc:
                try:
                    delay = await self._react(exc)
                except Exception as inner:  # even recording the state failed: just retry
                    log.exception("city %s could not record its link state", self._city)
                    self._last_error = f"{type(inner).__name__}: {inner}"
            if delay is None:
                delay = backoff_delay(
                    self._attempt,
                    initial=self._settings.backoff_initial,
                    maximum=self._settings.backoff_max,
                )
                self._attempt += 1
            await self._sleep(stop, delay)

    async def _react(self, exc: Exception) -> float | None:
        """Record what went wrong; return how long to wait (None: the usual backoff)."""
        parked = max(self._settings.backoff_max, 5.0)
        if isinstance(exc, LinkStopped):
            log.error("link of city %s stopped (%s): %s", self._city, exc.state, exc.message)
            await self._set_state(exc.state, error=exc.message)
            # Park: look again now and then whether an operator fixed it (re-base, new cert).
            return parked
        if isinstance(exc, OutboxError):
            # The operator must act (a re-base): say it in the log, as a conflict is.
            log.error("link of city %s stopped (error): %s", self._city, exc)
            await self._set_state(LinkStatus.ERROR, error=str(exc))
            return parked
        if isinstance(exc, OSError | TimeoutError):
            # The hub could not be reached for the certificate check: a transport failure.
            await self._set_state(LinkStatus.BACKING_OFF, error=f"hub unreachable: {exc}")
            return None
        if not isinstance(exc, grpc.aio.AioRpcError):
            # Our own store failed (a restart, a lock timeout...): back off and retry.
            log.exception("delivery of city %s failed", self._city, exc_info=exc)
            await self._set_state(LinkStatus.BACKING_OFF, error=f"{type(exc).__name__}: {exc}")
            return None
        refusal = from_rpc_error(exc)
        if isinstance(refusal, errors.SequenceGap):
            await self._db(self._outbox.rewind, refusal.acked_through_seq)
            self._attempt += 1
            return 0.0 if self._attempt < 3 else None
        states = {
            errors.SequenceConflict: LinkStatus.CONFLICT,
            errors.CertificateRevoked: LinkStatus.REVOKED,
            errors.SchemaUnsupported: LinkStatus.INCOMPATIBLE,
        }
        state = states.get(type(refusal)) if refusal else None
        if refusal is not None and state is not None:
            extra = {"conflict_seq": refusal.seq} if state is LinkStatus.CONFLICT else {}
            await self._set_state(state, error=refusal.message, **extra)
            return parked
        message = refusal.message if refusal else f"{exc.code().name}: {exc.details()}"
        await self._set_state(LinkStatus.BACKING_OFF, error=message)
        return None

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        if seconds <= 0:
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def _set_state(self, state: LinkStatus, *, error: str = "", **extra: Any) -> None:
        self._last_error = error or self._last_error
        await self._db(self._outbox.set_state, state, error=error, **extra)

    async def _check_hub(self) -> None:
        if self._revocations is None:
            return
        try:
            await check_hub_certificate(
                self._settings.hub_address,
                self._tls,
                self._revocations,
                server_name=self._settings.server_name,
                handshake_seconds=self._settings.call_timeout,
            )
        except HubRevoked as exc:
            raise LinkStopped(LinkStatus.HUB_REVOKED, str(exc)) from None

    async def _session(self, stub: pb_grpc.FederationStub, push: Any, stop: asyncio.Event) -> None:
        await self._check_hub()
        snapshot = await self._db(self._outbox.snapshot)
        hello: pb.HelloResponse = await stub.Hello(
            hello_request(snapshot), timeout=self._settings.call_timeout
        )
        if not hello.compatible:
            raise LinkStopped(LinkStatus.INCOMPATIBLE, hello.message)
        if snapshot.state == LinkStatus.CONFLICT:
            # Stays parked until an operator re-bases (which resets the state): pushing again
            # would only meet the same refusal.
            raise LinkStopped(
                LinkStatus.CONFLICT,
                snapshot.last_error or "sequence conflict: review, then re-base",
            )
        # Another epoch at the hub is a conflict only when it holds more than we delivered
        # (this store was re-created or restored). Equal marks: we re-based after its mark.
        # Less: the hub was restored from a backup (perhaps older than our re-base) and gets
        # what it lost re-sent below, one epoch per batch; its digest check is the judge.
        if (
            hello.epoch
            and hello.epoch != snapshot.epoch
            and (hello.acked_through_seq > snapshot.delivered_seq)
        ):
            raise LinkStopped(
                LinkStatus.CONFLICT,
                f"the hub holds seqs up to {hello.acked_through_seq} for this city under epoch "
                f"{hello.epoch}, but this store's epoch is {snapshot.epoch}: it was re-created "
                "or restored. Review, then run `fedsync city rebase`.",
            )
        if hello.epoch == snapshot.epoch and hello.acked_through_seq > snapshot.last_seq:
            raise LinkStopped(
                LinkStatus.CONFLICT,
                f"the hub holds seqs up to {hello.acked_through_seq} but this store has only "
                f"assigned up to {snapshot.last_seq}: it was restored from an older copy. "
                "Review, then run `fedsync city rebase`.",
            )
        # Only a hub under another epoch (restored to before our re-base) asks for rows of
        # two epochs; otherwise every row after its mark is ours, and no envelope is parsed.
        may_mix_epochs = hello.epoch != snapshot.epoch
        # Never trust a higher hub figure: we push from our own delivered mark and the hub
        # re-acks what it holds (or finds the conflict by digest).
        delivered = snapshot.delivered_seq
        if hello.acked_through_seq < delivered:
            # The hub was restored from a backup and lost what we had delivered: re-send.
            resent = await self._db(self._outbox.rewind, hello.acked_through_seq)
            log.warning("hub lost %d envelopes of city %s; re-sending", resent, self._city)
            delivered = hello.acked_through_seq
        batch_limit = min(
            self._settings.batch_size, hello.max_batch_envelopes or self._settings.batch_size
        )
        # Stay well under the hub's message limit (protobuf framing adds a little per envelope).
        byte_budget = min(
            self._settings.max_batch_bytes,
            int(hello.max_message_bytes * 0.9) or self._settings.max_batch_bytes,
        )
        await self._set_state(
            LinkStatus.CONNECTED,
            hub_acked_seq=hello.acked_through_seq,
            hub_epoch=hello.epoch,
            last_contact_at=datetime.now(UTC),
        )
        self._last_error = ""
        next_heartbeat = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wakeup.clear()
            rows = await self._db(
                self._outbox.pending, after_seq=delivered, limit=max(1, batch_limit - 1)
            )
            rows = _within_bytes(rows, byte_budget)
            if may_mix_epochs:
                rows = _one_epoch(rows)
            envelopes = [row.envelope for row in rows]
            acked_before = {r.seq: as_utc(r.acked_before) for r in rows if r.acked_before}
            now = loop.time()
            if now >= next_heartbeat and len(envelopes) < batch_limit:
                envelopes.insert(0, await self._db(self._heartbeat))
                next_heartbeat = now + self._settings.heartbeat_seconds
            if not envelopes:
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self._settings.idle_poll_seconds
                    )
                continue
            response: pb.PushResponse = await push(
                encode_push_request(envelopes, acked_before), timeout=self._settings.call_timeout
            )
            self.pushed_batches += 1
            self._attempt = 0
            if rows:
                # Never mark more than we sent, whatever the hub's mark says.
                delivered = min(response.acked_through_seq, rows[-1].seq)
                await self._db(self._outbox.mark_delivered, delivered)
            else:
                await self._db(self._outbox.mark_contact)
                if response.acked_through_seq < delivered:
                    # A heartbeat reached a hub that holds less than we delivered: it was
                    # restored from a backup behind our back (no reconnect, so no Hello).
                    # Re-send.
                    resent = await self._db(self._outbox.rewind, response.acked_through_seq)
                    log.warning("hub lost %d envelopes of city %s; re-sending", resent, self._city)
                    delivered = response.acked_through_seq
            if now - self._last_purge > 3600:
                self._last_purge = now
                await self._db(
                    self._outbox.purge, retention=timedelta(days=self._settings.retention_days)
                )

    def _heartbeat(self) -> bytes:
        snapshot = self._outbox.snapshot()
        body = pb.Heartbeat(
            backlog=snapshot.backlog,
            oldest_unsent_age_seconds=int(snapshot.oldest_unsent_age().total_seconds()),
            notice_cursor=snapshot.notice_cursor,
            software_version=SOFTWARE_VERSION,
            last_error=self._last_error,
        )
        return build_envelope(
            city_code=self._city, epoch=snapshot.epoch, seq=0, body=body
        ).SerializeToString()

    # --- notices -----------------------------------------------------------------------------

    async def _subscribe_forever(self, channel: grpc.aio.Channel, stop: asyncio.Event) -> None:
        stub = pb_grpc.FederationStub(channel)
        attempt = 0
        while not stop.is_set():
            try:
                await self._check_hub()
                snapshot = await self._db(self._outbox.snapshot)
                call = stub.Subscribe(
                    pb.SubscribeRequest(
                        city_code=self._city, after_notice_seq=snapshot.notice_cursor
                    )
                )
                async for notice in call:
                    await self._db(self._on_notice, notice)
                    attempt = 0
            except grpc.aio.AioRpcError as err:
                log.info("notice stream of city %s: %s", self._city, err.code().name)
            except LinkStopped as stopped:  # the delivery loop records and reports it
                log.info("notice stream of city %s: %s", self._city, stopped.message)
            except OSError as err:  # the hub's certificate could not be looked at
                log.info("notice stream of city %s: %s", self._city, err)
            except Exception:  # the store failed while persisting: reconnect from the cursor
                log.exception("notice stream of city %s failed", self._city)
            await self._sleep(
                stop,
                backoff_delay(
                    attempt,
                    initial=self._settings.backoff_initial,
                    maximum=self._settings.backoff_max,
                ),
            )
            attempt += 1
