"""Address management: pools, the subnet a network gets, IPAM.Config checks, endpoint addresses."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import pytest

from daemon.errors import DaemonError, Forbidden, InvalidParameter, SystemError_, Unavailable
from daemon.networks.ipam import (
    DEFAULT_POOLS,
    AddressPool,
    SubnetChooser,
    SubnetConfig,
    check_ipam_config,
    check_no_overlap,
    mac_for,
    parse_address_pools,
    parse_prefix,
)


def _error(exc: type[DaemonError], call: Any, *args: Any) -> str:
    with pytest.raises(exc) as info:
        call(*args)
    return info.value.message


# --- pools and the chosen subnet -------------------------------------------------------------------


def test_default_pools_give_docker_sequence() -> None:
    chooser = SubnetChooser(DEFAULT_POOLS)
    used: list[Any] = []
    got = []
    for _ in range(15 + 16):
        net = chooser.choose(used, [])
        used.append(net)
        got.append(str(net))
    assert got[:15] == [f"172.{i}.0.0/16" for i in range(17, 32)]
    assert got[15:] == [f"192.168.{16 * i}.0/20" for i in range(16)]
    message = _error(InvalidParameter, chooser.choose, used, [])
    assert message == "all predefined address pools have been fully subnetted"


def test_choose_skips_host_routes_and_partial_overlaps_but_not_default_route() -> None:
    chooser = SubnetChooser(DEFAULT_POOLS)
    routes = [ip_network("0.0.0.0/0"), ip_network("172.17.0.0/16"), ip_network("172.19.3.0/24")]
    in_use = [ip_network("172.18.200.0/24")]
    assert chooser.choose(in_use, routes) == ip_network("172.20.0.0/16")
    # a blocker in the middle of a pool cut in smaller subnets: the ones before and after it
    small = SubnetChooser([("10.210.0.0/16", 24)])
    blockers = [ip_network("10.210.0.0/24"), ip_network("10.210.1.128/25"), ip_network("10.210.2.7/32")]
    assert small.choose(blockers, []) == ip_network("10.210.3.0/24")
    assert small.choose([], [ip_network("10.210.0.0/17")]) == ip_network("10.210.128.0/24")


def test_choose_ipv6_pool_and_family_separation() -> None:
    chooser = SubnetChooser([("fd00:210::/48", 64), ("10.211.0.0/16", 24)])
    assert chooser.choose([ip_network("fd00:210::/64")], [], version=6) == ip_network("fd00:210:0:1::/64")
    assert chooser.choose([ip_network("fd00:210::/48")], [], version=4) == ip_network("10.211.0.0/24")
    with pytest.raises(InvalidParameter):
        chooser.choose([ip_network("fd00:210::/48")], [], version=6)


def test_chooser_sorts_pools_and_drops_nested_ones() -> None:
    chooser = SubnetChooser([("10.212.0.0/16", 24), ("10.200.0.0/16", 24), ("10.212.5.0/24", 28)])
    assert [str(n) for n, _ in chooser.pools] == ["10.200.0.0/16", "10.212.0.0/16"]
    assert chooser.choose([], []) == ip_network("10.200.0.0/24")


@pytest.mark.parametrize(
    ("specs", "pools"),
    [
        (["base=10.10.0.0/16,size=24"], [("10.10.0.0/16", 24)]),
        (
            ["BASE=10.10.0.0/16,Size=24", "base=fd00:1::/48,size=64"],
            [("10.10.0.0/16", 24), ("fd00:1::/48", 64)],
        ),
        (["base=10.10.5.1/16,size=24"], [("10.10.0.0/16", 24)]),  # moby masks the base
    ],
)
def test_parse_address_pools(specs: list[str], pools: list[tuple[str, int]]) -> None:
    assert parse_address_pools(specs) == pools


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("base=10.10.0.0/16", "network at index 0 (&{10.10.0.0/16 0}) is not in canonical form"),
        ("size=24", "network at index 0 (&{invalid Prefix 24}) is not in canonical form"),
        ("base=10.10.0.0/16,size=33", "network at index 0 (&{10.10.0.0/16 33}) is not in canonical form"),
        (
            "base=10.10.0.0/16,size=8",
            "network at index 0 (&{10.10.0.0/16 8}) has a smaller prefix (/16)"
            " than the target size of that pool (/8)",
        ),
        ("base=10.10.0.0,size=24",
         "invalid base prefix \"10.10.0.0\": netip.ParsePrefix(\"10.10.0.0\"): no '/'"),
        ("base=10.10.0.0/024,size=24",
         'invalid base prefix "10.10.0.0/024": '
         'netip.ParsePrefix("10.10.0.0/024"): bad bits after slash: "024"'),
        ("base=10.10.0.0/16,size=x",
         'invalid size value: "base=10.10.0.0/16,size=x" (must be integer): strconv.Atoi: parsing "x": '
         "invalid syntax"),
        ("base=10.10.0.0/16,colour=red", "unexpected key 'colour' in 'colour=red'"),
        ("base", "invalid field 'base' must be a key=value pair"),
    ],
)  # fmt: skip
def test_parse_address_pools_errors(spec: str, message: str) -> None:
    assert _error(InvalidParameter, parse_address_pools, [spec]) == message


def test_parse_prefix_is_as_strict_as_go() -> None:
    assert str(parse_prefix("10.1.2.3/24")) == "10.1.2.3/24"
    for bad in ("10.1.2.3", "10.1.2.3/33", "10.1.2.3/+4", "fe80::1%eth0/64", "10.1.2/24", "/24"):
        with pytest.raises(ValueError):
            parse_prefix(bad)


# --- IPAM.Config ------------------------------------------------------------------------------------


def test_config_completed_with_gateway_range_and_aux() -> None:
    aux = {"router": "10.220.0.9"}
    [cfg] = check_ipam_config(
        [{"Subnet": "10.220.0.0/16", "IPRange": "10.220.5.0/24", "AuxiliaryAddresses": aux}]
    )
    # libnetwork takes the default gateway from the ip-range when there is one
    assert cfg == SubnetConfig(
        subnet=ip_network("10.220.0.0/16"),
        gateway=IPv4Address("10.220.5.0"),
        ip_range=ip_network("10.220.5.0/24"),
        aux={"router": IPv4Address("10.220.0.9")},
    )
    assert cfg.as_json() == {
        "Subnet": "10.220.0.0/16",
        "IPRange": "10.220.5.0/24",
        "Gateway": "10.220.5.0",
        "AuxiliaryAddresses": {"router": "10.220.0.9"},
    }
    v6_entry = {"Subnet": "fd00:221::/64", "Gateway": "fd00:221::fe"}
    [plain, v6] = check_ipam_config([{"Subnet": "10.221.0.0/24"}, v6_entry])
    assert plain.gateway == IPv4Address("10.221.0.1") and plain.ip_range is None and plain.aux == {}
    assert v6.gateway == IPv6Address("fd00:221::fe")
    [p2p] = check_ipam_config([{"Subnet": "10.222.0.0/31"}])  # RFC 3021: nothing reserved
    assert p2p.gateway == IPv4Address("10.222.0.0")
    [v6default] = check_ipam_config([{"Subnet": "fd00:222::/120"}])
    assert v6default.gateway == IPv6Address("fd00:222::1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{"Subnet": "10.1.0.0"}], "invalid subnet 10.1.0.0: invalid CIDR block notation"),
        ([{"Gateway": "10.1.0.1"}], "invalid subnet : invalid CIDR block notation"),
        ([{"Subnet": "10.1.2.3/24"}], "invalid subnet 10.1.2.3/24: it should be 10.1.2.0/24"),
        ([{"Subnet": "10.1.0.0/16", "Gateway": "10.2.0.1"}],
         "invalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 doesn't contain this address"),
        ([{"Subnet": "10.1.0.0/16", "Gateway": "fd00::1"}],
         "invalid gateway fd00::1: parent subnet is an IPv4 block"),
        ([{"Subnet": "10.1.0.0/16", "Gateway": "nope"}], "invalid gateway nope: invalid address"),
        ([{"Subnet": "10.1.0.0/16", "IPRange": "10.0.0.0/8"}],
         "invalid ip-range 10.0.0.0/8: CIDR block is bigger than its parent subnet 10.1.0.0/16"),
        ([{"Subnet": "10.1.0.0/16", "IPRange": "10.1.2.3/24"}],
         "invalid ip-range 10.1.2.3/24: it should be 10.1.2.0/24"),
        ([{"Subnet": "10.1.0.0/16", "IPRange": "10.2.0.0/24"}],
         "invalid ip-range 10.2.0.0/24: parent subnet 10.1.0.0/16 doesn't contain ip-range"),
        ([{"Subnet": "10.1.0.0/16", "IPRange": "fd00::/64"}],
         "invalid ip-range fd00::/64: parent subnet is an IPv4 block"),
        ([{"Subnet": "10.1.0.0/16", "IPRange": "10.1.0.0"}],
         "invalid ip-range 10.1.0.0: invalid CIDR block notation"),
        ([{"Subnet": "10.1.0.0/16", "AuxiliaryAddresses": {"a": "10.9.0.1"}}],
         "invalid auxiliary address a: parent subnet 10.1.0.0/16 doesn't contain this address"),
    ],
)  # fmt: skip
def test_config_errors(raw: list[dict[str, Any]], message: str) -> None:
    assert _error(InvalidParameter, check_ipam_config, raw) == "invalid network config:\n" + message


def test_config_errors_are_all_reported_together() -> None:
    raw = [{"Subnet": "10.1.2.3/24", "Gateway": "10.9.9.9"}, {"Subnet": "bad"}]
    assert _error(InvalidParameter, check_ipam_config, raw) == (
        "invalid network config:\n"
        "* invalid subnet 10.1.2.3/24: it should be 10.1.2.0/24\n"
        "* invalid gateway 10.9.9.9: parent subnet 10.1.2.3/24 doesn't contain this address\n"
        "* invalid subnet bad: invalid CIDR block notation"
    )


def test_config_allocation_conflicts() -> None:
    overlap = [{"Subnet": "10.230.0.0/16"}, {"Subnet": "10.230.4.0/24"}]
    assert _error(Forbidden, check_ipam_config, overlap) == (
        "invalid pool request: Pool overlaps with other one on this address space"
    )
    # the same numbers in two families do not overlap
    assert len(check_ipam_config([{"Subnet": "10.230.0.0/16"}, {"Subnet": "::/64"}])) == 2
    for gateway in ("10.230.0.0", "10.230.0.255"):  # the network and broadcast addresses
        raw = [{"Subnet": "10.230.0.0/24", "Gateway": gateway}]
        message = _error(SystemError_, check_ipam_config, raw)
        assert message == f"failed to allocate gateway ({gateway}): Address already in use"
    aux_on_gateway = [{"Subnet": "10.230.0.0/24", "AuxiliaryAddresses": {"r": "10.230.0.1"}}]
    assert _error(SystemError_, check_ipam_config, aux_on_gateway) == (
        "failed to allocate secondary ip address (r:10.230.0.1): Address already in use"
    )
    assert _error(SystemError_, check_ipam_config, [{"Subnet": "fd00:230::/128"}]) == (
        "failed to allocate gateway (): no available addresses on this pool"
    )


def test_no_overlap_with_existing_networks() -> None:
    cfgs = check_ipam_config([{"Subnet": "10.231.1.0/24"}])
    check_no_overlap(cfgs, [ip_network("10.231.2.0/24"), ip_network("fd00::/8")])
    with pytest.raises(Forbidden):
        check_no_overlap(cfgs, [ip_network("10.231.0.0/16")])


# --- addresses of endpoints ---------------------------------------------------------------------------


def _pool(**entry: Any) -> AddressPool:
    [cfg] = check_ipam_config([entry])
    return AddressPool(cfg)


def test_lowest_free_skips_reserved_and_reuses_released() -> None:
    pool = _pool(Subnet="10.240.0.0/29", AuxiliaryAddresses={"x": "10.240.0.3"})
    # .0 network, .1 gateway, .3 aux, .7 broadcast: .2 .4 .5 .6 remain
    got = [pool.allocate() for _ in range(4)]
    assert got == [ip_address(f"10.240.0.{i}") for i in (2, 4, 5, 6)]
    assert _error(Unavailable, pool.allocate) == "no available addresses on this pool"
    pool.release(ip_address("10.240.0.5"))
    pool.release(ip_address("10.240.0.5"))  # harmless twice
    pool.release(ip_address("10.240.0.1"))  # the gateway stays reserved
    assert pool.in_use() == {ip_address(f"10.240.0.{i}") for i in (2, 4, 6)}
    assert pool.allocate() == ip_address("10.240.0.5")


def test_wanted_address() -> None:
    pool = _pool(Subnet="10.241.0.0/24", IPRange="10.241.0.128/25")
    assert pool.allocate() == ip_address("10.241.0.129")  # .128 is the gateway, from the range
    # --ip may be outside the ip-range, inside the subnet
    assert pool.allocate(ip_address("10.241.0.7")) == ip_address("10.241.0.7")
    for taken in ("10.241.0.7", "10.241.0.128", "10.241.0.0", "10.241.0.255"):
        assert _error(Forbidden, pool.allocate, ip_address(taken)) == "Address already in use"
    for outside in ("10.242.0.7", "fd00::7"):
        assert _error(InvalidParameter, pool.allocate, ip_address(outside)) == (
            f"no configured subnet or ip-range contain the IP address {outside}"
        )
    assert pool.in_use() == {ip_address("10.241.0.129"), ip_address("10.241.0.7")}


def test_range_exhaustion_ignores_the_rest_of_the_subnet() -> None:
    pool = _pool(Subnet="10.243.0.0/16", IPRange="10.243.9.0/30", Gateway="10.243.0.1")
    assert [str(pool.allocate()) for _ in range(4)] == [f"10.243.9.{i}" for i in range(4)]
    with pytest.raises(Unavailable):
        pool.allocate()


def test_huge_ipv6_subnet() -> None:
    pool = _pool(Subnet="fd00:244::/48", AuxiliaryAddresses={"a": "fd00:244::2"})
    # ::0 anycast and ::1 gateway reserved, ::2 aux; no set of 2**80 addresses is ever built
    assert pool.allocate() == ip_address("fd00:244::3")
    assert pool.allocate(ip_address("fd00:244::ffff:1")) == ip_address("fd00:244::ffff:1")
    assert pool.allocate() == ip_address("fd00:244::4")
    pool.release(ip_address("fd00:244::3"))
    assert pool.allocate() == ip_address("fd00:244::3")
    # no broadcast in IPv6: the last address is handed out
    last = ip_address("fd00:244:0:ffff:ffff:ffff:ffff:ffff")
    assert pool.allocate(last) == last


def test_mac_for() -> None:
    assert mac_for(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
    assert mac_for(IPv4Address("10.250.255.1")) == "02:42:0a:fa:ff:01"
