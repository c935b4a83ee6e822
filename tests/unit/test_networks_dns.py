"""The embedded DNS server against real sockets on loopback, with a tiny upstream the test runs itself.

No query leaves the machine: the server's upstreams are only the FakeUpstream below (127.0.0.1) or
loopback ports nobody answers on. Addresses in records are data only (10.253.0.0/16, fd00:253::/64).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest

from daemon.errors import InvalidParameter
from daemon.networks.dns import DnsServer, NameTable, Upstream, host_upstreams, resolv_conf_for_container

# -- a tiny upstream server on 127.0.0.1 ------------------------------------------------------------


@dataclass
class FakeUpstream:
    """Answers ext.example (A 10.253.200.1), tc.example (TC over UDP, the answer over TCP),
    big.example (40 A records), fail.example (SERVFAIL); NXDOMAIN for anything else.
    Remembers what it was asked, and how."""

    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (transport, question name)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def answer(self, wire: bytes, transport: str) -> bytes:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text()
        self.seen.append((transport, name))
        response = dns.message.make_response(query)
        if name == "ext.example." and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A", "10.253.200.1"))
        elif name == "tc.example." and transport == "udp":
            response.flags |= dns.flags.TC
        elif name == "tc.example.":
            response.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A", "10.253.200.2"))
        elif name == "big.example.":  # past 512 bytes, TC unset, like servers that ignore the limit
            many = [f"10.253.201.{i}" for i in range(1, 41)]
            response.answer.append(dns.rrset.from_text_list(question.name, 30, "IN", "A", many))
        elif name == "fail.example.":
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)  # not its subclass in 3.11

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data, "udp"), addr)

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = self.answer(await reader.readexactly(size), "tcp")
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(on_tcp, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", self.port))
        self.closers += [transport.close, server.close]


def unused_port() -> int:
    """A loopback port nobody listens on (UDP: the kernel answers 'port unreachable')."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Served:
    server: DnsServer
    table: NameTable
    upstream: FakeUpstream
    networks: list[str]
    udp: socket.socket
    tcp: socket.socket

    @property
    def port(self) -> int:
        port: int = self.udp.getsockname()[1]
        return port

    async def ask(self, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        exchange = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
        return await exchange(query, "127.0.0.1", timeout=5, port=self.port)

    async def ask_on(self, udp: socket.socket, name: str) -> dns.message.Message:
        """An A query to another container's server (its UDP socket)."""
        query = dns.message.make_query(name, "A")
        return await dns.asyncquery.udp(query, "127.0.0.1", timeout=5, port=udp.getsockname()[1])


def bound_sockets() -> tuple[socket.socket, socket.socket]:
    """Like the daemon's 127.0.0.11:53 pair: UDP and TCP on one port, bound, TCP not listening."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
    raise RuntimeError("no free port pair on loopback")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    table = NameTable()
    table.add(
        "net1",
        "ep-web",
        ["web", "site", "0123456789ab", "webhost"],
        "10.253.1.2",
        "fd00:253::2",
        network_name="front",
    )
    table.add("net1", "ep-v4only", ["plain"], "10.253.1.3", None, network_name="front")
    table.add("net2", "ep-db", ["db"], "10.253.2.2", None, network_name="back")
    upstream = FakeUpstream()
    server = DnsServer(table, upstream_timeout=1.0)
    udp, tcp = bound_sockets()
    networks = ["net1"]
    try:
        await upstream.start()
        await server.serve("c1", lambda: networks, [Upstream("127.0.0.1", upstream.port)], udp, tcp)
        yield Served(server, table, upstream, networks, udp, tcp)
    finally:
        await server.close()
        for close in upstream.closers:
            close()
        udp.close()
        tcp.close()


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in response.answer for rd in rrset)


# -- answers from the name table -----------------------------------------------------------------


async def test_names_aliases_short_id_and_hostname_answer_a_and_aaaa(served: Served) -> None:
    for name in ("web", "site", "0123456789ab", "webhost", "WeB", "SITE.", "web.front", "Web.FRONT."):
        response = await served.ask(name)
        assert response.rcode() == dns.rcode.NOERROR, name
        assert addresses(response) == ["10.253.1.2"], name
        assert response.answer[0].ttl == 600
        assert response.flags & dns.flags.RA
    response = await served.ask("web", "AAAA")
    assert addresses(response) == ["fd00:253::2"]
    response = await served.ask("site", "AAAA", tcp=True)
    assert addresses(response) == ["fd00:253::2"]
    assert served.upstream.seen == []


async def test_known_name_without_that_family_is_noerror_and_not_forwarded(served: Served) -> None:
    response = await served.ask("plain", "AAAA")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    mx = await served.ask("plain", "MX")
    assert (mx.rcode(), mx.answer) == (dns.rcode.NOERROR, [])
    assert served.upstream.seen == []


async def test_a_name_of_another_network_is_forwarded_until_the_container_joins_it(served: Served) -> None:
    response = await served.ask("db")
    assert response.rcode() == dns.rcode.NXDOMAIN  # the upstream's word
    assert served.upstream.seen == [("udp", "db.")]
    response = await served.ask("web.back")  # a name on a network of another name
    assert response.rcode() == dns.rcode.NXDOMAIN
    served.networks.append("net2")  # docker network connect: network_ids is read per query
    assert addresses(await served.ask("db")) == ["10.253.2.2"]
    assert addresses(await served.ask("db.back")) == ["10.253.2.2"]
    served.networks.remove("net1")
    assert (await served.ask("web")).rcode() == dns.rcode.NXDOMAIN


async def test_the_first_network_that_knows_a_name_answers(served: Served) -> None:
    served.table.add("net2", "ep-other-web", ["web"], "10.253.2.9", None, network_name="back")
    served.networks[:] = ["net2", "net1"]
    assert addresses(await served.ask("web")) == ["10.253.2.9"]
    served.networks[:] = ["net1", "net2"]
    assert addresses(await served.ask("web")) == ["10.253.1.2"]
    served.table.remove("net1", "ep-web")
    assert addresses(await served.ask("web")) == ["10.253.2.9"]


async def test_ptr_names_the_container_on_its_network(served: Served) -> None:
    response = await served.ask(dns.reversename.from_address("10.253.1.2").to_text(), "PTR")
    assert [rd.to_text() for rd in response.answer[0]] == ["web.front."]
    assert response.answer[0].ttl == 600
    response = await served.ask(dns.reversename.from_address("fd00:253::2").to_text(), "PTR", tcp=True)
    assert [rd.to_text() for rd in response.answer[0]] == ["web.front."]
    # Not on the asking container's networks: the upstream's answer.
    response = await served.ask(dns.reversename.from_address("10.253.2.2").to_text(), "PTR")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert served.upstream.seen == [("udp", "2.2.253.10.in-addr.arpa.")]


async def test_an_alias_shared_by_many_is_truncated_over_udp_and_whole_over_tcp(served: Served) -> None:
    for i in range(60):
        served.table.add("net1", f"ep-{i}", [f"replica{i}", "pool"], f"10.253.3.{i + 1}", None)
    udp = await served.ask("pool")
    assert udp.flags & dns.flags.TC
    assert 0 < len(addresses(udp)) < 60
    tcp = await served.ask("pool", tcp=True)
    assert not tcp.flags & dns.flags.TC
    assert addresses(tcp) == sorted(f"10.253.3.{i + 1}" for i in range(60))


# -- forwarding ----------------------------------------------------------------------------------


async def test_other_names_are_relayed_from_the_upstream_over_the_query_transport(served: Served) -> None:
    response = await served.ask("ext.example")
    assert addresses(response) == ["10.253.200.1"]
    assert response.answer[0].ttl == 30  # the upstream's record, as it came
    response = await served.ask("ext.example", tcp=True)
    assert addresses(response) == ["10.253.200.1"]
    response = await served.ask("ext.example", "TXT")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert served.upstream.seen == [("udp", "ext.example."), ("tcp", "ext.example."), ("udp", "ext.example.")]


async def test_a_truncated_upstream_answer_keeps_tc_and_tcp_gets_the_whole(served: Served) -> None:
    udp = await served.ask("tc.example")
    assert udp.flags & dns.flags.TC
    tcp = await served.ask("tc.example", tcp=True)
    assert addresses(tcp) == ["10.253.200.2"]
    # An oversized answer is relayed as it came (Docker does not cut what upstreams send).
    big = await served.ask("big.example")
    assert len(big.to_wire()) > 512
    assert len(addresses(big)) == 40
    assert not big.flags & dns.flags.TC


async def test_failing_upstreams_are_skipped_and_servfail_when_none_answers(served: Served) -> None:
    refused = Upstream("127.0.0.1", unused_port())
    good = Upstream("127.0.0.1", served.upstream.port)
    for upstreams, name, rcode, asked in (
        ([refused, good], "ext.example", dns.rcode.NOERROR, 1),  # refused: the next one answers
        ([good, good], "fail.example", dns.rcode.SERVFAIL, 2),  # an upstream's SERVFAIL: ask the next
        ([good, refused], "fail.example", dns.rcode.SERVFAIL, 1),  # nobody else: SERVFAIL at once
    ):
        udp, tcp = bound_sockets()
        try:
            served.upstream.seen.clear()
            await served.server.serve("c2", lambda: ["net1"], upstreams, udp, tcp)
            started = time.monotonic()
            response = await served.ask_on(udp, name)
            assert response.rcode() == rcode
            assert time.monotonic() - started < 0.9  # no timeout spent on the refused port
            assert served.upstream.seen == [("udp", name + ".")] * asked
        finally:
            await served.server.stop("c2")
            udp.close()
            tcp.close()


async def test_a_silent_upstream_gives_servfail_within_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    silent_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent_udp.bind(("127.0.0.1", 0))
    silent_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # accepts in the kernel, never reads
    silent_tcp.bind(("127.0.0.1", silent_udp.getsockname()[1]))
    silent_tcp.listen(8)
    server = DnsServer(NameTable())  # Docker's timing: ~2 s per upstream
    udp, tcp = bound_sockets()
    silent = Upstream("127.0.0.1", silent_udp.getsockname()[1])
    try:
        await server.serve("c", lambda: [], [silent], udp, tcp)
        for over_tcp in (False, True):
            started = time.monotonic()
            query = dns.message.make_query("ext.example", "A")
            exchange = dns.asyncquery.tcp if over_tcp else dns.asyncquery.udp
            response = await exchange(query, "127.0.0.1", timeout=10, port=udp.getsockname()[1])
            elapsed = time.monotonic() - started
            assert response.rcode() == dns.rcode.SERVFAIL
            assert 1.9 < elapsed < 3.0, elapsed
        assert server.counters["servfail: no upstream answered"] == 2
        # Stopped while a TCP query waits on the silent upstream: the client is let go, quietly.
        reader, writer = await asyncio.open_connection("127.0.0.1", udp.getsockname()[1])
        wire = dns.message.make_query("ext.example", "A").to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await server.stop("c")
        assert time.monotonic() - started < 0.5
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await server.close()
        for s in (silent_udp, silent_tcp, udp, tcp):
            s.close()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- bad input and the end of serving ------------------------------------------------------------


async def test_malformed_packets_are_dropped_without_noise(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        for junk in (b"", b"\x00", b"\x12\x34garbage that is no DNS message", bytes(range(256))):
            client.sendto(junk, ("127.0.0.1", served.port))
            with pytest.raises(TimeoutError):
                client.recv(4096)
        # A response sent to the server is not a query: no answer either (no ping-pong).
        reply = dns.message.make_response(dns.message.make_query("web", "A"))
        client.sendto(reply.to_wire(), ("127.0.0.1", served.port))
        with pytest.raises(TimeoutError):
            client.recv(4096)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(b"\x00\x05hello")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed on us
    writer.close()
    assert served.server.counters["dropped: malformed"] == 5
    assert served.server.counters["dropped: not a query"] == 1
    assert addresses(await served.ask("web")) == ["10.253.1.2"]  # still serving
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_other_opcodes_are_not_implemented(served: Served) -> None:
    query = dns.message.make_query("web", "A")
    query.set_opcode(dns.opcode.NOTIFY)
    response = await dns.asyncquery.udp(query, "127.0.0.1", timeout=5, port=served.port)
    assert response.rcode() == dns.rcode.NOTIMP


async def test_stop_closes_the_sockets_even_with_a_client_connected(served: Served) -> None:
    port = served.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await served.server.stop("c1")
    assert served.udp.fileno() == -1
    assert served.tcp.fileno() == -1
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert served.server.serving() == []
    await served.server.stop("c1")  # twice is fine


async def test_close_stops_every_container() -> None:
    server = DnsServer(NameTable())
    pairs = [bound_sockets() for _ in range(3)]
    for i, (udp, tcp) in enumerate(pairs):
        await server.serve(f"c{i}", lambda: [], [], udp, tcp)
    assert sorted(server.serving()) == ["c0", "c1", "c2"]
    await server.close()
    assert server.serving() == []
    assert all(s.fileno() == -1 for pair in pairs for s in pair)


async def test_many_queries_at_once_are_all_answered(served: Served) -> None:
    # 100 at once fit the kernel's default socket buffer (300 at once overflow it: the kernel drops some).
    started = time.monotonic()
    for _ in range(3):
        responses = await asyncio.gather(*(served.ask("web") for _ in range(100)))
        assert all(addresses(r) == ["10.253.1.2"] for r in responses)
        forwarded = await asyncio.gather(*(served.ask("ext.example", tcp=True) for _ in range(20)))
        assert all(addresses(r) == ["10.253.200.1"] for r in forwarded)
    assert time.monotonic() - started < 10


async def test_without_upstreams_unknown_names_are_servfail_at_once() -> None:
    server = DnsServer(NameTable())
    udp, tcp = bound_sockets()
    try:
        await server.serve("c", lambda: [], [], udp, tcp)
        query = dns.message.make_query("ext.example", "A")
        started = time.monotonic()
        response = await dns.asyncquery.udp(query, "127.0.0.1", timeout=5, port=udp.getsockname()[1])
        assert response.rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - started < 0.5
    finally:
        await server.close()


# -- the name table alone -------------------------------------------------------------------------


def test_name_table_add_replace_remove() -> None:
    table = NameTable()
    table.add("n", "e1", ["Web", "pool"], "10.253.4.1", "FD00:253:0::1", network_name="Front")
    table.add("n", "e2", ["other", "pool"], "10.253.4.2", None)
    assert table.lookup(["n"], "POOL", dns.rdatatype.A) == ["10.253.4.1", "10.253.4.2"]
    assert table.lookup(["n"], "pool", dns.rdatatype.AAAA) == ["fd00:253::1"]
    assert table.lookup(["n"], "web.front", dns.rdatatype.A) == ["10.253.4.1"]
    assert table.lookup(["x", "n"], "web", dns.rdatatype.A) == ["10.253.4.1"]
    assert table.lookup(["x"], "web", dns.rdatatype.A) is None
    assert table.lookup(["n"], "", dns.rdatatype.A) is None
    assert table.reverse(["n"], "fd00:253::1") == "Web.Front"
    assert table.reverse(["n"], "10.253.4.9") is None
    assert table.reverse(["n"], "not an address") is None
    table.add("n", "e1", ["web2"], "10.253.4.7", None)  # the endpoint again: its old names are gone
    assert table.lookup(["n"], "web", dns.rdatatype.A) is None
    assert table.lookup(["n"], "pool", dns.rdatatype.A) == ["10.253.4.2"]
    assert table.reverse(["n"], "10.253.4.7") == "web2.Front"
    table.remove("n", "e1")
    table.remove("n", "e1")
    table.remove("n", "e2")
    assert table.lookup(["n"], "other", dns.rdatatype.A) is None
    table.add("n", "e3", ["late"], "10.253.4.3", None)  # the last endpoint took the network's name
    assert table.reverse(["n"], "10.253.4.3") == "late"
    with pytest.raises(InvalidParameter):
        table.add("n", "e4", ["bad"], "fd00::1", None)
    with pytest.raises(InvalidParameter):
        table.add("n", "e4", ["bad"], "10.253.4.300", None)


# -- resolv.conf ---------------------------------------------------------------------------------

HOST = """# a comment
nameserver 127.0.0.53
nameserver 10.253.9.1
nameserver fd00:253::53
nameserver bogus
search corp.example lab.example
options edns0 ndots:2
options timeout:1
sortlist 10.253.0.0/255.255.0.0
"""


def test_resolv_conf_with_the_embedded_server() -> None:
    assert resolv_conf_for_container(HOST, [], [], [], True) == (
        "nameserver 127.0.0.11\n"
        "search corp.example lab.example\n"
        "options edns0 ndots:2 timeout:1\n"  # the host's valid ndots stays, so no ndots:0
        "sortlist 10.253.0.0/255.255.0.0\n"
    )
    text = resolv_conf_for_container(HOST, ["10.253.9.9"], ["."], ["ndots:x", "rotate"], True)
    assert text == "nameserver 127.0.0.11\noptions rotate ndots:0\nsortlist 10.253.0.0/255.255.0.0\n"
    assert resolv_conf_for_container("", [], [], [], True) == "nameserver 127.0.0.11\noptions ndots:0\n"


def test_resolv_conf_without_the_embedded_server() -> None:
    text = resolv_conf_for_container(HOST, [], ["svc.example"], [], False)
    assert text.splitlines()[:4] == [
        "nameserver 10.253.9.1",  # the host's loopback resolver and (no IPv6) its v6 one are dropped
        "search svc.example",
        "options edns0 ndots:2 timeout:1",
        "sortlist 10.253.0.0/255.255.0.0",
    ]
    text = resolv_conf_for_container(HOST, [], [], [], False, ipv6=True)
    assert text.splitlines()[:2] == ["nameserver 10.253.9.1", "nameserver fd00:253::53"]
    only_local = "nameserver 127.0.0.53\nnameserver ::1\n"
    assert resolv_conf_for_container(only_local, [], [], [], False).splitlines() == [
        "nameserver 8.8.8.8",
        "nameserver 8.8.4.4",
    ]
    # --dns is taken as given, loopback included (it means the container's own loopback).
    assert resolv_conf_for_container(HOST, ["127.0.0.1", "10.253.9.2"], [], ["rotate"], False).splitlines()[
        :3
    ] == ["nameserver 127.0.0.1", "nameserver 10.253.9.2", "search corp.example lab.example"]
    with pytest.raises(InvalidParameter, match=r"bad nameserver address 10\.253\.9"):
        resolv_conf_for_container(HOST, ["10.253.9"], [], [], False)


def test_host_upstreams(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(HOST)
    assert host_upstreams(str(conf)) == [
        Upstream("127.0.0.53"),
        Upstream("10.253.9.1"),
        Upstream("fd00:253::53"),
    ]
    assert host_upstreams(str(tmp_path / "missing")) == []
