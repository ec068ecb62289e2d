"""Multicast reception in the network lab: joins that the kernel confirms, interfaces that
vanish and return, streams forwarded by a snooping switch (and by igmpproxy where the kernel
routes multicast), source-specific joins, a switch that loses its querier, and each payload
format's accounting against what the sender says it did."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import yaml

from harness import LabExporter, wait_for, write_config
from mcastlab import (OTHER_RECEIVER, PORT_HOLDER, arrivals, capture_text, count_arrivals, drop_multicast, kernel_groups,
                      sender_report, series, set_switch_port, set_switch_querier, start_capture, start_igmpproxy,
                      start_sender, start_switch, stop_process, wait_series)
from netlab import Lab

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def group_config(name, group, port, interface="r1", extra="", top=""):
    return (f"{top}multicast:\n"
            f"  - name: {name}\n"
            f"    group: {group}\n"
            f"    port: {port}\n"
            f"    interface: {interface}\n"
            f"    no_data_timeout: 1s\n" + "".join(f"    {line}\n" for line in extra.splitlines() if line))


class MulticastLabTest(unittest.TestCase):
    def lab(self):
        lab = Lab.for_test(self, targets=2)
        lab.sysctl("agent", {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.r1.rp_filter": 0})
        return lab

    def test_membership_follows_the_kernel_and_the_interface(self):
        lab = self.lab()
        # A veth pair inside the agent's namespace (this kernel has no dummy driver).
        make = ["ip", "link", "add", "mc0", "type", "veth", "peer", "name", "mc1"]
        up = ["sh", "-c", "ip link set mc0 up && ip link set mc1 up"]
        for argv in (make, up):
            self.assertEqual(lab.run("agent", argv).returncode, 0)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("dummy", "239.9.9.9", 5000, "mc0")
                                                               + group_config("v6", '"ff15::9"', 5000, "mc0").replace("multicast:\n", "")))
        wait_series(exporter, "netprobe_multicast_membership", "dummy", lambda v: v == 1)
        wait_series(exporter, "netprobe_multicast_membership", "v6", lambda v: v == 1)
        self.assertIn("090909EF", kernel_groups(lab))
        self.assertIn("ff150000000000000000000000000009", lab.run("agent", ["cat", "/proc/net/igmp6"]).stdout)
        lab.run("agent", ["ip", "link", "del", "mc0"])
        wait_series(exporter, "netprobe_multicast_membership", "dummy", lambda v: v == 0)
        wait_series(exporter, "netprobe_multicast_membership", "v6", lambda v: v == 0)
        self.assertEqual(series(exporter, "netprobe_multicast_join_errors_total", "dummy", errno="ENODEV"), 1)
        self.assertIn("interface missing", exporter.log())
        for argv in (make, up):
            self.assertEqual(lab.run("agent", argv).returncode, 0)
        wait_series(exporter, "netprobe_multicast_membership", "dummy", lambda v: v == 1)
        wait_series(exporter, "netprobe_multicast_membership", "v6", lambda v: v == 1, timeout=10)
        self.assertIn("090909EF", kernel_groups(lab))
        self.assertEqual(series(exporter, "netprobe_multicast_join_errors_total", "dummy", errno="ENODEV"), 1)

    def test_a_membership_the_kernel_lost_is_joined_again(self):
        lab = self.lab()
        make = "ip link add mc0 index 4242 type veth peer name mc1 && ip link set mc0 up && ip link set mc1 up"
        self.assertEqual(lab.run("agent", ["sh", "-c", make]).returncode, 0)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("lost", "239.9.9.8", 5000, "mc0")))
        wait_series(exporter, "netprobe_multicast_membership", "lost", lambda v: v == 1)
        # Recreated under the same index at once: the agent's interface check sees nothing
        # change, but the kernel dropped the membership with the old device. If the
        # once-a-second check fell into the instant the device was gone, the missing
        # interface's path rejoined instead: then try again, so the repair itself is tested.
        for _ in range(3):
            missing = exporter.log().count("interface missing")
            self.assertEqual(lab.run("agent", ["sh", "-c", "ip link del mc0 && " + make]).returncode, 0)
            self.assertNotIn("080909EF", kernel_groups(lab))
            wait_for(lambda: "080909EF" in kernel_groups(lab), timeout=15, what="the agent to join again")
            wait_series(exporter, "netprobe_multicast_membership", "lost", lambda v: v == 1)
            if exporter.log().count("interface missing") == missing:
                break
        self.assertIn("the kernel no longer lists the membership", exporter.log())

    def test_stream_through_a_switch_then_silence(self):
        self.stream_then_silence(start_switch)

    def test_stream_through_a_router_then_silence(self):
        self.stream_then_silence(start_igmpproxy)

    def stream_then_silence(self, start_fabric):
        lab = self.lab()
        start_fabric(self, lab)
        count_arrivals(lab, {"stream": "ip daddr 239.1.1.1 udp dport 5001"})
        sender = start_sender(lab, "239.1.1.1", 5001, "raw", rate=200)
        capture = start_capture(self, lab, "agent", "r1", "igmp")
        # The stream runs, but the switch or router forwards nothing to the agent's link
        # before the join.
        time.sleep(1.5)
        self.assertIsNone(sender.poll())
        self.assertEqual(arrivals(lab, "stream"), 0)
        exporter = LabExporter(self, lab, config=write_config(
            self, group_config("tv", "239.1.1.1", 5001, extra="expected_rate: 200")))
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 1)
        self.assertGreater(arrivals(lab, "stream"), 0)
        # Three complete seconds give a rate.
        rate = wait_series(exporter, "netprobe_multicast_rate_packets_per_second", "tv", lambda v: v > 0, timeout=15)
        time.sleep(3)
        metrics = exporter.metrics()
        rate = series(exporter, "netprobe_multicast_rate_packets_per_second", "tv", metrics)
        self.assertAlmostEqual(rate, 200, delta=30)
        self.assertAlmostEqual(series(exporter, "netprobe_multicast_rate_deviation_ratio", "tv", metrics), 0, delta=0.15)
        self.assertEqual(series(exporter, "netprobe_multicast_membership", "tv", metrics), 1)
        latency = series(exporter, "netprobe_multicast_join_latency_seconds", "tv", metrics)
        self.assertIsNotNone(latency)
        self.assertLess(latency, 5)
        last = series(exporter, "netprobe_multicast_last_packet_timestamp_seconds", "tv", metrics)
        self.assertLess(abs(time.time() - last), 2)
        packets = series(exporter, "netprobe_multicast_packets_received_total", "tv", metrics)
        self.assertEqual(series(exporter, "netprobe_multicast_bytes_received_total", "tv", metrics), 100 * packets)
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "tv", metrics,
                                reason="wrong_source"), 0)
        self.assertIn('source=""', next(iter(exporter.samples("netprobe_multicast_packets_received_total", metrics))))
        # The agent's membership report on the wire (IGMPv2 or v3, as the querier decides).
        self.assertRegex(capture_text(capture), r"(igmp v2 report 239\.1\.1\.1|igmp v3 report.*239\.1\.1\.1)")
        stop_process(sender)
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 0, timeout=5)
        wait_series(exporter, "netprobe_multicast_rate_deviation_ratio", "tv", lambda v: v == -1, timeout=15)
        start_sender(lab, "239.1.1.1", 5001, "raw", rate=200)
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 1, timeout=10)

    def test_a_switch_without_a_querier_stops_the_stream_after_the_exporter_said_so(self):
        # The failure operators meet most: a snooping switch that no querier keeps. A router
        # queried once and went away; the agent's membership ages out of the switch and the
        # stream stops. The exporter must have reported the missing querier before that.
        lab = self.lab()
        start_switch(self, lab, querier=False, membership_interval=6, querier_interval=10)
        start_sender(lab, "239.1.4.1", 5015, "raw", rate=100)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("tv", "239.1.4.1", 5015) + (
            "querier_watch:\n  interfaces: [r1]\n  protocols: [igmp]\n  query_interval: 1s\n"
            "  query_response_interval: 1s\n  robustness: 2\n")))
        wait_series(exporter, "netprobe_multicast_membership", "tv", lambda v: v == 1)
        present = 'netprobe_querier_present{interface="r1",protocol="igmp"}'
        # One IGMPv3 query (interval 1 s, maximum response 1 s) from a querier on the switch
        # itself, as a multicast router or proxy there would send it (the switch does not
        # flood link-local multicast from its other ports to the agent's).
        querier = lab.popen("r1", [sys.executable, os.path.join(HERE, "querier.py"), "br0", "--rounds", "1",
                                       "igmp3,qqic=1,mrc=10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = querier.communicate(timeout=10)
        self.assertEqual(querier.returncode, 0, err)
        queried = time.monotonic()
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 1, timeout=5)
        wait_for(lambda: exporter.sample(f'netprobe_querier_info{{interface="r1",protocol="igmp",querier="198.18.1.1",version="3"}}') == 1,
                 what="the querier seen")
        # Sample until the stream has stopped: when did the exporter first say "no querier"?
        said_absent = None
        while True:
            self.assertLess(time.monotonic() - queried, 20, "the stream never stopped: the switch kept forwarding")
            metrics = exporter.metrics()
            if said_absent is None and LabExporter.value(metrics, present) == 0:
                said_absent = time.time()
            if series(exporter, "netprobe_multicast_receiving", "tv", metrics) == 0:
                break
            time.sleep(0.1)
        last_packet = series(exporter, "netprobe_multicast_last_packet_timestamp_seconds", "tv", metrics)
        self.assertIsNotNone(said_absent, "netprobe_querier_present never dropped to 0")
        self.assertLess(said_absent, last_packet, "the exporter said the querier was gone only after the stream stopped")
        # The shipped alert's condition held (its `for:` is a production duration).
        with open(os.path.join(ROOT, "deploy", "prometheus", "netprobe.alerts.yml")) as f:
            rule = next(r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if r.get("alert") == "NetprobeNoMulticastQuerier")
        self.assertEqual(rule["expr"].strip(), "netprobe_querier_present == 0")
        self.assertEqual(LabExporter.value(metrics, present), 0)
        # The switch's own querier, once the other one has expired in it: the stream comes back and
        # stays past several membership intervals.
        time.sleep(max(0.0, queried + 10.5 - time.monotonic()))
        set_switch_querier(lab, True)
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 1, timeout=10)
        wait_for(lambda: exporter.sample(present) == 1, what="the switch's querier seen")
        before = series(exporter, "netprobe_multicast_packets_received_total", "tv")
        for _ in range(14):  # 14 s: more than two membership intervals
            time.sleep(1)
            self.assertEqual(series(exporter, "netprobe_multicast_receiving", "tv"), 1, "the stream stopped again")
        self.assertGreater(series(exporter, "netprobe_multicast_packets_received_total", "tv") - before, 1200)
        self.assertEqual(exporter.sample(f'netprobe_querier_info{{interface="r1",protocol="igmp",querier="198.18.1.1",version="3"}}'), 1)

    def test_malformed_datagrams_are_not_traffic(self):
        lab = self.lab()
        start_switch(self, lab)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("bad", "239.1.3.1", 5011, extra="format: beacon")))
        wait_series(exporter, "netprobe_multicast_membership", "bad", lambda v: v == 1)
        time.sleep(0.5)  # the switch learns the join before the stream starts
        # 100 zero bytes: no beacon magic, so every datagram is malformed.
        junk = sender_report(start_sender(lab, "239.1.3.1", 5011, "raw", rate=300, count=300))
        wait_series(exporter, "netprobe_multicast_unexpected_packets_total", "bad", lambda v: v >= junk["sent"],
                    reason="malformed")
        metrics = exporter.metrics()
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "bad", metrics, reason="malformed"),
                         junk["sent"])
        for family in ("packets_received_total", "bytes_received_total", "receiving"):
            self.assertEqual(series(exporter, f"netprobe_multicast_{family}", "bad", metrics), 0, family)
        for family in ("join_latency_seconds", "last_packet_timestamp_seconds"):
            self.assertIsNone(series(exporter, f"netprobe_multicast_{family}", "bad", metrics), family)
        # Beacons afterwards are the stream's first traffic.
        beacons = sender_report(start_sender(lab, "239.1.3.1", 5011, "beacon", rate=300, count=300))
        wait_series(exporter, "netprobe_multicast_packets_received_total", "bad", lambda v: v >= beacons["sent"])
        metrics = exporter.metrics()
        self.assertEqual(series(exporter, "netprobe_multicast_packets_received_total", "bad", metrics), beacons["sent"])
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "bad", metrics, reason="malformed"),
                         junk["sent"])
        self.assertIsNotNone(series(exporter, "netprobe_multicast_join_latency_seconds", "bad", metrics))

    def test_socket_drops_are_counted_apart_from_loss(self):
        lab = self.lab()
        start_switch(self, lab)
        # A 4 KiB buffer holds a handful of datagrams (root: SO_RCVBUFFORCE grants it as asked).
        exporter = LabExporter(self, lab, config=write_config(self, group_config(
            "burst", "239.1.3.2", 5012,
            extra="format: sequence\nsequence: {offset: 0, width: 4, endianness: little}\nreceive_buffer: 4096")))
        wait_series(exporter, "netprobe_multicast_membership", "burst", lambda v: v == 1)
        self.assertNotIn("receive buffer capped", exporter.log())
        time.sleep(0.5)  # the switch learns the join before the stream starts
        first = sender_report(start_sender(lab, "239.1.3.2", 5012, "sequence", rate=500, count=100))
        wait_series(exporter, "netprobe_multicast_packets_received_total", "burst", lambda v: v >= first["sent"])
        # The agent stops reading (SIGSTOP, by PID) while 1,000 datagrams arrive: the socket
        # keeps a few and drops the rest. The sender paces them, so the lab's links lose none.
        os.kill(exporter.process.pid, signal.SIGSTOP)
        self.addCleanup(lambda: exporter.process.poll() is None and os.kill(exporter.process.pid, signal.SIGCONT))
        burst = sender_report(start_sender(lab, "239.1.3.2", 5012, "sequence", rate=5000, count=1000, start=100))
        os.kill(exporter.process.pid, signal.SIGCONT)
        last = sender_report(start_sender(lab, "239.1.3.2", 5012, "sequence", rate=500, count=100, start=1100))
        sent = first["sent"] + burst["sent"] + last["sent"]

        def accounted():
            metrics = exporter.metrics()
            return (series(exporter, "netprobe_multicast_packets_received_total", "burst", metrics)
                    + series(exporter, "netprobe_multicast_socket_drops_total", "burst", metrics)) >= sent
        wait_for(accounted, timeout=10, what="every datagram received or dropped")
        metrics = exporter.metrics()
        drops = series(exporter, "netprobe_multicast_socket_drops_total", "burst", metrics)
        received = series(exporter, "netprobe_multicast_packets_received_total", "burst", metrics)
        self.assertGreater(drops, 500)
        self.assertEqual(received + drops, sent)
        # The host's drops are not the network's loss, nor anything else.
        self.assertEqual(self.counters(exporter, metrics, "burst"),
                         {"received": received, "lost": 0, "duplicate": 0, "late": 0, "resets": 0})

    def test_a_capped_receive_buffer_is_logged(self):
        lab = self.lab()
        with open("/proc/sys/net/core/rmem_max") as f:
            rmem_max = int(f.read())
        if 2 * rmem_max > 1 << 30:
            self.skipTest(f"net.core.rmem_max is {rmem_max}: receive_buffer cannot ask for more")
        # As nobody: no CAP_NET_ADMIN, so SO_RCVBUFFORCE fails and rmem_max caps SO_RCVBUF.
        exporter = LabExporter(self, lab, user=65534, config=write_config(self, group_config(
            "capped", "239.1.3.3", 5013, extra=f"receive_buffer: {2 * rmem_max}")))
        wait_series(exporter, "netprobe_multicast_membership", "capped", lambda v: v == 1)
        wait_for(lambda: "receive buffer capped" in exporter.log(), timeout=5, what="the capped buffer's warning")
        self.assertRegex(exporter.log(), rf"receive buffer capped.*bytes={rmem_max}\b.*wanted={2 * rmem_max}\b")

    def test_source_specific_join_counts_only_its_source(self):
        lab = self.lab()
        # An IGMPv2 switch knows no sources: it forwards every sender of the group.
        start_switch(self, lab, igmp_version=2)
        wanted, other = lab.target_v4(0), "198.18.3.2"
        # What reaches the agent's link from the other sender, before any socket filters it.
        count_arrivals(lab, {"other": f"ip saddr {other} ip daddr 239.2.2.2 udp dport 5002"})
        start_sender(lab, "239.2.2.2", 5002, "raw", rate=100, bind=wanted)
        start_sender(lab, "239.2.2.2", 5002, "raw", rate=100)
        exporter = LabExporter(self, lab, config=write_config(
            self, group_config("ssm", "239.2.2.2", 5002, extra=f'sources: ["{wanted}"]')))
        wait_series(exporter, "netprobe_multicast_packets_received_total", "ssm", lambda v: v >= 300, source=wanted)
        metrics = exporter.metrics()
        received = exporter.samples("netprobe_multicast_packets_received_total", metrics)
        self.assertEqual(len(received), 1, received)
        self.assertNotIn(other, metrics)
        # The switch forwards the other sender too: it arrives at the agent at the same rate,
        # and the source-specific socket never passes it on.
        self.assertGreater(arrivals(lab, "other"), 250)
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "ssm", metrics,
                                reason="wrong_source"), 0)
        self.assertEqual(series(exporter, "netprobe_multicast_membership", "ssm", metrics, source=wanted), 1)
        # /proc/net/mcfilter: group and source in network byte order, INCLUDE mode.
        mcfilter = lab.run("agent", ["cat", "/proc/net/mcfilter"]).stdout
        self.assertRegex(mcfilter, r"r1\s+0xef020202\s+0xc6130001\s+1\s+0")

    @staticmethod
    def scrape_both(receiver, sender):
        """Both expositions, scraped at the same time: (receiver's, sender's, seconds the two
        scrapes spanned, which bounds how far apart their counters were read)."""
        results = {}
        threads = [threading.Thread(target=lambda k=key, e=exporter: results.__setitem__(k, e.metrics()))
                   for key, exporter in (("rx", receiver), ("tx", sender))]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results["rx"], results["tx"], time.monotonic() - start

    def test_beacons_between_two_agents_with_and_without_loss(self):
        lab = self.lab()
        start_switch(self, lab)
        rate = 200
        sender = LabExporter(self, lab, namespace="target", config=write_config(
            self, f"beacons:\n  - {{name: b1, group: 239.3.3.3, port: 5003, interface: r1, rate: {rate}, ttl: 4, size: 100,"
                  " stream_id: 42}\n"))
        receiver = LabExporter(self, lab, config=write_config(
            self, group_config("beacon", "239.3.3.3", 5003, extra="format: beacon\nclock_synchronized: true")))

        def sent(metrics):
            values = sender.samples("netprobe_beacon_packets_sent_total", metrics)
            self.assertEqual(len(values), 1, values)
            return list(values.values())[0]

        def received(metrics):
            return series(receiver, "netprobe_multicast_packets_received_total", "beacon", metrics)

        def lost(metrics):
            return series(receiver, "netprobe_multicast_packets_lost_total", "beacon", metrics)

        # Measure from a baseline taken once the stream flows: the first datagrams after the
        # join may come before the membership settles (a router can deliver one it queued
        # while its route was unresolved), a gap that is not the network's loss.
        wait_series(receiver, "netprobe_multicast_packets_received_total", "beacon", lambda v: v >= 200, timeout=20)
        time.sleep(1)
        rx0, tx0, spread0 = self.scrape_both(receiver, sender)
        wait_series(receiver, "netprobe_multicast_packets_received_total", "beacon", lambda v: v >= received(rx0) + 800, timeout=20)
        rx1, tx1, spread1 = self.scrape_both(receiver, sender)
        self.assertEqual(lost(rx1), lost(rx0))
        self.assertEqual(series(receiver, "netprobe_multicast_packets_duplicate_total", "beacon", rx1), 0)
        self.assertEqual(series(receiver, "netprobe_multicast_unexpected_packets_total", "beacon", rx1, reason="malformed"), 0)
        # What the sender says it sent is what arrived: equal but for what was sent while
        # the two scrapes of each pair ran (and a datagram or two in flight).
        slack = rate * (spread0 + spread1) + 2
        self.assertLessEqual(abs((received(rx1) - received(rx0)) - (sent(tx1) - sent(tx0))), slack,
                             f"received {received(rx1) - received(rx0)}, sent {sent(tx1) - sent(tx0)}, slack {slack:.0f}")
        # The sender failed no send; its skip counter is exported (skips are the sender's
        # stalls, which take no sequence number, so they are in neither count above).
        self.assertEqual(sender.samples("netprobe_beacon_send_errors_total", tx1), {})
        self.assertEqual(len(sender.samples("netprobe_beacon_packets_skipped_total", tx1)), 1)
        # Any-source: one stream, source="" (the beacon decoder still tells senders apart).
        self.assertEqual(list(receiver.samples("netprobe_multicast_packets_received_total", rx1))[0].count('source=""'), 1)
        # The namespaces share one clock, so the one-way delay is the path's: well under 100 ms.
        count = series(receiver, "netprobe_multicast_one_way_delay_seconds_count", "beacon", rx1)
        total = series(receiver, "netprobe_multicast_one_way_delay_seconds_sum", "beacon", rx1)
        self.assertGreater(count, 900)
        self.assertLess(total / count, 0.1)
        self.assertIsNotNone(series(receiver, "netprobe_multicast_jitter_seconds", "beacon", rx1))
        self.assertGreater(sent(tx1), 1000)
        info = list(sender.samples("netprobe_beacon_info", tx1))[0]
        self.assertIn('stream_id="42"', info)
        # 10% of the datagrams dropped on the way in: about 10% counted lost, nothing else,
        # and every datagram sent is either received or lost.
        rx0, tx0, spread0 = self.scrape_both(receiver, sender)
        drop_multicast(lab, 10)
        time.sleep(8)
        drop_multicast(lab, 0)
        time.sleep(1)  # holes are counted lost once 64 later numbers arrived (0.32 s)
        rx1, tx1, spread1 = self.scrape_both(receiver, sender)
        got, missing, sent_now = received(rx1) - received(rx0), lost(rx1) - lost(rx0), sent(tx1) - sent(tx0)
        self.assertAlmostEqual(missing / (got + missing), 0.10, delta=0.035)
        slack = rate * (spread0 + spread1) + 2
        self.assertLessEqual(abs(got + missing - sent_now), slack, f"received {got} + lost {missing}, sent {sent_now}, slack {slack:.0f}")
        self.assertEqual(series(receiver, "netprobe_multicast_packets_duplicate_total", "beacon", rx1), 0)
        self.assertEqual(series(receiver, "netprobe_multicast_packets_late_total", "beacon", rx1), 0)
        self.assertEqual(series(receiver, "netprobe_multicast_sequence_resets_total", "beacon", rx1), 0)
        self.assertEqual(sender.samples("netprobe_beacon_send_errors_total", tx1), {})

    def test_beacon_socket_that_cannot_open_counts_once(self):
        lab = self.lab()
        # A veth pair inside the agent's namespace, IPv6 off on mc0: an IPv6 beacon's
        # connect() fails (ENETUNREACH or EADDRNOTAVAIL) at every retry, once a second.
        for argv in (["ip", "link", "add", "mc0", "type", "veth", "peer", "name", "mc1"],
                     ["sysctl", "-qw", "net.ipv6.conf.mc0.disable_ipv6=1"],
                     ["sh", "-c", "ip link set mc0 up && ip link set mc1 up"]):
            self.assertEqual(lab.run("agent", argv).returncode, 0, argv)
        exporter = LabExporter(self, lab, config=write_config(
            self, 'beacons:\n  - {name: b6, group: "ff15::42", port: 5011, interface: mc0, rate: 50}\n'))
        failure = "cannot open the beacon's socket"
        wait_for(lambda: failure in exporter.log(), what="the open failure logged")
        time.sleep(3.5)  # three more retries, failing the same way
        errors = exporter.samples("netprobe_beacon_send_errors_total")
        self.assertEqual(list(errors.values()), [1], errors)
        self.assertRegex(next(iter(errors)), r'errno="(ENETUNREACH|EADDRNOTAVAIL)"')
        self.assertEqual(exporter.log().count(failure), 1, exporter.log())
        self.assertEqual(list(exporter.samples("netprobe_beacon_packets_sent_total").values()), [0])
        # IPv6 back on: the next retry opens the socket and the beacon is sent.
        self.assertEqual(lab.run("agent", ["sysctl", "-qw", "net.ipv6.conf.mc0.disable_ipv6=0"]).returncode, 0)
        wait_for(lambda: list(exporter.samples("netprobe_beacon_packets_sent_total").values())[0] >= 50, timeout=15,
                 what="the beacon sending once IPv6 is back")
        self.assertEqual(list(exporter.samples("netprobe_beacon_send_errors_total").values()), [1])

    def test_join_latency_test_measures_then_fails_when_nothing_is_forwarded(self):
        lab = self.lab()
        start_switch(self, lab)
        start_sender(lab, "239.4.4.4", 5004, "sequence", rate=100)
        exporter = LabExporter(self, lab, config=write_config(self, group_config(
            "rejoin", "239.4.4.4", 5004, extra="format: sequence\nsequence: {offset: 0, width: 4, endianness: little}\n"
                                                "join_latency_test: {interval: 10s, leave_wait: 1s, deadline: 3s}")))
        wait_series(exporter, "netprobe_multicast_join_test_latency_seconds_count", "rejoin", lambda v: v >= 1, timeout=30)
        time.sleep(2)
        metrics = exporter.metrics()
        latency = series(exporter, "netprobe_multicast_join_test_latency_seconds_sum", "rejoin", metrics)
        self.assertLess(latency, 3)
        self.assertEqual(series(exporter, "netprobe_multicast_join_test_failures_total", "rejoin", metrics), 0)
        # The ~100 datagrams sent while the group was left are not the stream's loss.
        self.assertEqual(series(exporter, "netprobe_multicast_packets_lost_total", "rejoin", metrics), 0)
        self.assertEqual(series(exporter, "netprobe_multicast_sequence_resets_total", "rejoin", metrics), 0)
        # The switch's port to the senders stops forwarding: the next test times out.
        set_switch_port(lab, "target", False)
        wait_series(exporter, "netprobe_multicast_join_test_failures_total", "rejoin", lambda v: v >= 1, timeout=30)
        self.assertIn("no datagram before the deadline", exporter.log())

    def run_stream(self, fmt, config_extra, **faults):
        """Sends 1,500 datagrams of `fmt` with `faults` through the switch to an agent joined
        with `config_extra`; returns (the sender's report, the agent's metrics text, exporter)."""
        lab = self.lab()
        start_switch(self, lab)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("feed", "239.5.5.5", 5005, extra=config_extra)))
        wait_series(exporter, "netprobe_multicast_membership", "feed", lambda v: v == 1)
        time.sleep(0.5)  # the switch learns the join before the stream starts
        report = sender_report(start_sender(lab, "239.5.5.5", 5005, fmt, rate=500, count=1500, **faults))
        wait_series(exporter, "netprobe_multicast_packets_received_total", "feed",
                    lambda v: v >= report["sent"], timeout=10)
        return report, exporter.metrics(), exporter

    def counters(self, exporter, metrics, name="feed"):
        return {kind: series(exporter, f"netprobe_multicast_packets_{kind}_total", name, metrics)
                for kind in ("received", "lost", "duplicate", "late")} | {
            "resets": series(exporter, "netprobe_multicast_sequence_resets_total", name, metrics)}

    def test_sequence_field_gaps_duplicates_and_reordering(self):
        report, metrics, exporter = self.run_stream(
            "sequence", "format: sequence\nsequence: {offset: 0, width: 4, endianness: little}",
            skip="100,101,102", duplicate="300", swap="500")
        self.assertEqual(report, {"sent": 1498, "skipped": 3, "duplicated": 1, "swapped": 1})
        self.assertEqual(self.counters(exporter, metrics),
                         {"received": 1498, "lost": 3, "duplicate": 1, "late": 1, "resets": 0})
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "feed", metrics, reason="malformed"), 0)

    def test_rtp_ssrc_change_is_a_reset_not_loss(self):
        # From 65,000: the 16-bit sequence wraps at the 536th packet. Each timestamp claims
        # 900 units (10 ms at 90 kHz) more per packet than its send time: every transit
        # difference is -900, so RFC 3550's jitter converges on exactly 0.010 s.
        report, metrics, exporter = self.run_stream("rtp", "format: rtp", start=65000, skip="65200", ssrc_change="65900",
                                                    timestamp_skew=900)
        counters = self.counters(exporter, metrics)
        self.assertEqual(counters, {"received": report["sent"], "lost": 1, "duplicate": 0, "late": 0, "resets": 1})
        jitter = series(exporter, "netprobe_multicast_jitter_seconds", "feed", metrics)
        self.assertIsNotNone(jitter)
        self.assertAlmostEqual(jitter, 0.010, delta=0.002)

    def test_mpegts_continuity_errors(self):
        report, metrics, exporter = self.run_stream("rtp-mpegts", "format: mpegts", cc_error="400,900")
        errors = {t: series(exporter, "netprobe_multicast_mpegts_errors_total", "feed", metrics, type=t)
                  for t in ("continuity", "sync_byte", "transport_error", "pat_missing")}
        # Each bad counter breaks the run twice: at the bad packet and at the next one.
        self.assertEqual(errors["continuity"], 4)
        self.assertEqual((errors["sync_byte"], errors["transport_error"], errors["pat_missing"]), (0, 0, 0))
        self.assertEqual(self.counters(exporter, metrics)["lost"], 0)
        # Timestamps are the send times: the jitter is the lab path's, about 0.
        self.assertLess(series(exporter, "netprobe_multicast_jitter_seconds", "feed", metrics), 0.002)

    def test_plain_mpegts_continuity_errors(self):
        # Transport packets straight in UDP, no RTP: counted by their continuity counters only.
        report, metrics, exporter = self.run_stream("mpegts", "format: mpegts", cc_error="400,900")
        errors = {t: series(exporter, "netprobe_multicast_mpegts_errors_total", "feed", metrics, type=t)
                  for t in ("continuity", "sync_byte", "transport_error", "pat_missing")}
        self.assertEqual(errors, {"continuity": 4, "sync_byte": 0, "transport_error": 0, "pat_missing": 0})
        self.assertEqual(series(exporter, "netprobe_multicast_packets_received_total", "feed", metrics), report["sent"])
        self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", "feed", metrics, reason="malformed"), 0)
        # No sequence numbers and no clock: no sequence counters and no jitter series.
        for family in ("packets_lost_total", "packets_late_total", "sequence_resets_total", "jitter_seconds"):
            self.assertIsNone(series(exporter, f"netprobe_multicast_{family}", "feed", metrics), family)

    def test_five_percent_loss_is_measured(self):
        lab = self.lab()
        start_switch(self, lab)
        exporter = LabExporter(self, lab, config=write_config(self, group_config(
            "feed", "239.6.6.6", 5006, extra="format: sequence\nsequence: {offset: 0, width: 4, endianness: little}")))
        wait_series(exporter, "netprobe_multicast_membership", "feed", lambda v: v == 1)
        time.sleep(0.5)
        drop_multicast(lab, 5)
        report = sender_report(start_sender(lab, "239.6.6.6", 5006, "sequence", rate=1000, count=6000))
        time.sleep(1)
        metrics = exporter.metrics()
        received = series(exporter, "netprobe_multicast_packets_received_total", "feed", metrics)
        lost = series(exporter, "netprobe_multicast_packets_lost_total", "feed", metrics)
        # Holes in the last 64 numbers are still pending when the stream stops.
        self.assertGreaterEqual(received + lost, report["sent"] - 64)
        self.assertAlmostEqual(lost / (received + lost), 0.05, delta=0.015)
        self.assertEqual(series(exporter, "netprobe_multicast_packets_duplicate_total", "feed", metrics), 0)
        self.assertEqual(series(exporter, "netprobe_multicast_packets_late_total", "feed", metrics), 0)

    def test_another_program_on_the_same_port_changes_nothing(self):
        lab = self.lab()
        start_switch(self, lab)
        # Another receiver on the agent, joined to another group on our port.
        other = lab.popen("agent", ["python3", "-c", OTHER_RECEIVER, "239.8.8.2", "5008", "198.18.1.2"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Two groups of ours on that port too: each socket must get its own group only.
        exporter = LabExporter(self, lab, config=write_config(
            self, group_config("ours", "239.8.8.1", 5008) + group_config("ours2", "239.8.8.3", 5008).replace("multicast:\n", "")))
        wait_series(exporter, "netprobe_multicast_membership", "ours", lambda v: v == 1)
        wait_series(exporter, "netprobe_multicast_membership", "ours2", lambda v: v == 1)
        wait_for(lambda: "020808EF" in kernel_groups(lab), what="the other program's join of 239.8.8.2")
        time.sleep(0.5)
        theirs = start_sender(lab, "239.8.8.2", 5008, "raw", rate=500, count=1000)
        ours2 = start_sender(lab, "239.8.8.3", 5008, "raw", rate=300, count=600)
        ours = sender_report(start_sender(lab, "239.8.8.1", 5008, "raw", rate=200, count=400))
        sender_report(theirs)
        ours2 = sender_report(ours2)
        time.sleep(0.5)
        metrics = exporter.metrics()
        self.assertEqual(series(exporter, "netprobe_multicast_packets_received_total", "ours", metrics), ours["sent"])
        self.assertEqual(series(exporter, "netprobe_multicast_packets_received_total", "ours2", metrics), ours2["sent"])
        for name in ("ours", "ours2"):
            for reason in ("wrong_group", "wrong_source"):
                self.assertEqual(series(exporter, "netprobe_multicast_unexpected_packets_total", name, metrics, reason=reason), 0)
        stop_process(other)
        self.assertGreater(int(other.stdout.read().strip() or 0), 900, "the other program got its group")

    def test_a_port_held_without_reuseaddr_is_one_join_error_until_it_is_free(self):
        lab = self.lab()
        # Linux lets a socket with SO_REUSEADDR alone (ours) share no port with one that set
        # SO_REUSEPORT alone: every attempt (one a second) fails with EADDRINUSE. Were ours to
        # set SO_REUSEPORT too, the two would share the port and this test would fail.
        holder = lab.popen("agent", ["python3", "-c", PORT_HOLDER, "5014"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(holder.stdout.readline().strip(), "bound")
        exporter = LabExporter(self, lab, config=write_config(self, group_config("held", "239.1.3.4", 5014)))
        wait_series(exporter, "netprobe_multicast_join_errors_total", "held", lambda v: v >= 1, errno="EADDRINUSE")
        time.sleep(3.5)  # three or four more attempts: the same episode
        metrics = exporter.metrics()
        self.assertEqual(series(exporter, "netprobe_multicast_join_errors_total", "held", metrics, errno="EADDRINUSE"), 1)
        self.assertEqual(series(exporter, "netprobe_multicast_membership", "held", metrics), 0)
        self.assertEqual(exporter.log().count("cannot join the group"), 1)
        self.assertIn("SO_REUSEPORT", exporter.log())  # the hint names the cause
        stop_process(holder)
        wait_series(exporter, "netprobe_multicast_membership", "held", lambda v: v == 1, timeout=10)
        self.assertEqual(series(exporter, "netprobe_multicast_join_errors_total", "held", errno="EADDRINUSE"), 1)

    def test_link_down_and_up_rejoins(self):
        lab = self.lab()
        start_switch(self, lab)
        start_sender(lab, "239.1.1.9", 5009, "raw", rate=200)
        exporter = LabExporter(self, lab, config=write_config(self, group_config("tv", "239.1.1.9", 5009)))
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 1)
        lab.run("agent", ["ip", "link", "set", "r1", "down"])
        wait_series(exporter, "netprobe_multicast_receiving", "tv", lambda v: v == 0, timeout=5)
        lab.run("agent", ["ip", "link", "set", "r1", "up"])
        before = series(exporter, "netprobe_multicast_packets_received_total", "tv")
        wait_series(exporter, "netprobe_multicast_packets_received_total", "tv", lambda v: v > before + 200, timeout=30)
        self.assertEqual(series(exporter, "netprobe_multicast_membership", "tv"), 1)
        self.assertEqual(series(exporter, "netprobe_multicast_receiving", "tv"), 1)

    def test_source_specific_first_beside_any_source_stays_a_member_across_a_link_flap(self):
        self.source_specific_beside_any_source(ssm_first=True)

    def test_any_source_first_beside_source_specific_stays_a_member_across_a_link_flap(self):
        self.source_specific_beside_any_source(ssm_first=False)

    def source_specific_beside_any_source(self, ssm_first):
        """A source-specific and an any-source group on one interface, joined in the order
        given. /proc/net/mcfilter hides the source-specific group's sources whenever an
        any-source group heads the interface's list (joined after it, or 224.0.0.1 re-added
        by a link up); the kernel's membership holds all along, so the gauge must stay 1,
        with no repair rejoin. Across a link down, each group counts lost exactly what never
        reached the agent (nftables counts what arrived; the sender what it sent)."""
        lab = self.lab()
        start_switch(self, lab)
        wanted = lab.target_v4(0)
        fmt = "format: sequence\nsequence: {offset: 0, width: 4, endianness: little}"
        ssm = group_config("ssm", "239.2.4.1", 5024, extra=f'sources: ["{wanted}"]\n' + fmt)
        asm = group_config("asm", "239.2.4.2", 5024, extra=fmt)
        first, second = (ssm, asm) if ssm_first else (asm, ssm)
        exporter = LabExporter(self, lab, config=write_config(self, first + second.replace("multicast:\n", "")))
        for name in ("ssm", "asm"):
            wait_series(exporter, "netprobe_multicast_membership", name, lambda v: v == 1)
        count_arrivals(lab, {"ssm": f"ip saddr {wanted} ip daddr 239.2.4.1 udp dport 5024",
                             "asm": "ip daddr 239.2.4.2 udp dport 5024"})
        time.sleep(0.5)  # the switch learns the joins before the streams start
        senders = {"ssm": start_sender(lab, "239.2.4.1", 5024, "sequence", rate=100, bind=wanted),
                   "asm": start_sender(lab, "239.2.4.2", 5024, "sequence", rate=100)}
        for name in senders:
            wait_series(exporter, "netprobe_multicast_receiving", name, lambda v: v == 1)

        def members():
            metrics = exporter.metrics()
            return {name: series(exporter, "netprobe_multicast_membership", name, metrics) for name in senders}

        def sample(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.assertEqual(members(), {"ssm": 1, "asm": 1}, kernel_groups(lab))
                time.sleep(0.2)

        sample(6)  # past the 3 s a missing listing took to become a rejoin
        self.assertEqual(lab.run("agent", ["ip", "link", "set", "r1", "down"]).returncode, 0)
        sample(5)  # the kernel keeps both memberships while the link is down
        self.assertEqual(lab.run("agent", ["ip", "link", "set", "r1", "up"]).returncode, 0)
        for name in senders:
            before = series(exporter, "netprobe_multicast_packets_received_total", name)
            wait_series(exporter, "netprobe_multicast_packets_received_total", name, lambda v: v > before + 100, timeout=15)
        sample(2)
        for sender in senders.values():
            os.kill(sender.pid, signal.SIGTERM)
        reports = {name: sender_report(sender, timeout=10) for name, sender in senders.items()}
        time.sleep(1)  # the last datagrams arrive
        metrics = exporter.metrics()
        for name, report in reports.items():
            arrived = arrivals(lab, name)
            missing = report["sent"] - arrived
            self.assertGreater(missing, 300, f"{name}: the link was down ~5 s at 100/s")
            counts = self.counters(exporter, metrics, name)
            self.assertEqual(counts, {"received": arrived, "lost": missing, "duplicate": 0, "late": 0, "resets": 0},
                             f"{name}: sent {report['sent']}, arrived {arrived}")
        log = exporter.log()
        self.assertNotIn("the kernel no longer lists the membership", log)
        self.assertEqual(log.count("interface down"), 1, log)
        self.assertEqual(log.count("interface up"), 1, log)
        down = next(line for line in log.splitlines() if "interface down" in line)
        self.assertIn("interface=r1", down)
        self.assertIn("groups=asm,ssm", down)

    def test_reload_keeps_an_unchanged_group_and_leaves_a_removed_one(self):
        lab = self.lab()
        start_switch(self, lab)
        start_sender(lab, "239.1.2.1", 5010, "raw", rate=100)
        start_sender(lab, "239.1.2.2", 5010, "raw", rate=100)
        both = group_config("kept", "239.1.2.1", 5010) + group_config("gone", "239.1.2.2", 5010).replace("multicast:\n", "")
        path = write_config(self, both)
        exporter = LabExporter(self, lab, config=path)
        wait_series(exporter, "netprobe_multicast_packets_received_total", "kept", lambda v: v >= 100)
        wait_series(exporter, "netprobe_multicast_packets_received_total", "gone", lambda v: v >= 100)
        with open(path, "w") as f:
            # New labels and an expected rate judge and label the same traffic: the group,
            # its join and its counters are kept.
            f.write(group_config("kept", "239.1.2.1", 5010, extra="expected_rate: 100\nlabels: {feed: a}"))
        before = series(exporter, "netprobe_multicast_packets_received_total", "kept")
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: 'name="gone"' not in exporter.metrics(), what="the removed group's series to go")
        self.assertGreaterEqual(series(exporter, "netprobe_multicast_packets_received_total", "kept", feed="a"), before,
                                "a group whose traffic is the same keeps its counters under its new labels")
        # The removed group is left: the kernel no longer lists it.
        wait_for(lambda: "020201EF" not in kernel_groups(lab), what="the leave")
        self.assertIn("010201EF", kernel_groups(lab))


if __name__ == "__main__":
    unittest.main()
