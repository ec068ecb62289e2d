"""The ping engine in the network lab: namespaces, routers, nftables dropping a share of
echo requests, an /etc/hosts that changes, an unprivileged agent, forged replies."""
import os
import subprocess
import sys
import time
import unittest

from harness import LabExporter, require_tool, wait_for, write_config
from netlab import Lab

HERE = os.path.dirname(os.path.abspath(__file__))


def targets_config(addresses, interval="100ms", timeout="1s", window=100, socket="auto", extra_defaults="", extra=""):
    lines = ["defaults:", f"  interval: {interval}", f"  timeout: {timeout}", f"  window: {window}",
             f"  socket: {socket}", "  dns_refresh: 1s"]
    lines += [f"  {line}" for line in extra_defaults.splitlines()]
    lines.append("targets:")
    lines += [f"  - {{name: t{index}, host: \"{address}\"}}" for index, address in enumerate(addresses)]
    return "\n".join(lines) + "\n" + extra


class PingLabTest(unittest.TestCase):
    def lab(self, targets=20):
        lab = Lab.for_test(self, targets=targets)
        lab.allow_unprivileged_ping()
        return lab

    def test_a_twenty_targets_without_loss_and_f_promtool(self):
        lab = self.lab()
        addresses = lab.addresses(10) + lab.addresses(10, family=6)
        # Custom labels too: promtool below sees them beside the exporter's own.
        config = targets_config(addresses, extra_defaults="labels: {site: lab, rack: r1}")
        exporter = LabExporter(self, lab, config=write_config(self, config))
        wait_for(lambda: len(exporter.samples("netprobe_ping_packets_received_total")) == 20
                 and min(exporter.samples("netprobe_ping_packets_received_total").values()) >= 20,
                 timeout=20, what="20 replies from each of 20 targets")
        metrics = exporter.metrics()
        sent = exporter.samples("netprobe_ping_packets_sent_total", metrics)
        received = exporter.samples("netprobe_ping_packets_received_total", metrics)
        for labels, count in sent.items():
            # At most one probe in flight when the scrape happened.
            self.assertIn(count - received[labels], (0, 1), labels)
        for labels, loss in exporter.samples("netprobe_ping_loss_ratio", metrics).items():
            self.assertEqual(loss, 0, labels)
        for labels, rtt in exporter.samples("netprobe_ping_rtt_mean_seconds", metrics).items():
            self.assertGreater(rtt, 0, labels)
            self.assertLess(rtt, 0.1, labels)
        self.assertEqual(sum(exporter.samples("netprobe_ping_packets_late_total", metrics).values()), 0)
        self.assertEqual(sum(exporter.samples("netprobe_ping_packets_duplicate_total", metrics).values()), 0)
        self.assertEqual(sum(exporter.samples("netprobe_ping_packets_unexpected_total", metrics).values()), 0)
        # Through one router: TTL 64 - 1 (Linux replies with 64).
        self.assertEqual(set(exporter.samples("netprobe_ping_reply_ttl", metrics).values()), {63})
        promtool = require_tool(self, "promtool")
        check = subprocess.run([promtool, "check", "metrics"], input=metrics.encode(), capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())

    def test_b_twenty_percent_dropped_for_one_target(self):
        lab = self.lab()
        addresses = lab.addresses(20)
        lab.drop(addresses[3], 20)
        # A loss is decided at its deadline, a reply at once: the window's newest outcomes
        # hold the replies of the last `timeout` but not yet its losses. A 100 ms timeout
        # keeps that to 5 of the 500 probes, so 20 % dropped reads as 20 % lost.
        exporter = LabExporter(self, lab, config=write_config(
            self, targets_config(addresses, interval="20ms", timeout="100ms", window=500)))
        wait_for(lambda: (exporter.target_value("netprobe_ping_window_probes", "t3") or 0) >= 500,
                 timeout=40, what="500 probes to the lossy target")
        loss = exporter.samples("netprobe_ping_loss_ratio")
        for labels, value in loss.items():
            if 'target="t3"' in labels:
                self.assertAlmostEqual(value, 0.20, delta=0.05)
            else:
                self.assertEqual(value, 0, labels)

    def test_c_silent_target_comes_back(self):
        lab = self.lab(targets=2)
        addresses = lab.addresses(2)
        exporter = LabExporter(self, lab, config=write_config(self, targets_config(addresses, window=30)))
        wait_for(lambda: exporter.target_value("netprobe_ping_window_probes", "t0") == 30, timeout=20, what="a full window")
        self.assertEqual(exporter.target_value("netprobe_ping_loss_ratio", "t0"), 0)
        lab.drop(addresses[0], 100)
        silent_since = time.monotonic()
        wait_for(lambda: exporter.target_value("netprobe_ping_loss_ratio", "t0") == 1, timeout=20, what="total loss")
        self.assertEqual(exporter.target_value("netprobe_ping_loss_ratio", "t1"), 0)
        # Silent for 30 s in all: still probed all along, still all lost, the other target untouched.
        sent_before = exporter.target_value("netprobe_ping_packets_sent_total", "t0")
        time.sleep(max(0, 30 - (time.monotonic() - silent_since)))
        self.assertGreaterEqual(exporter.target_value("netprobe_ping_packets_sent_total", "t0") - sent_before, 50)
        self.assertEqual(exporter.target_value("netprobe_ping_loss_ratio", "t0"), 1)
        self.assertEqual(exporter.target_value("netprobe_ping_loss_ratio", "t1"), 0)
        lab.undrop(addresses[0])
        wait_for(lambda: exporter.target_value("netprobe_ping_loss_ratio", "t0") == 0, timeout=20, what="the window to recover")
        self.assertEqual(exporter.target_value("netprobe_ping_packets_late_total", "t0"), 0)

    def test_c_unreachable_target_every_probe_leaves_dgram(self):
        """A router answers Host Unreachable for the target: on datagram sockets no ICMP
        error becomes the next sendto's error (ping sockets set no IP_RECVERR and are not
        connected), so every probe reaches the wire, is counted sent, and is lost."""
        lab = self.lab(targets=2)
        lab.icmp_ratelimit("both", 0)
        addresses = [lab.target_v4(0), lab.target_v6(0)]
        for address in addresses:
            lab.host_unreachable(address)
        lab.count_echo_requests("r1", ttls=[64])
        exporter = LabExporter(self, lab, config=write_config(self, targets_config(addresses, timeout="200ms", window=20)),
                               user=65534)
        wait_for(lambda: min(exporter.samples("netprobe_ping_packets_sent_total").values() or [0]) >= 30, timeout=20,
                 what="30 probes each")
        before = exporter.samples("netprobe_ping_packets_sent_total")
        wire = lab.echo_request_counts("r1")
        metrics = exporter.metrics()
        after = exporter.samples("netprobe_ping_packets_sent_total", metrics)
        self.assertEqual(exporter.samples("netprobe_ping_send_errors_total", metrics), {})
        for index, family in enumerate((4, 6)):
            sent = [value for labels, value in before.items() if f'target="t{index}"' in labels][0]
            sent_after = [value for labels, value in after.items() if f'target="t{index}"' in labels][0]
            self.assertLessEqual(sent, wire[(family, 64)], f"IPv{family}: {wire} on the wire, {sent} sent")
            self.assertLessEqual(wire[(family, 64)], sent_after, f"IPv{family}: {wire} on the wire, {sent_after} sent")
        self.assertEqual(list(exporter.samples("netprobe_ping_loss_ratio", metrics).values()), [1, 1])
        print(f"\n  unreachable targets: sent {sorted(after.values())}, on the wire {wire}", file=sys.stderr)

    def test_c_refused_sends_are_sent_and_lost(self):
        """Pings larger than a path MTU the kernel has learned, with DF, are refused locally
        (EMSGSIZE): each counts as sent, under send_errors, and as lost, so sent − received
        and the loss gauge agree (issue 20: 114 sent, 113 received, loss ratio 0.87)."""
        lab = self.lab(targets=1)
        lab.icmp_ratelimit("both", 0)
        target = lab.target_v4(0)
        lab.run("r1", ["ip", "link", "set", "dev", "target", "mtu", "1280"], check=True)
        config = targets_config([target], timeout="200ms", window=1000,
                                extra_defaults="payload_size: 1400\ndont_fragment: true")
        exporter = LabExporter(self, lab, config=write_config(self, config))
        wait_for(lambda: (exporter.target_value("netprobe_ping_send_errors_total", "t0") or 0) >= 30, timeout=20,
                 what="30 refused sends")
        metrics = exporter.metrics()
        value = lambda family: list(exporter.samples(family, metrics).values())[0]
        sent, received = value("netprobe_ping_packets_sent_total"), value("netprobe_ping_packets_received_total")
        refused = exporter.samples("netprobe_ping_send_errors_total", metrics)
        self.assertEqual([labels.split('errno="')[1].split('"')[0] for labels in refused], ["EMSGSIZE"])
        self.assertGreaterEqual(sent, list(refused.values())[0])
        lost = value("netprobe_ping_loss_ratio") * value("netprobe_ping_window_probes")
        # The window holds every decided probe; at most 2 (200 ms at 100 ms) are in flight.
        self.assertLessEqual(sent - received - lost, 2, f"sent {sent}, received {received}, lost {lost}")
        self.assertGreaterEqual(sent - received - lost, 0, f"sent {sent}, received {received}, lost {lost}")
        print(f"\n  EMSGSIZE: sent {sent}, received {received}, refused {list(refused.values())[0]}, "
              f"lost {lost} of {value('netprobe_ping_window_probes')} decided", file=sys.stderr)

    def test_d_dns_name_that_changes_address(self):
        lab = self.lab(targets=2)
        first, second = lab.addresses(2)
        lab.set_hosts("agent", {"moving.lab.test": first})
        config = "defaults: {interval: 100ms, dns_refresh: 1s}\ntargets:\n  - {name: moving, host: moving.lab.test, family: ip4}\n"
        exporter = LabExporter(self, lab, config=write_config(self, config))

        def probed_address():
            for labels in exporter.samples("netprobe_ping_target_info"):
                if 'target="moving"' in labels:
                    return labels.split('address="')[1].split('"')[0]
            return None

        wait_for(lambda: probed_address() == first, timeout=15, what="the first address")
        wait_for(lambda: (exporter.target_value("netprobe_ping_packets_received_total", "moving") or 0) >= 5, what="replies")
        lab.set_hosts("agent", {"moving.lab.test": second})
        wait_for(lambda: probed_address() == second, timeout=15, what="the new address")
        # The counters carry over with the address label; the old address now drops everything,
        # so replies that keep coming can only be the new address's.
        lab.drop(first, 100)
        at_switch = exporter.target_value("netprobe_ping_packets_received_total", "moving")
        wait_for(lambda: exporter.target_value("netprobe_ping_packets_received_total", "moving") >= at_switch + 10,
                 what="replies from the new address")
        self.assertIn("DNS name now resolves to another address", exporter.log())
        # The name disappears: the last good address stays, failures are counted, once logged.
        lab.set_hosts("agent", {"other.lab.test": second})
        wait_for(lambda: (exporter.target_value("netprobe_ping_dns_lookup_failures_total", "moving") or 0) >= 2,
                 timeout=15, what="failed lookups")
        self.assertEqual(probed_address(), second)
        self.assertEqual(exporter.log().count("DNS lookup failed"), 1)

    def test_e_unprivileged_agent_with_ping_group_range(self):
        lab = self.lab(targets=2)
        addresses = lab.addresses(1) + lab.addresses(1, family=6)
        exporter = LabExporter(self, lab, config=write_config(self, targets_config(addresses)), user=65534)
        wait_for(lambda: len(exporter.samples("netprobe_ping_packets_received_total")) == 2
                 and min(exporter.samples("netprobe_ping_packets_received_total").values()) >= 5,
                 timeout=15, what="replies to an unprivileged agent")
        sockets = {labels.split('socket="')[1].split('"')[0] for labels in exporter.samples("netprobe_ping_target_info")}
        self.assertEqual(sockets, {"dgram"})

    def test_e_unprivileged_agent_without_any_privilege_says_what_to_grant(self):
        lab = Lab.for_test(self, targets=1)   # ping_group_range left at "1 0"
        exporter = LabExporter(self, lab, config=write_config(self, targets_config(lab.addresses(1))), user=65534)
        wait_for(lambda: "cannot open an ICMP socket" in exporter.log(), what="the privilege error")
        log = exporter.log()
        self.assertIn("CAP_NET_RAW", log)
        self.assertIn("ping_group_range", log)
        errors = exporter.samples("netprobe_ping_socket_errors_total")
        self.assertTrue(any('socket="raw",errno="EPERM"' in labels for labels in errors), errors)
        self.assertEqual(exporter.get("/-/healthy")[0], 200)
        self.assertNotIn("netprobe_ping_loss_ratio{", exporter.metrics(), "a target not probed reports no loss ratio")
        # Granting what the log asks for works without a restart: the next retry (once a
        # minute) opens a datagram socket.
        lab.allow_unprivileged_ping()
        wait_for(lambda: (exporter.target_value("netprobe_ping_packets_received_total", "t0") or 0) >= 3,
                 timeout=75, what="replies once ping_group_range is granted")
        self.assertEqual(exporter.target_value("netprobe_ping_loss_ratio", "t0") is not None, True)
        self.assertIn('socket="dgram"', next(iter(exporter.samples("netprobe_ping_target_info"))))

    def test_g_forged_replies_are_unexpected_not_received(self):
        lab = self.lab(targets=1)
        address = lab.target_v4(0)
        forger = lab.popen("target", [sys.executable, os.path.join(HERE, "forge_replies.py"), address, "10"],
                           stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        exporter = LabExporter(self, lab, config=write_config(self, targets_config([address], socket="raw")))
        forger.wait(timeout=30)
        self.assertEqual(forger.returncode, 0)
        wait_for(lambda: exporter.target_value("netprobe_ping_packets_duplicate_total", "t0") == 10, what="10 duplicates")
        unexpected = exporter.samples("netprobe_ping_packets_unexpected_total")
        self.assertEqual(unexpected['{family="ip4",reason="bad_nonce"}'], 10)
        self.assertEqual(unexpected['{family="ip4",reason="unknown_probe"}'], 10)
        # One scrape for both: a probe answered between two scrapes would count in one only.
        metrics = exporter.metrics()
        sent = next(v for k, v in exporter.samples("netprobe_ping_packets_sent_total", metrics).items() if 't0"' in k)
        received = next(v for k, v in exporter.samples("netprobe_ping_packets_received_total", metrics).items() if 't0"' in k)
        self.assertLessEqual(received, sent)

    def test_reload_keeps_unchanged_targets_and_removes_gone_ones(self):
        lab = self.lab(targets=3)
        a, b, c = lab.addresses(3)
        path = write_config(self, targets_config([a, b, c]))
        exporter = LabExporter(self, lab, config=path)
        wait_for(lambda: (exporter.target_value("netprobe_ping_packets_sent_total", "t0") or 0) >= 20, what="probes")
        with open(path, "w") as f:
            # t0 unchanged, t1 gone, t2 with another payload size: it measures something
            # else, so its counters start again.
            f.write(targets_config([a]) + "  - {name: t2, host: \"%s\", payload_size: 200}\n" % c)
        before = exporter.target_value("netprobe_ping_packets_sent_total", "t0")
        self.assertEqual(exporter.get("/-/reload")[0], 405)
        status = self.lab_post(lab, exporter, "/-/reload")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(exporter.target_value("netprobe_ping_packets_sent_total", "t0"), before,
                                "an unchanged target keeps its counters")
        self.assertNotIn('target="t1"', exporter.metrics(), "a removed target loses its series")
        t2_sent = exporter.target_value("netprobe_ping_packets_sent_total", "t2")
        self.assertLess(t2_sent, 20, "a target that measures something else starts its counters again")

    def test_reload_changing_only_interval_keeps_counters_window_and_labels_follow(self):
        lab = self.lab(targets=1)
        (a,) = lab.addresses(1)
        path = write_config(self, targets_config([a], interval="200ms"))
        exporter = LabExporter(self, lab, config=path)
        wait_for(lambda: (exporter.target_value("netprobe_ping_packets_sent_total", "t0") or 0) >= 15, what="probes")
        with open(path, "w") as f:
            # Only the interval and the labels change: the same measurement.
            f.write(targets_config([a], interval="50ms", extra_defaults="labels: {site: lab}"))
        before = exporter.target_value("netprobe_ping_packets_sent_total", "t0")
        window_before = exporter.target_value("netprobe_ping_window_probes", "t0")
        self.assertEqual(self.lab_post(lab, exporter, "/-/reload"), 200)
        # Every scrape after the reload continues from where the counter was, never ~1.
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            metrics = exporter.metrics()
            sent = [value for labels, value in exporter.samples("netprobe_ping_packets_sent_total", metrics).items()
                    if 'target="t0"' in labels]
            self.assertEqual(len(sent), 1, "one series for the target")
            seen.append(sent[0])
            time.sleep(0.2)
        self.assertGreaterEqual(min(seen), before, f"counter went back after the reload: {before} -> {seen}")
        self.assertTrue(all(x <= y for x, y in zip(seen, seen[1:])), seen)
        # At 50 ms the 3 s after the reload add about 60 probes (200 ms would add 15).
        self.assertGreater(seen[-1] - before, 35, f"the new interval is in force: {before} -> {seen[-1]}")
        self.assertGreaterEqual(exporter.target_value("netprobe_ping_window_probes", "t0"), window_before,
                                "the window kept its probes")
        # The labels are part of the series: the old label set is gone, the new one
        # carries the same counter on.
        metrics = exporter.metrics()
        sent = exporter.samples("netprobe_ping_packets_sent_total", metrics)
        self.assertEqual([labels for labels in sent if 'target="t0"' in labels and 'site="lab"' in labels],
                         [labels for labels in sent if 'target="t0"' in labels])

    @staticmethod
    def lab_post(lab, exporter, path):
        result = lab.run(exporter.namespace, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                              f"http://127.0.0.1:{exporter.port}{path}"], timeout=30)
        return int(result.stdout or 0)


if __name__ == "__main__":
    unittest.main()
