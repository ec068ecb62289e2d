#!/usr/bin/env python3
"""Sends a multicast test stream from inside a lab namespace, with faults injected at
chosen sequence numbers, and prints what it sent as JSON on exit.

    mcast_sender.py --group 239.1.1.1 --port 5000 --interface-address 198.18.3.2 \
        --format sequence|beacon|rtp|mpegts|rtp-mpegts|raw --rate 1000 --count 2000 \
        [--start N] [--skip 10,11] [--duplicate 20] [--swap 30] [--ssrc-change 40] \
        [--cc-error 50] [--timestamp-skew 900] [--bind 198.19.0.1]

Sequence numbers are the format's own: a u32 little-endian at offset 0 (`sequence`), the
beacon's u64, RTP's u16 (wrapping), and for MPEG-TS the per-PID continuity counter.

RTP timestamps (payload type 33, 90 kHz) are the send time on that clock, taken just before
each send, so they match the pacing whatever the scheduler does and a receiver's RFC 3550
jitter measures only the path (about 0 in the lab). `--timestamp-skew N` adds N units per
sequence number on top: each packet then claims to be N units (N/90 ms) later than it was
sent, so the transit difference is -N at every packet and the jitter converges on N/90000 s.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import time


def parse_list(text):
    return {int(x) for x in text.split(",") if x} if text else set()


def ts_packets(datagram, cc_error=False, pid=0x100, count=7):
    """The `datagram`-th datagram of a transport stream: one PAT packet (PID 0) then
    `count` - 1 packets of `pid`, each PID with its own continuity counter. With `cc_error`
    the last packet's counter is off by 5 (the stream's counter goes on as if it were not)."""
    header = lambda this_pid, cc: bytes([0x47, 0x40 if this_pid == 0 else (this_pid >> 8) & 0x1F, this_pid & 0xFF, 0x10 | cc])
    # PAT: pointer field 0, then table_id 0x00.
    packets = [header(0, datagram & 0xF) + bytes([0, 0]) + bytes(182)]
    for index in range(count - 1):
        cc = (datagram * (count - 1) + index) & 0xF
        if cc_error and index == count - 2:
            cc = (cc + 5) & 0xF
        packets.append(header(pid, cc) + bytes(184))
    return b"".join(packets)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--group", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interface-address", required=True)
    p.add_argument("--bind", help="source address to send from")
    p.add_argument("--format", default="sequence")
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--count", type=int, default=0, help="0: until killed")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--skip", type=parse_list, default=set())
    p.add_argument("--duplicate", type=parse_list, default=set())
    p.add_argument("--swap", type=parse_list, default=set(), help="send N+1 before N")
    p.add_argument("--ssrc-change", type=parse_list, default=set())
    p.add_argument("--cc-error", type=parse_list, default=set())
    p.add_argument("--timestamp-skew", type=int, default=0, help="RTP units added per sequence number")
    p.add_argument("--ttl", type=int, default=8)
    args = p.parse_args()

    family = socket.AF_INET6 if ":" in args.group else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, args.ttl)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.interface_address))
    if args.bind:
        s.bind((args.bind, 0))
    stats = {"sent": 0, "skipped": 0, "duplicated": 0, "swapped": 0}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    ssrc = 0x11223344
    sender_id = 0xABCDEF01
    interval = 1.0 / args.rate
    next_time = time.monotonic()

    def payload(n):
        nonlocal ssrc
        if args.format == "sequence":
            return struct.pack("<I", n & 0xFFFFFFFF) + bytes(60)
        if args.format == "beacon":
            return b"NPBC" + bytes([1, 0, 0, 0]) + struct.pack("!IIQq", 7, sender_id, n, time.time_ns()) + bytes(32)
        if args.format in ("rtp", "rtp-mpegts"):
            if n in args.ssrc_change:
                ssrc ^= 0x5A5A5A5A
            body = ts_packets(n, n in args.cc_error) if args.format == "rtp-mpegts" else bytes(160)
            timestamp = time.monotonic_ns() * 9 // 100_000 + args.timestamp_skew * (n - args.start)
            return struct.pack("!BBHII", 0x80, 33, n & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + body
        if args.format == "mpegts":
            return ts_packets(n, n in args.cc_error)
        return bytes(100)

    def send(n):
        s.sendto(payload(n), (args.group, args.port))
        stats["sent"] += 1

    n = args.start
    sent_packets = 0
    while not stopping and (args.count == 0 or sent_packets < args.count):
        now = time.monotonic()
        if now < next_time:
            time.sleep(next_time - now)
        next_time += interval
        if n in args.skip:
            stats["skipped"] += 1
            payload(n)  # an SSRC change due at a skipped number still happens
        elif n in args.swap:
            send(n + 1)
            send(n)
            stats["swapped"] += 1
            n += 1
            sent_packets += 1
        else:
            send(n)
            if n in args.duplicate:
                send(n)
                stats["duplicated"] += 1
        n += 1
        sent_packets += 1
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
