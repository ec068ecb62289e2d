"""Tests of the network lab itself (Tests/lab/netlab.py), with the system's iputils ping from
the agent namespace. They need root: skipped otherwise, failed when root lacks a tool."""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import unittest

from harness import require_tool
from netlab import NETNS_ETC, Lab

HERE = os.path.dirname(os.path.abspath(__file__))
# An interpreter the unprivileged user can run (a pyenv one under /root may not be).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def netns_list():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def alive(pid):
    """True when `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def loss_percent(output):
    match = re.search(r"([\d.]+)% packet loss", output)
    assert match, output
    return float(match.group(1))


class NetlabTest(unittest.TestCase):
    def setUp(self):
        Lab.require(self)
        require_tool(self, "ping")
        require_tool(self, "setpriv")
        self.lab = Lab.for_test(self, targets=8)

    def ping(self, address, *options, ns="agent"):
        return self.lab.run(ns, ["ping", "-n", "-c", "1", "-W", "2", *options, address])

    def assertAnswers(self, address, ns="agent"):
        result = self.ping(address, ns=ns)
        self.assertEqual(result.returncode, 0, f"{address}: {result.stdout}{result.stderr}")
        self.assertIn(f"from {address}", result.stdout)

    def first_hop(self, address):
        """The router that answers a TTL/hop-limit 1 probe to `address` with Time Exceeded."""
        result = self.ping(address, "-t", "1")
        match = re.search(r"From (\S+) icmp_seq=\d+ (Time to live exceeded|Time exceeded: Hop limit)",
                          result.stdout)
        self.assertTrue(match, result.stdout + result.stderr)
        return match.group(1)

    def route_via(self, address):
        return self.lab.run("agent", ["ip", "route", "get", address]).stdout

    # ---- topology ----------------------------------------------------------------------------

    def test_addresses(self):
        lab = self.lab
        self.assertEqual(lab.target_v4(0), "198.19.0.1")
        self.assertEqual(lab.target_v6(0), "2001:db8:99::1")
        self.assertEqual(lab.addresses(3), ["198.19.0.1", "198.19.0.2", "198.19.0.3"])
        self.assertEqual(lab.addresses(2, family=6), ["2001:db8:99::1", "2001:db8:99::2"])
        self.assertEqual(len(lab.addresses(family="both")), 16)
        with self.assertRaises(IndexError):
            lab.target_v4(8)
        for name in lab.namespaces:
            self.assertRegex(name, rf"^np{os.getpid()}[0-9a-f]{{4}}-(agent|r1|r2|target)$")
            self.assertIn(name, netns_list())
        for role in ("agent", "r1", "r2", "target"):
            names = re.findall(r"^\d+: (\S+?)[@:]", lab.run(role, ["ip", "-o", "link"]).stdout, re.M)
            self.assertTrue(all(len(n) <= 15 for n in names), names)

    def test_target_answers_through_r1(self):
        address = self.lab.target_v4(0)
        self.assertIn("via 198.18.1.1 dev r1", self.route_via(address))
        self.assertAnswers(address)
        self.assertAnswers(self.lab.target_v4(7))
        self.assertEqual(self.first_hop(address), "198.18.1.1")

    def test_ipv6(self):
        address = self.lab.target_v6(0)
        self.assertIn("via 2001:db8:1::1 dev r1", self.route_via(address))
        self.assertAnswers(address)
        self.assertAnswers(self.lab.target_v6(7))
        self.assertEqual(self.first_hop(address), "2001:db8:1::1")

    def test_use_router_changes_the_first_hop(self):
        v4, v6 = self.lab.target_v4(3), self.lab.target_v6(3)
        self.lab.use_router(2)
        self.assertIn("via 198.18.2.1 dev r2", self.route_via(v4))
        self.assertIn("via 2001:db8:2::1 dev r2", self.route_via(v6))
        self.assertAnswers(v4)
        self.assertAnswers(v6)
        self.assertEqual(self.first_hop(v4), "198.18.2.1")
        self.assertEqual(self.first_hop(v6), "2001:db8:2::1")
        self.lab.use_router(1)
        self.assertIn("via 198.18.1.1 dev r1", self.route_via(v4))
        self.assertAnswers(v4)
        self.assertEqual(self.first_hop(v4), "198.18.1.1")
        self.assertEqual(self.first_hop(v6), "2001:db8:1::1")

    def test_nothing_routes_out_of_the_lab(self):
        for role in ("agent", "r1", "r2", "target"):
            for outside in ("192.0.2.1", "2001:4860::1"):
                result = self.lab.run(role, ["ip", "route", "get", outside])
                self.assertNotEqual(result.returncode, 0, f"{role} routes {outside}: {result.stdout}")
                self.assertIn("unreachable", result.stderr.lower())

    # ---- impairments -------------------------------------------------------------------------

    def test_drop_all_silences_one_address_only(self):
        silenced, other = self.lab.target_v4(1), self.lab.target_v4(2)
        self.lab.drop(silenced, 100)
        self.lab.drop(self.lab.target_v6(1), 100)
        self.assertEqual(self.ping(silenced, "-W", "0.5").returncode, 1)
        self.assertEqual(self.ping(self.lab.target_v6(1), "-W", "0.5").returncode, 1)
        self.assertAnswers(other)
        self.assertAnswers(self.lab.target_v6(2))
        self.lab.undrop(silenced)
        self.assertAnswers(silenced)
        self.lab.clear_drops()
        self.assertEqual(self.lab.drops, {})
        self.assertAnswers(self.lab.target_v6(1))

    def test_drop_half_loses_about_half(self):
        address = self.lab.target_v4(4)
        self.lab.drop(address, 50)
        result = self.lab.run("agent", ["ping", "-n", "-i", "0.01", "-c", "200", "-q", "-W", "0.5", address])
        loss = loss_percent(result.stdout)
        self.assertGreaterEqual(loss, 30, result.stdout)
        self.assertLessEqual(loss, 70, result.stdout)
        self.lab.drop(address, 100)  # a changed share replaces the old one
        self.assertEqual(self.ping(address, "-W", "0.5").returncode, 1)
        self.lab.drop(address, 0)
        self.assertAnswers(address)

    def test_drops_on_many_addresses_are_quick(self):
        lab = Lab.for_test(self, targets=40)
        started = time.monotonic()
        for index in range(25):
            lab.drop(lab.target_v4(index), 100)
        lab.drop(lab.addresses(25, family=6), 100)  # a list: one nft transaction
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5)
        self.assertEqual(len(lab.drops), 50)
        result = lab.run("agent", ["ping", "-n", "-c", "1", "-W", "0.5", lab.target_v4(24)])
        self.assertEqual(result.returncode, 1)
        result = lab.run("agent", ["ping", "-n", "-c", "1", "-W", "2", lab.target_v4(25)])
        self.assertEqual(result.returncode, 0, result.stdout)
        lab.clear_drops()
        result = lab.run("agent", ["ping", "-n", "-c", "1", "-W", "2", lab.target_v6(24)])
        self.assertEqual(result.returncode, 0, result.stdout)

    def test_host_unreachable(self):
        v4, v6 = self.lab.target_v4(5), self.lab.target_v6(5)
        self.lab.host_unreachable(v4)
        self.lab.host_unreachable(v6)
        result = self.ping(v4)
        self.assertIn("From 198.18.1.1 icmp_seq=1 Destination Host Unreachable", result.stdout)
        result = self.ping(v6)
        self.assertIn("From 2001:db8:1::1 icmp_seq=1 Destination unreachable: Address unreachable",
                      result.stdout)
        self.assertAnswers(self.lab.target_v4(6))
        self.lab.use_router(2)  # only r1 rejects
        self.assertAnswers(v4)
        self.lab.use_router(1)
        self.lab.host_reachable(v4)
        self.assertAnswers(v4)

    def test_icmp_ratelimit(self):
        address = self.lab.target_v4(0)

        def time_exceeded(count):
            result = self.lab.run("agent", ["ping", "-n", "-t", "1", "-i", "0.02", "-c", str(count),
                                            "-W", "0.3", address])
            return result.stdout.count("Time to live exceeded")

        self.lab.icmp_ratelimit(1, 0)
        self.assertEqual(time_exceeded(30), 30)
        self.lab.icmp_ratelimit(1, 1000)
        self.assertLess(time_exceeded(30), 15)

    # ---- namespaces' environment -------------------------------------------------------------

    def test_set_hosts(self):
        lab = self.lab
        lab.set_hosts("agent", {"box.lab": lab.target_v4(0)})
        result = lab.run("agent", ["getent", "hosts", "box.lab"])
        self.assertEqual(result.stdout.split(), [lab.target_v4(0), "box.lab"])
        self.assertNotEqual(subprocess.run(["getent", "hosts", "box.lab"], capture_output=True).returncode, 0,
                            "the host's /etc/hosts must not change")
        # A process that is already running sees the next change.
        waiting = lab.popen("agent", ["sh", "-c", "read line; getent hosts box.lab"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
        lab.set_hosts("agent", {"box.lab": lab.target_v6(1), "other.lab": lab.target_v4(2)})
        out, _ = waiting.communicate("go\n", timeout=10)
        self.assertEqual(out.split(), [lab.target_v6(1), "box.lab"])
        other = lab.run("agent", ["getent", "hosts", "other.lab"])
        self.assertEqual(other.stdout.split()[0], lab.target_v4(2))
        result = self.ping("box.lab")
        self.assertIn(f"from {lab.target_v6(1)}", result.stdout)

    def test_unprivileged_ping_as_nobody(self):
        lab = self.lab
        probe = textwrap.dedent(f"""
            import socket, struct, sys
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            except PermissionError as error:
                print("EACCES", error.errno); sys.exit(3)
            s.settimeout(2)
            s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"lab", ("{lab.target_v4(0)}", 0))
            data, peer = s.recvfrom(1500)
            print("reply", peer[0], data[0])
        """)
        # An interpreter cannot be copied where nobody reaches it (it needs its library too):
        # without a system one, say so rather than fail on the interpreter's own error.
        usable = lab.run("agent", [PYTHON, "-c", "import socket"], user=65534)
        if usable.returncode != 0:
            self.skipTest(f"{PYTHON} does not run as nobody: {usable.stderr.strip()[-200:]}")
        before = lab.run("agent", [PYTHON, "-c", probe], user=65534)
        self.assertEqual(before.returncode, 3, before.stdout + before.stderr)
        lab.allow_unprivileged_ping()
        self.assertEqual(lab.run("agent", ["cat", "/proc/sys/net/ipv4/ping_group_range"]).stdout.split(),
                         ["0", "2147483647"])
        after = lab.popen("agent", [PYTHON, "-c", probe], user=65534, stdout=subprocess.PIPE,
                          text=True)
        out, _ = after.communicate(timeout=10)
        self.assertEqual(out.split(), ["reply", lab.target_v4(0), "0"])
        whoami = lab.run("agent", ["id", "-u"], user=65534)
        self.assertEqual(whoami.stdout.strip(), "65534")

    # ---- cleanup and scale -------------------------------------------------------------------

    def test_close_removes_everything(self):
        with Lab(targets=2) as lab:
            names = lab.namespaces
            sleeper = lab.popen("target", ["sleep", "600"])
            lab.stop_timeout = 0.5
            stubborn = lab.popen("agent", ["sh", "-c", "trap '' TERM; sleep 600 & echo $!; wait"],
                                 stdout=subprocess.PIPE, text=True)
            grandchild = int(stubborn.stdout.readline())
            lab.set_hosts("agent", {"x.lab": lab.target_v4(0)})
            for name in names:
                self.assertTrue(os.path.isdir(os.path.join(NETNS_ETC, name)))
        listed = netns_list()
        for name in names:
            self.assertNotIn(name, listed)
            self.assertFalse(os.path.exists(os.path.join(NETNS_ETC, name)))
        self.assertIsNotNone(sleeper.poll())
        self.assertEqual(stubborn.returncode, -signal.SIGKILL)
        stubborn.stdout.close()
        self.assertFalse(alive(grandchild), "a child left behind by a popen process survived close()")
        self.assertNotIn(lab.prefix, netns_list())
        lab.close()  # twice is harmless

    def test_interpreter_exit_and_sigterm_remove_the_lab(self):
        script = textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {HERE!r})
            from netlab import Lab
            lab = Lab(targets=2)
            lab.popen("agent", ["sleep", "600"])
            print(lab.prefix, flush=True)
            if sys.argv[1] == "wait":
                time.sleep(600)
        """)
        for mode in ("exit", "wait"):
            child = subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            self.addCleanup(lambda c=child: c.poll() is None and (c.kill(), c.wait()))
            prefix = child.stdout.readline().strip()
            self.assertTrue(prefix.startswith("np"), prefix)
            if mode == "wait":
                self.assertIn(prefix, netns_list())
                child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=20)
            self.assertNotIn(prefix, netns_list(), f"{mode}: {err}")
            if mode == "wait":  # SIGTERM became KeyboardInterrupt, so atexit ran
                self.assertIn("KeyboardInterrupt", err)
            left = os.listdir(NETNS_ETC) if os.path.isdir(NETNS_ETC) else []
            self.assertFalse([d for d in left if d.startswith(prefix)], mode)

    def test_thousand_targets_build_in_seconds(self):
        started = time.monotonic()
        lab = Lab.for_test(self, targets=1000)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5)
        for address in (lab.target_v4(999), lab.target_v6(999), lab.target_v4(500)):
            result = lab.run("agent", ["ping", "-n", "-c", "1", "-W", "2", address])
            self.assertEqual(result.returncode, 0, result.stdout)
        self.assertEqual(lab.target_v4(999), "198.19.3.238")
        self.assertEqual(lab.target_v6(999), "2001:db8:99::3e8")
        print(f"\n  netlab: built 1,000-target lab in {elapsed:.2f}s", end=" ", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
