#!/usr/bin/env python3
"""Runs inside the lab's target namespace: waits for echo requests from the agent to
ADDRESS and answers each of the first COUNT of them with three forged replies, besides the
kernel's real one:

  1. the same identifier and sequence, but a wrong nonce   → must count as bad_nonce
  2. our nonce, but a send time that was never sent         → must count as unknown_probe
  3. an exact copy of the request's payload                 → must count as a duplicate

Usage: forge_replies.py ADDRESS COUNT
"""
import socket
import struct
import sys


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reply(identifier, sequence, payload):
    header = struct.pack("!BBHHH", 0, 0, 0, identifier, sequence)
    return struct.pack("!BBHHH", 0, 0, checksum(header + payload), identifier, sequence) + payload


def main():
    address, count = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.bind((address, 0))  # replies must come from the target address, as real ones do
    sock.settimeout(30)
    answered = 0
    while answered < count:
        packet, (source, _) = sock.recvfrom(65535)
        header_length = (packet[0] & 0x0F) * 4
        destination = socket.inet_ntoa(packet[16:20])
        icmp = packet[header_length:]
        if destination != address or len(icmp) < 32 or icmp[0] != 8:
            continue
        identifier, sequence = struct.unpack("!HH", icmp[4:8])
        payload = icmp[8:]
        wrong_nonce = bytes(b ^ 0xFF for b in payload[:8]) + payload[8:]
        wrong_time = payload[:16] + struct.pack("!q", struct.unpack("!q", payload[16:24])[0] + 12345) + payload[24:]
        for body in (wrong_nonce, wrong_time, payload):
            sock.sendto(reply(identifier, sequence, body), (source, 0))
        answered += 1
    print(f"forged {answered * 3} replies", flush=True)


if __name__ == "__main__":
    main()
