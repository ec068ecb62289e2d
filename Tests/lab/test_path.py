"""Path tracing in the network lab: the first hop is the router in use, a route switch is
one counted change, rate-limited routers are no change, datagram and raw sockets agree, an
unreachable target is reported with its code where the path ends, and a DF target keeps its
trace under a smaller path MTU. promtool accepts the live output of a traced target."""
import subprocess
import sys
import unittest

from harness import LabExporter, require_tool, wait_for, write_config
from netlab import Lab


def trace_config(address, socket="auto", interval="1s", extra=""):
    return ("defaults: {interval: 500ms, timeout: 500ms, socket: %s}\n"
            "targets:\n"
            "  - name: far\n"
            "    host: \"%s\"\n"
            "    trace: {interval: %s, max_hops: 8, probes_per_hop: 3, confirm_rounds: 2}\n%s" % (socket, address, interval, extra))


class PathLabTest(unittest.TestCase):
    def lab(self):
        lab = Lab.for_test(self, targets=2)
        lab.allow_unprivileged_ping()
        lab.icmp_ratelimit("both", 0)
        return lab

    @staticmethod
    def hops(exporter, metrics=None):
        """{hop number: sorted responders} of the confirmed path."""
        hops = {}
        for labels in exporter.samples("netprobe_path_hop_info", metrics):
            hop = int(labels.split('hop="')[1].split('"')[0])
            hops.setdefault(hop, []).append(labels.split('responder="')[1].split('"')[0])
        return {hop: sorted(responders) for hop, responders in hops.items()}

    def assert_promtool_accepts(self, metrics):
        """`promtool check metrics` on the live output of a traced target: no lint problem."""
        check = subprocess.run([require_tool(self, "promtool"), "check", "metrics"], input=metrics.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())

    def test_first_hop_and_a_route_switch_counted_once(self):
        lab = self.lab()
        target = lab.target_v4(0)
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target)))
        wait_for(lambda: self.hops(exporter) == {1: ["198.18.1.1"], 2: [target]}, timeout=20, what="the path via r1")
        self.assertEqual(exporter.target_value("netprobe_path_hops", "far"), 2)
        self.assert_promtool_accepts(exporter.metrics())
        self.assertEqual(exporter.target_value("netprobe_path_destination_reached", "far"), 1)
        self.assertEqual(exporter.target_value("netprobe_path_changes_total", "far"), 0)
        hash_before = exporter.target_value("netprobe_path_hash", "far")
        rounds = exporter.target_value("netprobe_path_rounds_total", "far")
        lab.use_router(2)
        # Two rounds confirm the change; allow a third for the round in flight at the switch.
        wait_for(lambda: exporter.target_value("netprobe_path_rounds_total", "far") >= rounds + 3, timeout=20, what="3 rounds")
        metrics = exporter.metrics()
        self.assertEqual(list(exporter.samples("netprobe_path_changes_total", metrics).values()), [1])
        self.assertEqual(self.hops(exporter, metrics), {1: ["198.18.2.1"], 2: [target]})
        self.assertNotEqual(exporter.target_value("netprobe_path_hash", "far"), hash_before)
        self.assertIn("path changed", exporter.log())
        self.assertEqual(exporter.target_value("netprobe_path_hop_loss_ratio", "far"), 0)

    def test_rate_limited_router_is_no_change(self):
        lab = self.lab()
        lab.icmp_ratelimit(1, 3000)
        target = lab.target_v4(0)
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target)))
        wait_for(lambda: (exporter.target_value("netprobe_path_rounds_total", "far") or 0) >= 10, timeout=40, what="10 rounds")
        metrics = exporter.metrics()
        self.assertEqual(list(exporter.samples("netprobe_path_changes_total", metrics).values()), [0])
        self.assertEqual(self.hops(exporter, metrics), {1: ["198.18.1.1"], 2: [target]})
        hop_loss = [value for labels, value in exporter.samples("netprobe_path_hop_loss_ratio", metrics).items() if 'hop="1"' in labels]
        self.assertGreater(hop_loss[0], 0.3, "the rate limit should have silenced most TTL-1 probes")

    def test_datagram_and_raw_sockets_find_the_same_hops(self):
        found = {}
        for socket in ("dgram", "raw"):
            lab = self.lab()
            target = lab.target_v4(1)
            exporter = LabExporter(self, lab, config=write_config(self, trace_config(target, socket=socket)),
                                   user=65534 if socket == "dgram" else None)
            found[socket] = wait_for(lambda: (h := self.hops(exporter)) and 2 in h and h, timeout=20, what=f"{socket} hops")
            infos = exporter.samples("netprobe_ping_target_info")
            self.assertTrue(all(f'socket="{socket}"' in labels for labels in infos), infos)
            # On raw sockets both engines see all ICMP: neither counts the other's replies.
            self.assertEqual(sum(exporter.samples("netprobe_ping_packets_unexpected_total").values()), 0)
        self.assertEqual(found["dgram"], found["raw"])
        self.assertEqual(found["raw"][1], ["198.18.1.1"])

    def check_every_probe_leaves(self, socket, family):
        """Count the echo requests per TTL on the wire (nftables counters in r1, before it
        answers or forwards them): every completed round put exactly probes_per_hop on the
        wire at each TTL of the path. On datagram sockets the Time Exceeded for probe 1 used
        to turn probe 2's sendto into EHOSTUNREACH: 2 of 3 left at TTL 1, uncounted."""
        lab = self.lab()
        lab.count_echo_requests("r1", ttls=range(1, 9))
        target = lab.target_v4(0) if family == 4 else lab.target_v6(0)
        first_hop = "198.18.1.1" if family == 4 else "2001:db8:1::1"
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target, socket=socket)),
                               user=65534 if socket == "dgram" else None)
        wait_for(lambda: (exporter.target_value("netprobe_path_rounds_total", "far") or 0) >= 6, timeout=40,
                 what=f"6 rounds ({socket}, IPv{family})")
        before = exporter.target_value("netprobe_path_rounds_total", "far")
        counts = lab.echo_request_counts("r1")
        metrics = exporter.metrics()
        after = list(exporter.samples("netprobe_path_rounds_total", metrics).values())[0]
        self.assertEqual(self.hops(exporter, metrics), {1: [first_hop], 2: [target]})
        infos = exporter.samples("netprobe_ping_target_info", metrics)
        self.assertTrue(all(f'socket="{socket}"' in labels for labels in infos), infos)
        wire = {ttl: counts[(family, ttl)] for ttl in (1, 2)}
        # Each completed round sent 3 per TTL; the round in progress at the reading, 0 or 3.
        for ttl, packets in wire.items():
            self.assertGreaterEqual(packets, 3 * before, f"TTL {ttl}: {wire} on the wire for {before} rounds ({socket}, IPv{family})")
            self.assertLessEqual(packets, 3 * (after + 1), f"TTL {ttl}: {wire} on the wire for {after} rounds ({socket}, IPv{family})")
        self.assertEqual(exporter.samples("netprobe_path_send_errors_total", metrics), {})
        hop_loss = [value for labels, value in exporter.samples("netprobe_path_hop_loss_ratio", metrics).items() if 'hop="1"' in labels]
        self.assertEqual(hop_loss, [0])
        print(f"\n  wire ({socket}, IPv{family}): echo requests per TTL {wire} for {before}–{after} completed rounds",
              file=sys.stderr)

    def test_every_probe_leaves_dgram_v4(self):
        self.check_every_probe_leaves("dgram", 4)

    def test_every_probe_leaves_dgram_v6(self):
        self.check_every_probe_leaves("dgram", 6)

    def test_every_probe_leaves_raw_v4(self):
        self.check_every_probe_leaves("raw", 4)

    def test_every_probe_leaves_raw_v6(self):
        self.check_every_probe_leaves("raw", 6)

    def test_probes_the_kernel_refuses_are_counted(self):
        """No route to the target: every probe of every TTL is refused (ENETUNREACH). Each
        is counted under netprobe_path_send_errors_total, none silently absent."""
        lab = self.lab()
        target = lab.target_v4(0)
        lab.run("agent", ["ip", "route", "del", "198.19.0.0/16"], check=True)
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target, socket="dgram")), user=65534)
        wait_for(lambda: (exporter.target_value("netprobe_path_rounds_total", "far") or 0) >= 3, timeout=30, what="3 rounds")
        before = exporter.target_value("netprobe_path_rounds_total", "far")
        metrics = exporter.metrics()
        after = list(exporter.samples("netprobe_path_rounds_total", metrics).values())[0]
        refused = exporter.samples("netprobe_path_send_errors_total", metrics)
        self.assertEqual([labels.split('reason="')[1].split('"')[0] for labels in refused], ["ENETUNREACH"], refused)
        # max_hops 8 × probes_per_hop 3 a round; the round in progress may have sent some.
        count = list(refused.values())[0]
        self.assertGreaterEqual(count, 24 * before)
        self.assertLessEqual(count, 24 * (after + 1))
        self.assertEqual(exporter.target_value("netprobe_path_destination_reached", "far"), 0)

    def test_ipv6_path(self):
        lab = self.lab()
        target = lab.target_v6(0)
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target)))
        wait_for(lambda: self.hops(exporter) == {1: ["2001:db8:1::1"], 2: [target]}, timeout=20, what="the IPv6 path via r1")

    def test_host_unreachable_is_reported_with_its_code(self):
        lab = self.lab()
        target = lab.target_v4(0)
        lab.host_unreachable(target)
        exporter = LabExporter(self, lab, config=write_config(self, trace_config(target)))
        wait_for(lambda: any('code="1"' in labels and value >= 2
                             for labels, value in exporter.samples("netprobe_path_unreachable_total").items()),
                 timeout=20, what="host unreachable, code 1")
        metrics = exporter.metrics()
        self.assertEqual(exporter.target_value("netprobe_path_destination_reached", "far"), 0)
        # r1 answers TTL 1 with Time Exceeded and refuses TTL 2: the path ends there, though
        # the probes sent before its refusal came back drew one from every higher TTL.
        self.assertEqual(exporter.target_value("netprobe_path_hops", "far"), 2)
        self.assertEqual(self.hops(exporter, metrics), {1: ["198.18.1.1"], 2: ["198.18.1.1"]})
        hop_series = [labels for labels in exporter.samples("netprobe_path_hop_rtt_seconds", metrics)]
        self.assertEqual(sorted(labels.split('hop="')[1].split('"')[0] for labels in hop_series), ["1", "2"])
        # Counted per round, not per error message: 7 errors a round before.
        rounds = exporter.target_value("netprobe_path_rounds_total", "far")
        unreachable = [value for labels, value in exporter.samples("netprobe_path_unreachable_total", metrics).items()
                       if 'code="1"' in labels]
        self.assertLessEqual(unreachable[0], rounds + 1)
        self.assert_promtool_accepts(metrics)

    def mtu_lab(self, socket):
        lab = self.lab()
        target = lab.target_v4(0)
        # r1's link to the target carries 1280-byte packets; the probes are 1428 bytes with DF.
        lab.run("r1", ["ip", "link", "set", "dev", "target", "mtu", "1280"], check=True)
        # confirm_rounds 1: a single round with a wrong path (a refused TTL left silent, the
        # target found one TTL too far) would count as a change.
        config = (trace_config(target, socket=socket).replace("trace:", "payload_size: 1400\n    dont_fragment: true\n    trace:")
                  .replace("confirm_rounds: 2", "confirm_rounds: 1"))
        exporter = LabExporter(self, lab, config=write_config(self, config), user=65534 if socket == "dgram" else None)
        return lab, target, exporter

    def check_the_trace_goes_on_under_a_smaller_mtu(self, socket):
        lab, target, exporter = self.mtu_lab(socket)
        wait_for(lambda: exporter.target_value("netprobe_path_mtu_bytes", "far") == 1280, timeout=20, what="path MTU 1280")
        # Once the kernel knows the MTU, probes of the configured size would be refused
        # locally: the later rounds must still reach the target, with smaller probes.
        rounds = exporter.target_value("netprobe_path_rounds_total", "far")
        wait_for(lambda: exporter.target_value("netprobe_path_rounds_total", "far") >= rounds + 3, timeout=20, what="3 more rounds")
        metrics = exporter.metrics()
        self.assertEqual(exporter.target_value("netprobe_path_destination_reached", "far"), 1)
        self.assertEqual(self.hops(exporter, metrics), {1: ["198.18.1.1"], 2: [target]})
        self.assertEqual(exporter.target_value("netprobe_path_mtu_bytes", "far"), 1280)
        self.assertEqual(exporter.target_value("netprobe_path_hops", "far"), 2)
        self.assert_promtool_accepts(metrics)
        # A smaller MTU further on: only the trace's probes (sized for 1280) reach r1 now, the
        # ping engine's are refused locally. The round that meets it sends the refused
        # probes again, smaller, and still reaches the target; so do the rounds after it.
        rounds = exporter.target_value("netprobe_path_rounds_total", "far")
        lab.run("r1", ["ip", "link", "set", "dev", "target", "mtu", "1200"], check=True)
        seen = set()

        def three_rounds_at_1200():
            # Every round that knew the new MTU, from the one whose probe drew r1's "need to
            # frag" on (a round whose error the host-wide ICMP rate limit dropped is not
            # one of them).
            metrics = exporter.metrics()
            mtu = list(exporter.samples("netprobe_path_mtu_bytes", metrics).values())
            if mtu == [1200]:
                reached = list(exporter.samples("netprobe_path_destination_reached", metrics).values())
                seen.add((tuple(reached), str(sorted(self.hops(exporter, metrics).items()))))
            return sum(exporter.samples("netprobe_path_rounds_total", metrics).values()) >= rounds + 3 and mtu == [1200]

        wait_for(three_rounds_at_1200, timeout=20, interval=0.02, what="3 rounds after the MTU fell to 1200")
        self.assertEqual(seen, {((1,), str(sorted({1: ["198.18.1.1"], 2: [target]}.items())))})
        self.assertEqual(exporter.target_value("netprobe_path_changes_total", "far"), 0)

    def test_fragmentation_needed_feeds_the_path_mtu_and_the_trace_goes_on_raw(self):
        self.check_the_trace_goes_on_under_a_smaller_mtu("raw")

    def test_fragmentation_needed_feeds_the_path_mtu_and_the_trace_goes_on_dgram(self):
        self.check_the_trace_goes_on_under_a_smaller_mtu("dgram")


if __name__ == "__main__":
    unittest.main()
