"""Path tracing in the network lab: the first hop is the router in use, a route switch is
one counted change, rate-limited routers are no change, datagram and raw sockets agree, and
an unreachable target is reported with its code."""
import subprocess
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
        self.assertEqual(found["dgram"], found["raw"])
        self.assertEqual(found["raw"][1], ["198.18.1.1"])

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
        self.assertEqual(exporter.target_value("netprobe_path_destination_reached", "far"), 0)

    def test_fragmentation_needed_feeds_the_path_mtu(self):
        lab = self.lab()
        target = lab.target_v4(0)
        # r1's link to the target carries 1280-byte packets; the probes are 1428 bytes with DF.
        lab.run("r1", ["ip", "link", "set", "dev", "target", "mtu", "1280"], check=True)
        config = trace_config(target, socket="raw").replace("trace:", "payload_size: 1400\n    dont_fragment: true\n    trace:")
        exporter = LabExporter(self, lab, config=write_config(self, config))
        wait_for(lambda: exporter.target_value("netprobe_path_mtu_bytes", "far") == 1280, timeout=20, what="path MTU 1280")


if __name__ == "__main__":
    unittest.main()
