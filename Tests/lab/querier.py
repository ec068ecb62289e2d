#!/usr/bin/env python3
"""A test querier for the lab: sends IGMP and MLD queries out of one interface of the
namespace it runs in (stdlib only, root). Never run it outside a lab namespace.

    querier.py INTERFACE [--every SECONDS] [--rounds N] [--first SPEC]... SPEC...

Each SPEC is a message and its fields, comma-separated; the SPECs are sent in order every
SECONDS (default 1) for N rounds (default 0: until killed); `--first` ones once, before.

    igmp1                                  IGMPv1 general query
    igmp2[,mrc=100][,group=G]              IGMPv2 general (or group-specific) query
    igmp3[,mrc=100][,qrv=2][,qqic=125][,group=G][,sources=S1+S2]
                                           IGMPv3 general / group / group-and-source query
    igmp3-proxy[,...]                      IGMPv3 query from 0.0.0.0, as a proxy-querying
                                           switch sends it (an Ethernet frame via AF_PACKET:
                                           the kernel would fill in a zero source address)
    igmp-bad-checksum                      an IGMPv2 general query with a wrong checksum
    mld1[,mrd=10000][,group=G]             MLDv1 query
    mld2[,mrc=10000][,qrv=2][,qqic=125][,group=G][,sources=S1+S2]
                                           MLDv2 query
    mld-short                              a 26-byte MLD query (no version has that length)

IGMP goes to 224.0.0.1 (general) or the group, TTL 1, ToS 0xc0, with a Router Alert option,
from the interface's IPv4 address. MLD goes to ff02::1 or the group, hop limit 1, with a
Router Alert hop-by-hop option, from the interface's link-local address (also to a global
group, where source selection would pick a global address); the kernel fills in
the ICMPv6 checksum. The script prints "ready" once its sockets are open, then one line per
round.
"""
import argparse
import ipaddress
import socket
import struct
import sys
import time

from forge_replies import checksum  # the Internet checksum (RFC 1071)

IP_MULTICAST_IF = 32
IP_OPTIONS = 4
IPV6_HOPOPTS = 54
ROUTER_ALERT_V4 = b"\x94\x04\x00\x00"
# Hop-by-hop header: next header (kernel), length 0, Router Alert 0 (MLD), PadN 0.
ROUTER_ALERT_V6 = bytes([0, 0, 5, 2, 0, 0, 1, 0])


def with_checksum(message, offset=2):
    message = bytearray(message)
    message[offset:offset + 2] = b"\0\0"
    message[offset:offset + 2] = struct.pack("!H", checksum(bytes(message)))
    return bytes(message)


def parse(spec):
    kind, *fields = spec.split(",")
    options = {}
    for field in fields:
        key, _, value = field.partition("=")
        options[key] = value
    return kind, options


def igmp_message(kind, options):
    """(IGMP bytes, destination) for an igmp* SPEC."""
    group = options.get("group", "0.0.0.0")
    group_bytes = socket.inet_aton(group)
    destination = "224.0.0.1" if group == "0.0.0.0" else group
    if kind == "igmp1":
        return with_checksum(struct.pack("!BBH4s", 0x11, 0, 0, group_bytes)), destination
    if kind in ("igmp2", "igmp-bad-checksum"):
        message = with_checksum(struct.pack("!BBH4s", 0x11, int(options.get("mrc", 100)), 0, group_bytes))
        if kind == "igmp-bad-checksum":
            message = message[:2] + bytes([message[2] ^ 0x5A]) + message[3:]
        return message, destination
    sources = [socket.inet_aton(s) for s in options.get("sources", "").split("+") if s]
    flags = int(options.get("qrv", 2)) & 7
    message = struct.pack("!BBH4sBBH", 0x11, int(options.get("mrc", 100)), 0, group_bytes, flags,
                          int(options.get("qqic", 125)), len(sources)) + b"".join(sources)
    return with_checksum(message), destination


def mld_message(kind, options):
    """(ICMPv6 bytes without checksum, destination) for an mld* SPEC."""
    group = options.get("group", "::")
    group_bytes = ipaddress.IPv6Address(group).packed
    destination = "ff02::1" if group == "::" else group
    if kind == "mld1":
        return struct.pack("!BBHHH16s", 130, 0, 0, int(options.get("mrd", 10000)), 0, group_bytes), destination
    if kind == "mld-short":
        return struct.pack("!BBHHH16s", 130, 0, 0, 10000, 0, group_bytes) + b"\x02\x7d", destination
    sources = [ipaddress.IPv6Address(s).packed for s in options.get("sources", "").split("+") if s]
    message = struct.pack("!BBHHH16sBBH", 130, 0, 0, int(options.get("mrc", 10000)), 0, group_bytes,
                          int(options.get("qrv", 2)) & 7, int(options.get("qqic", 125)), len(sources))
    return message + b"".join(sources), destination


def ipv4_header(source, destination, payload_length):
    header = struct.pack("!BBHHHBBH4s4s", 0x46, 0xC0, 24 + payload_length, 0, 0x4000, 1, 2, 0,
                         socket.inet_aton(source), socket.inet_aton(destination)) + ROUTER_ALERT_V4
    return with_checksum(header, 10)


def link_local(interface):
    """The interface's fe80::/10 address, from /proc/net/if_inet6."""
    with open("/proc/net/if_inet6") as f:
        for line in f:
            address, _, _, scope, _, name = line.split()
            if name == interface and int(scope, 16) == 0x20:
                return str(ipaddress.IPv6Address(bytes.fromhex(address)))
    raise SystemExit(f"{interface} has no link-local address")


class Querier:
    def __init__(self, interface):
        self.interface = interface
        self.index = socket.if_nametoindex(interface)
        with open(f"/sys/class/net/{interface}/address") as f:
            self.mac = bytes.fromhex(f.read().strip().replace(":", ""))
        self.igmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        self.igmp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        self.igmp.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_IF, struct.pack("=4s4si", b"\0" * 4, b"\0" * 4, self.index))
        self.igmp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.igmp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self.igmp.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xC0)
        self.igmp.setsockopt(socket.IPPROTO_IP, IP_OPTIONS, ROUTER_ALERT_V4)
        self._mld = None
        self.frames = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.frames.bind((interface, 0))

    @property
    def mld(self):
        """The MLD socket, opened at the first MLD message (an IGMP-only run needs no IPv6)."""
        if self._mld is None:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, ROUTER_ALERT_V6)
            # From the link-local address even to a global-scope group (source selection would
            # pick a global one there, and RFC 3810 6.2 has hosts drop such queries).
            sock.bind((link_local(self.interface), 0, 0, self.index))
            self._mld = sock
        return self._mld

    def send(self, spec):
        kind, options = parse(spec)
        if kind.startswith("mld"):
            message, destination = mld_message(kind, options)
            self.mld.sendto(message, (destination, 0, 0, self.index))
        elif kind == "igmp3-proxy":
            message, destination = igmp_message("igmp3", options)
            group = ipaddress.IPv4Address(destination).packed
            mac = bytes([0x01, 0x00, 0x5E, group[1] & 0x7F, group[2], group[3]])
            frame = mac + self.mac + b"\x08\x00" + ipv4_header("0.0.0.0", destination, len(message)) + message
            self.frames.send(frame)
        elif kind.startswith("igmp"):
            message, destination = igmp_message(kind, options)
            self.igmp.sendto(message, (destination, 0))
        else:
            raise SystemExit(f"unknown message {spec!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("interface")
    parser.add_argument("specs", nargs="*")
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--first", action="append", default=[])
    args = parser.parse_intermixed_args()
    querier = Querier(args.interface)
    print("ready", flush=True)
    for spec in args.first:
        querier.send(spec)
    round_number = 0
    next_round = time.monotonic()
    while args.specs and (args.rounds == 0 or round_number < args.rounds):
        for spec in args.specs:
            querier.send(spec)
        round_number += 1
        print(f"round {round_number}", flush=True)
        next_round += args.every
        time.sleep(max(0.0, next_round - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
