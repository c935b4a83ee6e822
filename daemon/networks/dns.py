"""The embedded DNS server of user-defined networks (Docker's 127.0.0.11, moby libnetwork/resolver.go).

One server object answers for every container: each container has its own UDP and TCP sockets, made
by the daemon inside the container's namespace, so the socket a query came in on says who asks.
Names of the asking container's networks are answered from the NameTable (TTL 600); everything else
is forwarded to the container's upstream servers and their answer relayed; SERVFAIL when none answers.
Nothing a client or an upstream sends may raise out of here: bad input is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from daemon.networks.dnsconf import Upstream, host_upstreams, resolv_conf_for_container
from daemon.networks.dnsnames import NameTable

__all__ = ["DnsServer", "NameTable", "Upstream", "host_upstreams", "resolv_conf_for_container"]

log = logging.getLogger(__name__)

TTL = 600
MAX_UPSTREAMS = 3  # Docker tries at most three external servers
UPSTREAM_TIMEOUT = 2.0  # per upstream server
MAX_IN_FLIGHT = 1024  # queries being answered per container; more are dropped (a flood stays bounded)
TCP_IDLE = 8.0  # a TCP client may wait this long between queries
TCP_READ = 2.0  # and this long for the rest of a query it began
UDP_MIN_SIZE = 512  # a UDP answer may be larger only if the query's EDNS says so
TCP_MAX_SIZE = 65535
STOP_WAIT = 2.0  # stop() waits this long for cancelled work to end


@dataclass
class _Container:
    key: str
    network_ids: Callable[[], list[str]]
    upstreams: list[Upstream]
    transport: asyncio.DatagramTransport
    server: asyncio.AbstractServer
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    stopped: bool = False  # a client accepted just before stop() may still call in: it is turned away


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from a client that went away: nothing to do.
        log.debug("dns: udp error ignored: %s", exc)


class _UpstreamProtocol(asyncio.DatagramProtocol):
    """One forwarded query's socket, connected to the upstream: the kernel passes only its datagrams,
    and reports 'port unreachable' (error_received), so a dead server fails at once, not by timeout."""

    def __init__(self, query: dns.message.Message, loop: asyncio.AbstractEventLoop) -> None:
        self.query = query
        self.answer: asyncio.Future[dns.message.Message] = loop.create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.answer.done():
            return
        try:
            response = dns.message.from_wire(data)
        except Exception:  # garbage: keep waiting for the real answer
            return
        if self.query.is_response(response):
            self.answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("socket closed"))


async def _exchange_udp(
    query: dns.message.Message, upstream: Upstream, timeout: float
) -> dns.message.Message:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _UpstreamProtocol(query, loop), remote_addr=(upstream.host, upstream.port)
    )
    try:
        transport.sendto(query.to_wire())
        async with asyncio.timeout(timeout):
            return await protocol.answer
    finally:
        transport.close()


async def _exchange_tcp(
    query: dns.message.Message, upstream: Upstream, timeout: float
) -> dns.message.Message:
    return await dns.asyncquery.tcp(query, upstream.host, timeout=timeout, port=upstream.port)


class DnsServer:
    def __init__(self, table: NameTable, *, upstream_timeout: float = UPSTREAM_TIMEOUT) -> None:
        self._table = table
        self._timeout = upstream_timeout
        self._containers: dict[str, _Container] = {}
        # Why things were dropped or failed, for tests and debugging (never tracebacks in the log).
        self.counters: Counter[str] = Counter()

    async def serve(
        self,
        key: str,
        network_ids: Callable[[], list[str]],
        upstreams: list[Upstream],
        udp: socket.socket,
        tcp: socket.socket,
    ) -> None:
        """Start answering on these already-bound sockets (UDP socket, and a TCP socket bound but not yet
        listening) for the container `key`; network_ids is called per query (connect/disconnect change it
        at once). Returns once serving (does not block). Serving a key again replaces the old sockets."""
        await self.stop(key)
        loop = asyncio.get_running_loop()
        holder: list[_Container] = []  # the callbacks need the record that needs the transports

        def on_datagram(data: bytes, addr: Any) -> None:
            self._spawn(holder[0], self._answer_udp(holder[0], data, addr))

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # The work runs in a task of ours for stop() to cancel: asyncio's streams log an error
            # when the task it made for this callback ends cancelled (Python 3.11). The writer is
            # known at once, so that stop() closes it even if that task never got to run.
            c = holder[0]
            c.writers.add(writer)
            try:
                work = self._spawn(c, self._serve_tcp_client(c, reader, writer))
                if work is not None:
                    await asyncio.wait([work])
            finally:
                c.writers.discard(writer)
                writer.close()

        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(on_datagram), sock=udp)
        try:
            server = await asyncio.start_server(on_client, sock=tcp)
        except BaseException:
            transport.close()
            raise
        holder.append(_Container(key, network_ids, list(upstreams[:MAX_UPSTREAMS]), transport, server))
        self._containers[key] = holder[0]

    async def stop(self, key: str) -> None:
        """Stop serving that container, close its sockets."""
        c = self._containers.pop(key, None)
        if c is None:
            return
        c.stopped = True
        c.transport.close()
        c.server.close()
        for writer in list(c.writers):
            writer.close()
        for task in list(c.tasks):
            task.cancel()
        if c.tasks:
            await asyncio.wait(list(c.tasks), timeout=STOP_WAIT)
        # Let the transport's close callbacks run, so the sockets are closed when we return.
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Stop all (daemon shutdown)."""
        for key in list(self._containers):
            await self.stop(key)

    def serving(self) -> list[str]:
        return list(self._containers)

    # -- transports ---------------------------------------------------------------------------------

    def _spawn(self, c: _Container, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if c.stopped:
            work.close()
            return None
        if len(c.tasks) >= MAX_IN_FLIGHT:
            work.close()
            self.counters["dropped: too many queries"] += 1
            return None
        task = asyncio.get_running_loop().create_task(work)
        c.tasks.add(task)
        task.add_done_callback(c.tasks.discard)
        return task

    async def _answer_udp(self, c: _Container, data: bytes, addr: Any) -> None:
        reply = await self._answer(c, data, tcp=False)
        if reply is not None and not c.transport.is_closing():
            c.transport.sendto(reply, addr)

    async def _serve_tcp_client(
        self, c: _Container, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Length-prefixed queries, one after another, until the client ends or idles."""
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                async with asyncio.timeout(TCP_READ):
                    data = await reader.readexactly(size)
                reply = await self._answer(c, data, tcp=True)
                if reply is None:
                    return  # not DNS: no point reading on
                writer.write(len(reply).to_bytes(2, "big") + reply)
                async with asyncio.timeout(TCP_READ):
                    await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            self.counters["tcp: client ended"] += 1
        except Exception as e:  # our own task: an escaping error would only be logged as never retrieved
            log.debug("dns: tcp client of %s: %r", c.key, e)
            self.counters["tcp: error"] += 1

    # -- answers ------------------------------------------------------------------------------------

    async def _answer(self, c: _Container, data: bytes, *, tcp: bool) -> bytes | None:
        """The wire answer to one query, or None to drop it. Never raises (but for cancellation)."""
        try:
            query = dns.message.from_wire(data)
        except Exception:  # any malformed packet: dnspython raises many kinds
            self.counters["dropped: malformed"] += 1
            return None
        if query.flags & dns.flags.QR:
            self.counters["dropped: not a query"] += 1
            return None
        try:
            response, relayed = await self._respond(c, query, tcp=tcp)
            return self._to_wire(query, response, tcp=tcp, relayed=relayed)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.debug("dns: query from %s failed: %r", c.key, e)
            self.counters["servfail: error"] += 1
            return _reply(query, dns.rcode.SERVFAIL).to_wire()

    async def _respond(
        self, c: _Container, query: dns.message.Message, *, tcp: bool
    ) -> tuple[dns.message.Message, bool]:
        """The response, and whether it is an upstream's (relayed as it is) rather than ours."""
        if query.opcode() != dns.opcode.QUERY:
            return _reply(query, dns.rcode.NOTIMP), False
        if len(query.question) != 1:
            return _reply(query, dns.rcode.FORMERR), False
        local = self._local(c, query)
        if local is not None:
            return local, False
        forwarded = await self._forward(c, query, tcp=tcp)
        if forwarded is None:
            self.counters["servfail: no upstream answered"] += 1
            return _reply(query, dns.rcode.SERVFAIL), False
        return forwarded, True

    def _local(self, c: _Container, query: dns.message.Message) -> dns.message.Message | None:
        """The answer from the name table, or None when the query is not ours to answer."""
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return None
        rdtype = question.rdtype
        name = question.name.to_text(omit_final_dot=True)
        try:
            networks = list(c.network_ids())
        except Exception as e:
            log.debug("dns: networks of %s unknown: %r", c.key, e)
            return None
        if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            addresses = self._table.lookup(networks, name, rdtype)
            if addresses is None:
                return None
            response = _reply(query, dns.rcode.NOERROR)
            if addresses:
                random.shuffle(addresses)  # Docker shuffles: a shared alias spreads its load
                response.answer.append(dns.rrset.from_text_list(question.name, TTL, "IN", rdtype, addresses))
            return response
        if rdtype == dns.rdatatype.MX:
            # A known name: NOERROR, no records: mail clients then use the address ("implicit MX").
            known = self._table.lookup(networks, name, dns.rdatatype.A) is not None
            return _reply(query, dns.rcode.NOERROR) if known else None
        if rdtype == dns.rdatatype.PTR:
            try:
                address = dns.reversename.to_address(question.name)
            except Exception:  # not under in-addr.arpa / ip6.arpa, or not an address
                return None
            target = self._table.reverse(networks, address)
            if target is None:
                return None
            response = _reply(query, dns.rcode.NOERROR)
            response.answer.append(
                dns.rrset.from_text_list(question.name, TTL, "IN", "PTR", [target.rstrip(".") + "."])
            )
            return response
        return None

    async def _forward(
        self, c: _Container, query: dns.message.Message, *, tcp: bool
    ) -> dns.message.Message | None:
        """The first usable answer of the upstreams, over the query's own transport; None if none."""
        exchange = _exchange_tcp if tcp else _exchange_udp
        for upstream in c.upstreams:
            try:
                # The outer bound also covers what dnspython's own timeout may not (a slow connect).
                async with asyncio.timeout(self._timeout + 0.5):
                    response = await exchange(query, upstream, self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # timeout, refused, reset, garbage: try the next server
                log.debug("dns: upstream %s:%d failed for %s: %r", upstream.host, upstream.port, c.key, e)
                self.counters["upstream: failed"] += 1
                continue
            if response.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                self.counters["upstream: refused or failed"] += 1
                continue  # Docker: may be transitional, ask the next one
            return response  # relayed as it is, TC bit included, for the client to retry over TCP
        return None

    def _to_wire(
        self, query: dns.message.Message, response: dns.message.Message, *, tcp: bool, relayed: bool = False
    ) -> bytes:
        """Our own answers fit the client's size (Docker truncates them); an upstream's goes as it came."""
        limit = TCP_MAX_SIZE if tcp else max(UDP_MIN_SIZE, query.payload if query.edns >= 0 else 0)
        if relayed:
            limit = TCP_MAX_SIZE
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            pass
        # Too many addresses for the client's size: Docker drops answers and sets TC so it retries on TCP.
        self.counters["truncated"] += 1
        response.flags |= dns.flags.TC
        while response.answer:
            rrset = response.answer[-1]
            if len(rrset) > 1:
                response.answer[-1] = dns.rrset.from_rdata_list(rrset.name, rrset.ttl, list(rrset)[:-1])
            else:
                response.answer.pop()
            try:
                return response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                continue
        return response.to_wire(max_size=TCP_MAX_SIZE)


def _reply(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query, recursion_available=True)
    response.set_rcode(rcode)
    return response
