"""MPEG-TS from a real encoder: ffmpeg in the target namespace sends through the snooping
switch to the agent, and the exporter's counts are held against ground truth that does not
come from the exporter: nftables counters, and captures of what was sent (a receiver in the
sender's namespace, where the datagrams loop back) and of what arrived (a receiver beside the
exporter), analysed here in Python.

- ffmpeg's default `udp://` output (1,472-byte datagrams, packets straddling them),
  `pkt_size=1316` and `rtp_mpegts` read clean: nothing malformed, no continuity error.
- Encoder restarts are discontinuities (silence, or a new SSRC), not continuity errors.
- Under a 2 % nftables drop, RTP loss equals the drop counter, and the continuity errors of
  both outputs equal those of the captured stream.

Each test runs 10–15 s of stream. Skipped with its reason when ffmpeg is missing."""
import os
import re
import shutil
import struct
import subprocess
import time
import unittest

from harness import LabExporter, temporary_directory, wait_for, write_config
from mcastlab import (AGENT_ON_R1, TARGET_ON_R1, arrivals, count_arrivals, series, start_switch, stop_process,
                      wait_series)
from netlab import Lab
from test_multicast import group_config

DROP_TABLE = "netprobe_ffdrop"

# Receives one group on one interface address and writes every datagram to a file,
# length-prefixed, until SIGTERM; prints "ready" once joined.
RECORDER = """
import signal, socket, struct, sys
group, port, address, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((group, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(address))
out = open(path, "wb")
def stop(*_):
    out.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while True:
    data = s.recv(65536)
    out.write(struct.pack("!I", len(data)) + data)
    out.flush()
"""


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    records, offset = [], 0
    while offset + 4 <= len(data):
        (length,) = struct.unpack_from("!I", data, offset)
        if offset + 4 + length > len(data):
            break
        records.append(data[offset + 4:offset + 4 + length])
        offset += 4 + length
    return records


def continuity_errors(packets):
    """TR 101 290 1.4 over 188-byte packets: the counter steps on payload packets only, one
    duplicate is legal, discontinuity_indicator frees the counter, the null PID and packets
    with a bad sync byte or TEI are skipped, and the check resynchronises after an error."""
    last, duplicated, errors = {}, {}, 0
    for p in packets:
        if p[0] != 0x47 or p[1] & 0x80:
            continue
        pid = (p[1] & 0x1F) << 8 | p[2]
        control = p[3] >> 4 & 3
        counter = p[3] & 0x0F
        if pid == 0x1FFF or control == 0:
            continue
        discontinuity = bool(control & 2 and p[4] > 0 and p[5] & 0x80)
        if not control & 1:
            if discontinuity:
                last.pop(pid, None)
            continue
        if pid not in last or discontinuity:
            last[pid], duplicated[pid] = counter, False
        elif counter == last[pid]:
            if duplicated[pid]:
                errors += 1
            duplicated[pid] = True
        else:
            if counter != (last[pid] + 1) & 0x0F:
                errors += 1
            last[pid], duplicated[pid] = counter, False
    return errors


def received_mask(sent, received):
    """Which of the `sent` datagrams (in order) are among `received` (a subsequence)."""
    mask, position = [False] * len(sent), 0
    for datagram in received:
        while position < len(sent) and sent[position] != datagram:
            position += 1
        if position == len(sent):
            raise AssertionError("a received datagram that was never sent")
        mask[position] = True
        position += 1
    return mask


def packets_received_whole(sent, mask):
    """The 188-byte packets of the byte stream `sent` forms whose every byte arrived."""
    stream = b"".join(sent)
    assert stream[0] == 0x47 and stream[188] == 0x47, "ffmpeg's stream starts with a packet"
    arrived = bytearray(len(stream))
    offset = 0
    for datagram, ok in zip(sent, mask):
        if ok:
            arrived[offset:offset + len(datagram)] = b"\x01" * len(datagram)
        offset += len(datagram)
    return [stream[i:i + 188] for i in range(0, len(stream) - 187, 188) if all(arrived[i:i + 188])]


def rtp_packets(datagrams):
    """The TS packets of RTP datagrams (ffmpeg's: a 12-byte header, no CSRC or extension)."""
    packets = []
    for datagram in datagrams:
        payload = datagram[12:]
        packets += [payload[i:i + 188] for i in range(0, len(payload) - 187, 188)]
    return packets


def rtp_lost(datagrams):
    """Sequence numbers missing between the first and last received (one SSRC, no wrap
    issues: 16-bit differences)."""
    sequences = [struct.unpack_from("!H", d, 2)[0] for d in datagrams]
    span = sum((b - a) & 0xFFFF for a, b in zip(sequences, sequences[1:])) + 1
    return span - len(set(sequences))


class FfmpegLabTest(unittest.TestCase):
    def setUp(self):
        self.ffmpeg = shutil.which("ffmpeg")
        if not self.ffmpeg:
            self.skipTest("ffmpeg is missing (apt-get install ffmpeg; `make test` installs it)")

    def lab(self, groups):
        """The lab, its switch, nft arrival counters per group and an exporter joined to
        `groups` ({name: (address, extra config)}, port 5000)."""
        lab = Lab.for_test(self, targets=2)
        lab.sysctl("agent", {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.r1.rp_filter": 0})
        start_switch(self, lab)
        count_arrivals(lab, {name: f"ip daddr {address} udp dport 5000" for name, (address, _) in groups.items()})
        text = "".join(group_config(name, address, 5000, extra=extra) for name, (address, extra) in groups.items())
        exporter = LabExporter(self, lab, config=write_config(self, "multicast:\n" + text.replace("multicast:\n", "")))
        for name in groups:
            wait_series(exporter, "netprobe_multicast_membership", name, lambda v: v == 1)
        time.sleep(0.5)  # the switch learns the joins before the stream starts
        return lab, exporter

    def ffmpeg_outputs(self, outputs, seconds, size="160x120", bitrate="500k"):
        """One ffmpeg encoding test video for `seconds`, to each output URL (the muxer is
        `mpegts`, or `rtp_mpegts` for rtp:// URLs)."""
        argv = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-t", str(seconds),
                "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25"]
        for url in outputs:
            muxer = "rtp_mpegts" if url.startswith("rtp://") else "mpegts"
            argv += ["-c:v", "mpeg2video", "-b:v", bitrate, "-f", muxer, url]
        return argv

    def run_ffmpeg(self, lab, argv, timeout):
        process = lab.popen("target", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(process)
            raise
        self.assertEqual(process.returncode, 0, f"ffmpeg failed: {err}")

    def recorder(self, lab, ns, group, address):
        """A recording receiver of `group` in `ns`; returns (process, path)."""
        path = os.path.join(temporary_directory(self), f"{ns}-{group}.bin")
        process = lab.popen(ns, ["python3", "-c", RECORDER, group, "5000", address, path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(stop_process, process)
        self.assertEqual(process.stdout.readline().strip(), "ready", process.stderr.read() if process.poll() else "")
        return process, path

    def wait_all_counted(self, lab, exporter, names, dropped=None):
        """Until the exporter counted every datagram nftables saw arrive for each group (and
        did not drop)."""
        for name in names:
            arrived = arrivals(lab, name) - (dropped or {}).get(name, 0)
            try:
                wait_series(exporter, "netprobe_multicast_packets_received_total", name, lambda v: v >= arrived, timeout=10)
            except AssertionError as error:
                metrics = exporter.metrics()
                seen = {family: series(exporter, family, name, metrics) for family in (
                    "netprobe_multicast_packets_received_total", "netprobe_multicast_socket_drops_total",
                    "netprobe_multicast_packets_duplicate_total", "netprobe_multicast_packets_late_total",
                    "netprobe_multicast_packets_lost_total")}
                unexpected = [line for line in metrics.splitlines()
                              if line.startswith("netprobe_multicast_unexpected_packets_total") and f'name="{name}"' in line]
                raise AssertionError(f"{name}: nft saw {arrived} arrive (after drops), the exporter: {seen}; "
                                     f"{unexpected}") from error

    def ts_counts(self, exporter, name, metrics):
        errors = {t: series(exporter, "netprobe_multicast_mpegts_errors_total", name, metrics, type=t)
                  for t in ("continuity", "sync_byte", "transport_error", "pat_missing")}
        discontinuities = {r: series(exporter, "netprobe_multicast_mpegts_discontinuities_total", name, metrics, reason=r)
                           for r in ("silence", "ssrc_change", "indicator")}
        malformed = series(exporter, "netprobe_multicast_unexpected_packets_total", name, metrics, reason="malformed")
        return errors, discontinuities, malformed

    def test_ffmpeg_outputs_read_clean(self):
        groups = {"plain": ("239.7.7.1", "format: mpegts"), "aligned": ("239.7.7.2", "format: mpegts"),
                  "inrtp": ("239.7.7.3", "format: mpegts")}
        lab, exporter = self.lab(groups)
        sent = self.recorder(lab, "target", "239.7.7.1", TARGET_ON_R1)
        argv = self.ffmpeg_outputs([f"udp://239.7.7.1:5000?ttl=4&localaddr={TARGET_ON_R1}",
                                    f"udp://239.7.7.2:5000?ttl=4&localaddr={TARGET_ON_R1}&pkt_size=1316",
                                    f"rtp://239.7.7.3:5000?ttl=4&localaddr={TARGET_ON_R1}"], seconds=10)
        process = lab.popen("target", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # While the stream runs the RTP jitter is there; once it is silent, not any more.
        wait_series(exporter, "netprobe_multicast_jitter_seconds", "inrtp", lambda v: v >= 0, timeout=10)
        _, err = process.communicate(timeout=40)
        self.assertEqual(process.returncode, 0, f"ffmpeg failed: {err}")
        self.wait_all_counted(lab, exporter, groups)
        stop_process(sent[0])
        sizes = {len(d) for d in read_records(sent[1])}
        # The default output straddles: its datagrams are 1,472 bytes, not whole packets.
        self.assertIn(1472, sizes)
        self.assertTrue(any(size % 188 for size in sizes), sizes)
        metrics = exporter.metrics()
        for name in groups:
            errors, discontinuities, malformed = self.ts_counts(exporter, name, metrics)
            self.assertEqual(malformed, 0, name)
            self.assertEqual(errors, {"continuity": 0, "sync_byte": 0, "transport_error": 0, "pat_missing": 0}, name)
            self.assertEqual(discontinuities, {"silence": 0, "ssrc_change": 0, "indicator": 0}, name)
            self.assertEqual(series(exporter, "netprobe_multicast_packets_received_total", name, metrics),
                             arrivals(lab, name), name)
        self.assertEqual(series(exporter, "netprobe_multicast_packets_lost_total", "inrtp", metrics), 0)
        wait_series(exporter, "netprobe_multicast_receiving", "inrtp", lambda v: v == 0, timeout=5)
        metrics = exporter.metrics()
        self.assertIsNone(series(exporter, "netprobe_multicast_jitter_seconds", "inrtp", metrics))
        self.assertEqual(series(exporter, "netprobe_multicast_rate_packets_per_second", "inrtp", metrics), 0)

    def test_ffmpeg_restarts_are_discontinuities(self):
        # The RTP group's restart_gap outlasts the pauses: there the new SSRC tells the restart.
        groups = {"plain": ("239.7.8.1", "format: mpegts"), "inrtp": ("239.7.8.2", "format: mpegts\nrestart_gap: 10s")}
        lab, exporter = self.lab(groups)
        argv = self.ffmpeg_outputs([f"udp://239.7.8.1:5000?ttl=4&localaddr={TARGET_ON_R1}",
                                    f"rtp://239.7.8.2:5000?ttl=4&localaddr={TARGET_ON_R1}"], seconds=3)
        for run in range(4):  # the first start and three restarts
            if run:
                time.sleep(1)
            self.run_ffmpeg(lab, argv, timeout=30)
        self.wait_all_counted(lab, exporter, groups)
        metrics = exporter.metrics()
        udp_errors, udp_discontinuities, udp_malformed = self.ts_counts(exporter, "plain", metrics)
        rtp_errors, rtp_discontinuities, rtp_malformed = self.ts_counts(exporter, "inrtp", metrics)
        self.assertEqual((udp_errors["continuity"], udp_errors["pat_missing"], udp_malformed), (0, 0, 0))
        self.assertEqual(udp_discontinuities, {"silence": 3, "ssrc_change": 0, "indicator": 0})
        self.assertEqual((rtp_errors["continuity"], rtp_errors["pat_missing"], rtp_malformed), (0, 0, 0))
        self.assertEqual(rtp_discontinuities, {"silence": 0, "ssrc_change": 3, "indicator": 0})
        self.assertEqual(series(exporter, "netprobe_multicast_sequence_resets_total", "inrtp", metrics), 3)
        self.assertEqual(series(exporter, "netprobe_multicast_packets_lost_total", "inrtp", metrics), 0)

    def test_two_percent_drop_against_the_captures(self):
        groups = {"plain": ("239.7.9.1", "format: mpegts"), "inrtp": ("239.7.9.2", "format: mpegts")}
        lab, exporter = self.lab(groups)
        recorders = {(ns, name): self.recorder(lab, ns, address, TARGET_ON_R1 if ns == "target" else AGENT_ON_R1)
                     for name, (address, _) in groups.items() for ns in ("target", "agent")}
        argv = self.ffmpeg_outputs([f"udp://239.7.9.1:5000?ttl=4&localaddr={TARGET_ON_R1}",
                                    f"rtp://239.7.9.2:5000?ttl=4&localaddr={TARGET_ON_R1}"], seconds=15,
                                   size="320x240", bitrate="2M")  # about 100 datagrams/s: 2 % is some 20 drops each
        process = lab.popen("target", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The drop starts once the stream does (a sequence is counted from its first number
        # received) and ends 2 s before it (loss is counted up to the last number received).
        wait_series(exporter, "netprobe_multicast_packets_received_total", "inrtp", lambda v: v >= 10, timeout=10)
        rules = "".join(f"  counter {name} {{}}\n" for name in groups)
        rules += "  chain input {\n    type filter hook prerouting priority -300; policy accept;\n"
        rules += "".join(f"    ip daddr {address} udp dport 5000 numgen random mod 100 < 2 counter name {name} drop\n"
                         for name, (address, _) in groups.items())
        result = lab.run("agent", ["nft", "-f", "-"], input=f"table inet {DROP_TABLE} {{\n{rules}  }}\n}}\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        time.sleep(11)
        # The rules go first, the counters are read after: a packet dropped between the two
        # would be a loss the test does not know of.
        lab.run("agent", ["nft", "flush", "chain", "inet", DROP_TABLE, "input"])
        dropped = {}
        for name in groups:
            listing = lab.run("agent", ["nft", "list", "counter", "inet", DROP_TABLE, name]).stdout
            dropped[name] = int(re.search(r"packets (\d+)", listing).group(1))
        lab.run("agent", ["nft", "delete", "table", "inet", DROP_TABLE])
        _, err = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, f"ffmpeg failed: {err}")
        self.wait_all_counted(lab, exporter, groups, dropped)
        # Silent for no_data_timeout (1 s): the holes still pending are settled.
        wait_series(exporter, "netprobe_multicast_receiving", "inrtp", lambda v: v == 0, timeout=5)
        metrics = exporter.metrics()
        for (ns, name), (recorder, _) in recorders.items():
            stop_process(recorder)
        captured = {key: read_records(path) for key, (_, path) in recorders.items()}
        for name in groups:
            self.assertEqual(len(captured[("agent", name)]), arrivals(lab, name) - dropped[name], name)
        # RTP: the exporter's loss is the drop counter, and the capture's.
        self.assertGreater(dropped["inrtp"], 0)
        self.assertEqual(series(exporter, "netprobe_multicast_packets_lost_total", "inrtp", metrics), dropped["inrtp"])
        self.assertEqual(rtp_lost(captured[("agent", "inrtp")]), dropped["inrtp"])
        # Continuity: the errors of the packets that arrived whole, from the captures.
        expected = {
            "inrtp": continuity_errors(rtp_packets(captured[("agent", "inrtp")])),
            "plain": continuity_errors(packets_received_whole(
                captured[("target", "plain")], received_mask(captured[("target", "plain")], captured[("agent", "plain")]))),
        }
        for name in groups:
            errors, discontinuities, malformed = self.ts_counts(exporter, name, metrics)
            self.assertGreater(expected[name], 0, name)
            self.assertEqual(errors["continuity"], expected[name], name)
            self.assertEqual((errors["sync_byte"], errors["transport_error"], malformed), (0, 0, 0), name)
            self.assertEqual(sum(discontinuities.values()), 0, name)
            self.assertEqual(series(exporter, "netprobe_multicast_socket_drops_total", name, metrics), 0, name)



if __name__ == "__main__":
    unittest.main()
