"""End-to-end tests of the HTTP server under abuse by clients on the same network (issue 18):
slowloris and idle sockets, slow readers, descriptor exhaustion. Each attack is short (6-8 s),
bounded in sockets, on loopback only, and stopped (its sockets closed) even on failure; the
assertions are what an operator needs: health checks and scrapes answered within a second,
memory within the documented bound, no spinning core, and the evictions counted.

The attackers use addresses of 127.0.0.0/8 other than 127.0.0.1 as their sources (Linux
answers every one of them on `lo`), so that a well-behaved client on 127.0.0.1 is another
client, as it would be on a network.

They time answers and count CPU, so they run alone (`@exclusive`), not beside other lab tests."""
import multiprocessing
import os
import re
import resource
import select
import socket
import subprocess
import threading
import time
import unittest

from harness import Exporter, request, wait_for, write_config
from parallel_runner import exclusive

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def send_queue_bytes(port):
    """Bytes queued in the kernel for sending on every socket of the server's port (the
    Send-Q column of `ss`), whatever the connection state."""
    output = subprocess.run(["ss", "-tanH", f"( sport = :{port} )"], capture_output=True, text=True,
                            check=True, timeout=10).stdout
    total = 0
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] != "LISTEN":
            total += int(fields[2])
    return total


def sample(exporter, series):
    """One series' value from a scrape (0 when absent)."""
    value = exporter.sample(series)
    return value or 0.0


class Attacker:
    """A bounded set of hostile sockets from given source addresses, kept open by a child
    process (so it never holds the GIL the well-behaved client's thread needs): `idle` ones
    connect and wait, `dribble` ones send a request head a byte at a time and never finish
    it, `slow_read` ones request `path` with a tiny receive window and never read. Sockets
    the server closes are reopened, at most `rate` a second (slowhttptest's `-r`);
    `reopen=False` leaves them closed. `held()` is how many are open; `stop()`, which the
    test's cleanup also calls, ends the child by its PID."""

    def __init__(self, test, port, addresses, per_address, mode, path="/", reopen=True, rate=200):
        self.port, self.mode, self.path, self.reopen, self.rate = port, mode, path, reopen, rate
        self.slots = [address for address in addresses for _ in range(per_address)]
        self.sockets = {}
        self.sent = {}
        self.opened = 0
        self.closed_by_server = 0
        self.open_count = multiprocessing.Value("i", 0)
        self.running = multiprocessing.Event()
        self.running.set()
        self.process = multiprocessing.get_context("fork").Process(target=self._run, daemon=True)
        test.addCleanup(self.stop)

    def start(self):
        self.process.start()
        return self

    def held(self):
        return self.open_count.value

    def _open(self, slot):
        s = socket.socket()
        if self.mode == "slow_read":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((self.slots[slot], 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        self.sockets[slot] = s
        self.opened += 1
        self.sent[slot] = False

    def _run(self):
        for slot in range(len(self.slots)):
            if not self.running.is_set():
                break
            self._open(slot)
        budget, second = self.rate, time.monotonic()
        while self.running.is_set():
            self.open_count.value = len(self.sockets)
            if time.monotonic() - second >= 1:
                budget, second = self.rate, time.monotonic()
            for slot in [slot for slot in range(len(self.slots)) if slot not in self.sockets]:
                if not self.reopen or budget <= 0:
                    break
                budget -= 1
                self._open(slot)
            for slot, s in list(self.sockets.items()):
                try:
                    if self.mode == "dribble":
                        s.send(b"GET / HTTP/1.1\r\nX-a: " if not self.sent[slot] else b"a")
                        self.sent[slot] = True
                    elif self.mode == "slow_read" and not self.sent[slot]:
                        s.send(f"GET {self.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        self.sent[slot] = True
                except BlockingIOError:
                    pass
                except OSError:
                    self._lost(slot)
            poller = select.poll()
            by_fd = {}
            # A slow reader's socket has unread data all along: wait for its end only
            # (POLLRDHUP; resets and errors are always reported), or this loop would spin.
            events = select.POLLRDHUP if self.mode == "slow_read" else select.POLLIN
            for slot, s in self.sockets.items():
                poller.register(s, events)
                by_fd[s.fileno()] = slot
            for fd, _ in poller.poll(200):
                slot = by_fd[fd]
                s = self.sockets[slot]
                try:
                    # Slow readers never read their response: only a reset or end shows here.
                    if self.mode == "slow_read":
                        raise OSError("closed by the server")
                    data = s.recv(1, socket.MSG_PEEK)
                    if data:
                        s.recv(65536)
                        continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._lost(slot)

    def _lost(self, slot):
        self.sockets.pop(slot).close()
        self.closed_by_server += 1

    def stop(self):
        """Ends the child by its PID; its sockets close with it."""
        self.running.clear()
        if self.process.pid is None:
            return
        self.process.join(3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class WellBehavedClient:
    """Asks for /-/healthy and the metrics twice a second on fresh connections from
    127.0.0.1 and records (path, status, seconds) for each; a failure is status 0."""

    def __init__(self, test, port, paths=("/-/healthy", "/metrics")):
        self.port, self.paths = port, paths
        self.results = []
        self.running = threading.Event()
        self.running.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        test.addCleanup(self.stop)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while self.running.is_set():
            for path in self.paths:
                started = time.monotonic()
                try:
                    status, _, _ = request(self.port, "GET", path, timeout=5)
                except OSError:
                    status = 0
                self.results.append((path, status, time.monotonic() - started))
            time.sleep(0.5)

    def stop(self):
        self.running.clear()
        if self.thread.is_alive():
            self.thread.join(10)

    def assert_all_answered_within(self, test, seconds):
        test.assertGreaterEqual(len(self.results), 8, f"too few requests made to judge: {self.results}")
        late = [r for r in self.results if r[1] != 200 or r[2] > seconds]
        test.assertEqual(late, [], f"{len(late)} of {len(self.results)} requests failed or took over {seconds}s; "
                               f"all: {[(p, s, round(t, 3)) for p, s, t in self.results]}")
        return max(r[2] for r in self.results)


def raise_own_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed


@exclusive
class SlowlorisTest(unittest.TestCase):
    def _attack(self, exporter, attackers, seconds):
        client = WellBehavedClient(self, exporter.port)
        for attacker in attackers:
            attacker.start()
        time.sleep(1)  # the attackers' sockets are open before the well-behaved client asks
        client.start()
        time.sleep(seconds)
        client.stop()
        held = sum(a.held() for a in attackers)
        slowest = client.assert_all_answered_within(self, 1.0)
        for attacker in attackers:
            attacker.stop()
        return held, slowest

    def test_one_address_with_600_idle_and_dribbling_sockets(self):
        """One client opening 600 sockets holds 32 of them; everyone else is served."""
        if not raise_own_file_limit(2000):
            self.skipTest("the test needs 2,000 descriptors of its own")
        exporter = Exporter(self)
        attackers = [Attacker(self, exporter.port, ["127.0.2.1"], 300, "idle"),
                     Attacker(self, exporter.port, ["127.0.2.1"], 300, "dribble")]
        held, slowest = self._attack(exporter, attackers, 6)
        open_connections = sample(exporter, "netprobe_http_open_connections")
        self.assertLessEqual(open_connections, 32 + 2, "one address holds at most --web.max-connections-per-ip")
        evicted = sum(sample(exporter, f'netprobe_http_evicted_connections_total{{reason="{r}"}}')
                      for r in ("idle", "incomplete_request"))
        self.assertGreater(evicted, 0)
        print(f"\n  one address: {held} attacker sockets at the end, slowest answer {slowest * 1000:.0f} ms, "
              f"{evicted:.0f} evicted", end=" ")

    def test_1000_sockets_from_40_addresses_fill_every_slot(self):
        """Many addresses together hold every slot (512): newcomers take the place of idle
        and dribbling sockets, and health checks and scrapes are answered within 1 s."""
        if not raise_own_file_limit(3000):
            self.skipTest("the test needs 3,000 descriptors of its own")
        exporter = Exporter(self)
        addresses = [f"127.0.3.{i}" for i in range(1, 41)]
        attackers = [Attacker(self, exporter.port, addresses[:20], 25, "idle"),
                     Attacker(self, exporter.port, addresses[20:], 25, "dribble")]
        held, slowest = self._attack(exporter, attackers, 6)
        self.assertGreaterEqual(held, 400, "the attack held most of the 512 slots")
        self.assertGreater(sample(exporter, 'netprobe_http_evicted_connections_total{reason="idle"}'), 0)
        self.assertGreater(sample(exporter, 'netprobe_http_evicted_connections_total{reason="incomplete_request"}')
                           + sample(exporter, 'netprobe_http_evicted_connections_total{reason="pressure_timeout"}'), 0)
        self.assertLessEqual(sample(exporter, "netprobe_http_open_connections"), 512)
        print(f"\n  40 addresses: {held} attacker sockets at the end, slowest answer {slowest * 1000:.0f} ms", end=" ")


@exclusive
class SlowReaderTest(unittest.TestCase):
    def test_slow_readers_stay_within_the_clients_share_of_the_budget(self):
        """One address asking for a 2 MB exposition on 300 sockets and never reading: the
        process stays under 128 MiB resident, the kernel's send queues under the client's
        32 MiB share, and another client's scrapes are answered within 1 s."""
        if not raise_own_file_limit(1000):
            self.skipTest("the test needs 1,000 descriptors of its own")
        targets = "".join(f"  - {{name: t{i}, host: 127.4.{i // 250}.{i % 250 + 1}}}\n" for i in range(500))
        config = write_config(self, "defaults:\n  interval: 10s\n  timeout: 1s\ntargets:\n" + targets)
        exporter = Exporter(self, config=config)
        size = wait_for(lambda: len(request(exporter.port, "GET", "/metrics")[2]) > (1 << 20) and
                        len(request(exporter.port, "GET", "/metrics")[2]), timeout=30, what="a scrape over 1 MiB")
        client = WellBehavedClient(self, exporter.port)
        attacker = Attacker(self, exporter.port, ["127.0.5.1"], 300, "slow_read", path="/metrics").start()
        time.sleep(1)
        client.start()
        peak_rss = peak_queue = 0
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            peak_rss = max(peak_rss, rss_bytes(exporter.process.pid))
            peak_queue = max(peak_queue, send_queue_bytes(exporter.port))
            time.sleep(0.25)
        client.stop()
        slowest = client.assert_all_answered_within(self, 1.0)
        attacker.stop()
        self.assertLess(peak_rss, 128 << 20)
        self.assertLess(peak_queue, (32 << 20) + (1 << 20), "kernel send queues within the client's share")
        self.assertGreater(sample(exporter, 'netprobe_http_requests_total{handler="metrics",code="503"}'), 0,
                           "the slow reader was held to its share")
        print(f"\n  slow readers: scrape {size / 1e6:.1f} MB, peak RSS {peak_rss / 2**20:.1f} MiB, peak send queues "
              f"{peak_queue / 2**20:.1f} MiB, slowest answer {slowest * 1000:.0f} ms", end=" ")


@exclusive
class DescriptorTest(unittest.TestCase):
    def test_start_raises_the_soft_limit_and_fits_the_connection_limit(self):
        """Under `prlimit --nofile=100:200` the exporter raises its soft limit to 200 and
        lowers --web.max-connections to what that leaves, saying so in the log."""
        exporter = Exporter(self, wrapper=["prlimit", "--nofile=100:200", "--"])
        self.assertEqual(sample(exporter, "process_max_fds"), 200)
        match = re.search(r"--web.max-connections lowered.*max_connections=(\d+)", exporter.log())
        self.assertIsNotNone(match, exporter.log())
        self.assertTrue(100 < int(match.group(1)) < 200, match.group(0))

    def test_exhausted_descriptors_neither_spin_nor_shut_out_health_checks(self):
        """With the limit lowered under the running exporter (64) and 300 idle clients from 12
        addresses, accept fails with EMFILE: the loop closes idle connections to take new ones
        instead of spinning (under 10 % of a core), logs the episode once, counts it, and
        health checks are answered within 1 s."""
        if not raise_own_file_limit(1000):
            self.skipTest("the test needs 1,000 descriptors of its own")
        # No targets: the CPU measured is the HTTP server's. A ping engine's raw socket
        # would also count every ICMP packet on the host's loopback, anyone's.
        exporter = Exporter(self, config=write_config(self, "targets: []\n"))
        pid = exporter.process.pid
        subprocess.run(["prlimit", f"--pid={pid}", "--nofile=64:64"], check=True, timeout=10)
        attacker = Attacker(self, exporter.port, [f"127.0.6.{i}" for i in range(1, 13)], 25, "idle",
                            reopen=False).start()
        time.sleep(1)
        client = WellBehavedClient(self, exporter.port, paths=("/-/healthy",)).start()
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(5)
        share = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
        client.stop()
        slowest = client.assert_all_answered_within(self, 1.0)
        attacker.stop()
        self.assertLess(share, 0.10, f"the exporter used {share:.0%} of a core while out of descriptors")
        self.assertGreater(sample(exporter, 'netprobe_http_accept_errors_total{errno="EMFILE"}'), 0)
        self.assertEqual(exporter.log().count("out of file descriptors"), 1, exporter.log())
        print(f"\n  descriptors: {share:.1%} of a core, slowest health check {slowest * 1000:.0f} ms", end=" ")


if __name__ == "__main__":
    unittest.main()
