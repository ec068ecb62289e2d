"""The IGMP / MLD querier watch in the network lab. A test querier (querier.py) in r1 sends
queries on the r1–agent link (and a Linux snooping bridge in r1 queries as IGMPv2/v3 and
MLDv1/v2 switches do); the agent's exporter watches its interface "r1" and must
report the querier's address, version, interval and the queries by kind, count malformed
packets, and drop `netprobe_querier_present` to 0 once the querier has been silent for
robustness × interval + max response / 2 — computed here from the test's short interval.
Also: the 0.0.0.0 of a proxy-querying switch, an interface that appears, goes and comes
back, no CAP_NET_RAW, and a real igmpproxy."""
import os
import signal
import subprocess
import sys
import time
import unittest

from harness import LabExporter, require_tool, temporary_directory, wait_for, write_config
from mcastlab import SWITCH, multicast_routing_missing, start_switch
from netlab import Lab

HERE = os.path.dirname(os.path.abspath(__file__))
R1_ON_AGENT_LINK = "198.18.1.1"
IGMP = 'interface="r1",protocol="igmp"'
MLD = 'interface="r1",protocol="mld"'

# A group member in the agent namespace: group-specific queries reach a host only for the
# groups it has joined (general ones go to 224.0.0.1 / ff02::1, which every host is in).
MEMBER = """
import socket, struct, sys, time
index = socket.if_nametoindex(sys.argv[1])
keep = []
for group in sys.argv[2:]:
    if ":" in group:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack("=4s4si", socket.inet_aton(group), bytes(4), index))
    keep.append(s)
print("joined", flush=True)
time.sleep(3600)
"""


def watch_config(protocols="[igmp]", interfaces="[r1]", query_interval="3s"):
    return ("querier_watch:\n"
            f"  interfaces: {interfaces}\n"
            f"  protocols: {protocols}\n"
            f"  query_interval: {query_interval}\n"
            "  query_response_interval: 1s\n"
            "  robustness: 2\n")


class QuerierLabTest(unittest.TestCase):
    def setUp(self):
        self.lab = Lab.for_test(self, targets=0)

    # ---- helpers -----------------------------------------------------------------------------

    def exporter(self, config, user=None):
        return LabExporter(self, self.lab, "--log.level=debug", config=write_config(self, config), user=user)

    def querier(self, *specs, interface="agent", first=(), every=1.0, rounds=0):
        """Starts querier.py in r1 and waits until its sockets are open."""
        argv = [sys.executable, os.path.join(HERE, "querier.py"), interface, "--every", str(every), "--rounds", str(rounds)]
        for spec in first:
            argv += ["--first", spec]
        process = self.lab.popen("r1", argv + list(specs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.stop, process)
        self.assertEqual(process.stdout.readline().strip(), "ready", process.stderr.read() if process.poll() is not None else "")
        return process

    @staticmethod
    def stop(process):
        """Stops one helper by its PID (the lab's close() would too, later)."""
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    def join(self, *groups):
        process = self.lab.popen("agent", [sys.executable, "-c", MEMBER, "r1", *groups], stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.stop, process)
        self.assertEqual(process.stdout.readline().strip(), "joined")

    value = staticmethod(LabExporter.value)

    def wait_for_querier(self, exporter, labels, querier, version, timeout=15):
        series = f'netprobe_querier_info{{{labels},querier="{querier}",version="{version}"}}'
        return wait_for(lambda: (m := exporter.metrics()) and self.value(m, series) == 1 and m,
                        timeout=timeout, what=series)

    def link_local(self, ns, interface):
        out = self.lab.run(ns, ["ip", "-6", "-o", "addr", "show", "dev", interface, "scope", "link"], check=True).stdout
        return out.split("inet6 ")[1].split("/")[0]

    # ---- tests -------------------------------------------------------------------------------

    def test_igmp_v2_then_v3_then_silence(self):
        self.join("239.1.2.3")
        exporter = self.exporter(watch_config())
        wait_for(lambda: "listening for queries" in exporter.log(), what="the watch listening")
        metrics = exporter.metrics()
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 1, "no query yet, but not a full timeout either")
        self.assertNotIn("netprobe_querier_info{", metrics)
        self.assertIsNone(self.value(metrics, f"netprobe_querier_present{{{MLD}}}"), "MLD is not watched by default")

        # IGMPv2 carries no interval: none is reported (the timeout uses the configured 3 s).
        v2 = self.querier("igmp2,mrc=10", "igmp2,group=239.1.2.3,mrc=10", first=["igmp-bad-checksum"])
        metrics = self.wait_for_querier(exporter, IGMP, R1_ON_AGENT_LINK, 2)
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 1)
        self.assertIsNone(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{IGMP}}}"))
        self.assertEqual(self.value(metrics, f"netprobe_querier_max_response_seconds{{{IGMP}}}"), 1)
        self.assertEqual(self.value(metrics, f"netprobe_querier_robustness{{{IGMP}}}"), 2)
        self.assertAlmostEqual(self.value(metrics, f"netprobe_querier_last_general_query_timestamp_seconds{{{IGMP}}}"),
                               time.time(), delta=5)
        wait_for(lambda: (exporter.sample(f'netprobe_querier_queries_received_total{{{IGMP},version="2",kind="group"}}') or 0) >= 1,
                 what="an IGMPv2 group-specific query counted")
        self.assertEqual(exporter.sample(f"netprobe_querier_malformed_packets_total{{{IGMP}}}"), 1, "the bad checksum")
        self.stop(v2)

        # IGMPv3 announces its interval (QQIC 4 s) and robustness.
        v3 = self.querier("igmp3,qqic=4,qrv=2,mrc=10", "igmp3,group=239.1.2.3,mrc=10",
                          "igmp3,group=239.1.2.3,sources=198.18.1.9,mrc=10")
        self.wait_for_querier(exporter, IGMP, R1_ON_AGENT_LINK, 3)
        metrics = wait_for(lambda: (m := exporter.metrics()) and self.value(
            m, f'netprobe_querier_queries_received_total{{{IGMP},version="3",kind="group_source"}}') and m,
            what="an IGMPv3 group-and-source query counted")
        self.assertEqual(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{IGMP}}}"), 4)
        for kind in ("general", "group", "group_source"):
            self.assertGreaterEqual(self.value(metrics, f'netprobe_querier_queries_received_total{{{IGMP},version="3",kind="{kind}"}}'), 1)
        self.assertGreaterEqual(self.value(metrics, f'netprobe_querier_queries_received_total{{{IGMP},version="2",kind="general"}}'), 1)
        self.assertEqual(self.value(metrics, f"netprobe_querier_malformed_packets_total{{{IGMP}}}"), 1, "reports are not malformed")
        infos = [line for line in metrics.splitlines() if line.startswith("netprobe_querier_info{")]
        self.assertEqual(len(infos), 1, infos)
        check = subprocess.run([require_tool(self, "promtool"), "check", "metrics"], input=metrics.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())

        # Silence: present for 2 × 4 s + 1 s / 2 = 8.5 s after the last general query, then 0.
        self.stop(v3)
        time.sleep(0.3)  # a query in flight when the querier stopped
        last = exporter.sample(f"netprobe_querier_last_general_query_timestamp_seconds{{{IGMP}}}")
        deadline = last + 8.5
        time.sleep(max(0.0, deadline - 2.0 - time.time()))
        self.assertEqual(exporter.sample(f"netprobe_querier_present{{{IGMP}}}"), 1, "2 s before the deadline")
        gone = wait_for(lambda: exporter.sample(f"netprobe_querier_present{{{IGMP}}}") == 0 and time.time(),
                        timeout=deadline + 4 - time.time(), interval=0.1, what="querier present to drop to 0")
        self.assertGreaterEqual(gone, deadline - 0.3, f"dropped {deadline - gone:.2f}s before the deadline")
        wait_for(lambda: "querier absent" in exporter.log(), timeout=3, what="the absence logged")

    def test_start_up_without_and_with_a_querier(self):
        # No querier: present for 2 × 3 s + 1 s / 2 = 6.5 s of listening (a working querier
        # may not have spoken yet), then 0. Listening starts after `started`.
        started = time.monotonic()
        exporter = self.exporter(watch_config())
        wait_for(lambda: "listening for queries" in exporter.log(), what="the watch listening")
        self.assertEqual(exporter.sample(f"netprobe_querier_present{{{IGMP}}}"), 1)
        gone = wait_for(lambda: exporter.sample(f"netprobe_querier_present{{{IGMP}}}") == 0 and time.monotonic(),
                        timeout=15, interval=0.1, what="querier present to drop to 0 at the end of the first timeout")
        self.assertGreaterEqual(gone - started, 6.5, "absence claimed before a full timeout of listening")
        wait_for(lambda: "querier absent" in exporter.log(), timeout=3, what="the absence logged")
        self.assertIn("last_querier=none", exporter.log())
        exporter.kill()

        # A querier that speaks for the first time 4 s after the start: present throughout.
        exporter = self.exporter(watch_config())
        wait_for(lambda: "listening for queries" in exporter.log(), what="the watch listening")
        until = time.monotonic() + 4
        while time.monotonic() < until:
            self.assertEqual(exporter.sample(f"netprobe_querier_present{{{IGMP}}}"), 1, "absent before a query was due")
            time.sleep(0.5)
        self.querier("igmp2,mrc=10")
        until = time.monotonic() + 6
        while time.monotonic() < until:
            self.assertEqual(exporter.sample(f"netprobe_querier_present{{{IGMP}}}"), 1)
            time.sleep(0.5)
        self.assertNotIn("querier absent", exporter.log())

    def test_v2_queries_keep_the_interval_a_v3_querier_announced(self):
        # A v3 querier (QQIC 4 s) and a v2 one (no QQIC) on one link, the v2 query last in
        # every round: the announced 4 s stays, not the configured 3 s.
        exporter = self.exporter(watch_config())
        self.querier("igmp3,qqic=4,qrv=3,mrc=10", "igmp2,mrc=20")
        wait_for(lambda: (exporter.sample(f'netprobe_querier_queries_received_total{{{IGMP},version="2",kind="general"}}') or 0) >= 2,
                 what="IGMPv2 queries after the v3 ones")
        for _ in range(4):
            metrics = exporter.metrics()
            self.assertEqual(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{IGMP}}}"), 4)
            self.assertEqual(self.value(metrics, f"netprobe_querier_robustness{{{IGMP}}}"), 3)
            self.assertIn(self.value(metrics, f"netprobe_querier_max_response_seconds{{{IGMP}}}"), (1, 2))
            time.sleep(0.5)

    def test_mld_v1_then_v2(self):
        self.join("ff3e::4242")
        exporter = self.exporter(watch_config(protocols="[igmp, mld]"))
        querier = self.link_local("r1", "agent")
        v1 = self.querier("mld1,mrd=1000", "mld1,group=ff3e::4242,mrd=1000", first=["mld-short"])
        metrics = self.wait_for_querier(exporter, MLD, querier, 1)
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{MLD}}}"), 1)
        self.assertIsNone(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{MLD}}}"), "MLDv1 announces none")
        self.assertEqual(self.value(metrics, f"netprobe_querier_max_response_seconds{{{MLD}}}"), 1)
        self.assertEqual(self.value(metrics, f"netprobe_querier_malformed_packets_total{{{MLD}}}"), 1, "the 26-byte query")
        self.assertNotIn(f"netprobe_querier_info{{{IGMP}", metrics, "no IGMP querier here")
        wait_for(lambda: (exporter.sample(f'netprobe_querier_queries_received_total{{{MLD},version="1",kind="group"}}') or 0) >= 1,
                 what="an MLDv1 group-specific query counted")
        self.stop(v1)
        self.querier("mld2,qqic=4,qrv=3,mrc=2000", "mld2,group=ff3e::4242,sources=2001:db8:1::9,mrc=1000")
        metrics = self.wait_for_querier(exporter, MLD, querier, 2)
        self.assertEqual(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{MLD}}}"), 4, "QQIC")
        self.assertEqual(self.value(metrics, f"netprobe_querier_robustness{{{MLD}}}"), 3, "QRV")
        self.assertEqual(self.value(metrics, f"netprobe_querier_max_response_seconds{{{MLD}}}"), 2)
        wait_for(lambda: (exporter.sample(f'netprobe_querier_queries_received_total{{{MLD},version="2",kind="group_source"}}') or 0) >= 1,
                 what="an MLDv2 group-and-source query counted")

    def test_a_snooping_switch_as_igmpv2_and_mldv1_querier(self):
        self.switch_querier(igmp_version=2, mld_version=1)

    def test_a_snooping_switch_as_igmpv3_and_mldv2_querier(self):
        self.switch_querier(igmp_version=3, mld_version=2)

    def switch_querier(self, igmp_version, mld_version):
        """The Linux bridge's own querier, every second with a 0.5 s maximum response: its
        address on the agent's link, its version, and the interval IGMPv3 / MLDv2 announce."""
        start_switch(self, self.lab, igmp_version=igmp_version, mld_version=mld_version, query_interval=1,
                     response_interval=0.5)
        exporter = self.exporter(watch_config(protocols="[igmp, mld]", query_interval="1s"))
        metrics = self.wait_for_querier(exporter, IGMP, R1_ON_AGENT_LINK, igmp_version)
        metrics = self.wait_for_querier(exporter, MLD, self.link_local("r1", SWITCH), mld_version)
        for labels in (IGMP, MLD):
            self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{labels}}}"), 1, labels)
            self.assertEqual(self.value(metrics, f"netprobe_querier_max_response_seconds{{{labels}}}"), 0.5, labels)
        announced = {labels: self.value(metrics, f"netprobe_querier_query_interval_seconds{{{labels}}}") for labels in (IGMP, MLD)}
        self.assertEqual(announced, {IGMP: 1 if igmp_version == 3 else None, MLD: 1 if mld_version == 2 else None},
                         "IGMPv3 and MLDv2 announce their interval, IGMPv2 and MLDv1 do not")
        kinds = (f'netprobe_querier_queries_received_total{{{IGMP},version="{igmp_version}",kind="general"}}',
                 f'netprobe_querier_queries_received_total{{{MLD},version="{mld_version}",kind="general"}}')
        first = [self.value(metrics, kind) for kind in kinds]
        time.sleep(3)
        metrics = exporter.metrics()
        for kind, before in zip(kinds, first):
            self.assertGreaterEqual(self.value(metrics, kind) - before, 2, f"{kind}: one general query a second")

    def test_reload_keeps_kept_interfaces_and_drops_removed_ones(self):
        path = write_config(self, watch_config())
        exporter = LabExporter(self, self.lab, config=path)
        self.querier("igmp3,qqic=4,mrc=10")
        self.wait_for_querier(exporter, IGMP, R1_ON_AGENT_LINK, 3)
        counted = f'netprobe_querier_queries_received_total{{{IGMP},version="3",kind="general"}}'
        before = exporter.sample(counted)
        with open(path, "w") as f:
            f.write(watch_config(interfaces="[r1, r2]", protocols="[igmp, mld]"))
        exporter.signal(signal.SIGHUP)
        r2 = 'interface="r2",protocol="mld"'
        metrics = wait_for(lambda: (m := exporter.metrics()) and self.value(m, f"netprobe_querier_present{{{r2}}}") == 0 and m,
                           what="the r2 series after the reload")
        self.assertGreaterEqual(self.value(metrics, counted), before, "r1's counters survive the reload")
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 1)
        with open(path, "w") as f:
            f.write(watch_config(interfaces="[r2]"))
        exporter.signal(signal.SIGHUP)
        metrics = wait_for(lambda: (m := exporter.metrics()) and self.value(m, f"netprobe_querier_present{{{IGMP}}}") is None and m,
                           what="the r1 series gone after the second reload")
        self.assertNotIn('interface="r1"', "\n".join(l for l in metrics.splitlines() if l.startswith("netprobe_querier")))

    def test_proxy_querier_from_zero_address(self):
        exporter = self.exporter(watch_config())
        self.querier("igmp3-proxy,qqic=4,mrc=10")
        metrics = self.wait_for_querier(exporter, IGMP, "0.0.0.0", 3)
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 1)
        self.assertEqual(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{IGMP}}}"), 4)

    def test_interface_that_appears_goes_and_comes_back(self):
        exporter = self.exporter(watch_config(interfaces="[r1, late0]"))
        late = 'interface="late0",protocol="igmp"'
        wait_for(lambda: "no interface named late0" in exporter.log(), what="the missing interface logged")
        self.assertEqual(exporter.sample(f"netprobe_querier_present{{{late}}}"), 0)

        def add_link():
            subprocess.run(["ip", "link", "add", "late0", "netns", self.lab.ns("agent"), "type", "veth",
                            "peer", "name", "late1", "netns", self.lab.ns("r1")], check=True, capture_output=True)
            self.lab.run("agent", ["ip", "link", "set", "late0", "up"], check=True)
            self.lab.run("r1", ["ip", "addr", "add", "198.18.9.1/30", "dev", "late1"], check=True)
            self.lab.run("r1", ["ip", "link", "set", "late1", "up"], check=True)

        add_link()
        querier = self.querier("igmp3,qqic=4,mrc=10", interface="late1")
        self.wait_for_querier(exporter, late, "198.18.9.1", 3, timeout=10)
        self.stop(querier)
        self.lab.run("agent", ["ip", "link", "del", "late0"], check=True)
        wait_for(lambda: "interface went away" in exporter.log(), what="the vanished interface logged")
        add_link()  # a new late0, with a new ifindex
        self.querier("igmp3,qqic=5,mrc=10", interface="late1")
        metrics = wait_for(lambda: (m := exporter.metrics()) and self.value(m, f"netprobe_querier_query_interval_seconds{{{late}}}") == 5 and m,
                           timeout=10, what="queries on the new late0")
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{late}}}"), 1)
        # r1 has no querier: absent once 2 × 3 s + 1 s / 2 of listening passed.
        wait_for(lambda: exporter.sample(f"netprobe_querier_present{{{IGMP}}}") == 0, timeout=10, what="r1 without a querier")

    def test_without_cap_net_raw(self):
        exporter = self.exporter(watch_config(protocols="[igmp, mld]"), user=65534)
        failure = "cannot listen for queries"
        wait_for(lambda: exporter.log().count(failure) >= 2, what="the missing capability logged per protocol")
        self.assertEqual(exporter.log().count("need CAP_NET_RAW"), 2, exporter.log())
        self.querier("igmp3,qqic=4,mrc=10")
        time.sleep(1.5)
        metrics = exporter.metrics()
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 0)
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{MLD}}}"), 0)
        time.sleep(10.5)  # one retry, which fails the same way: not logged again
        self.assertEqual(exporter.log().count(failure), 2, exporter.log())

    def test_igmpproxy_is_seen_as_an_igmpv2_querier(self):
        missing = multicast_routing_missing()
        if missing:
            self.skipTest(missing)
        directory = temporary_directory(self)
        path = os.path.join(directory, "igmpproxy.conf")
        with open(path, "w") as f:
            f.write("phyint target upstream ratelimit 0 threshold 1\n  altnet 198.18.0.0/15\n"
                    "phyint agent downstream ratelimit 0 threshold 1\n")
        exporter = self.exporter(watch_config(query_interval="125s"))
        proxy = self.lab.popen("r1", ["igmpproxy", "-n", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop, proxy)
        metrics = self.wait_for_querier(exporter, IGMP, R1_ON_AGENT_LINK, 2, timeout=30)
        self.assertEqual(self.value(metrics, f"netprobe_querier_present{{{IGMP}}}"), 1)
        self.assertIsNone(self.value(metrics, f"netprobe_querier_query_interval_seconds{{{IGMP}}}"), "IGMPv2 announces none")
        self.assertIsNotNone(self.value(metrics, f"netprobe_querier_max_response_seconds{{{IGMP}}}"))


if __name__ == "__main__":
    unittest.main()
