"""End-to-end tests of the exporter binary on loopback: what `make run` serves, what
`--check-config` prints, reloads, shutdown, and a real Prometheus and promtool as peers."""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse

from harness import (BINARY, ROOT, Exporter, free_port, request, require_tool, start_process,
                     temporary_directory, wait_for, gunzip)

GOOD = "targets:\n  - {name: lo, host: 127.0.0.1}\n"
BROKEN = "targets:\n  - {name: lo, host: 127.0.0.1}\n  - name: lo\n    host: 127.0.0.2\n    ttl: 0\n"


class CheckConfigTest(unittest.TestCase):
    def check(self, *args, timeout=30):
        return subprocess.run([BINARY, "--check-config", *args], capture_output=True, text=True, timeout=timeout)

    def test_shipped_configs_are_valid(self):
        files = [os.path.join(ROOT, "config", "netprobe.yml")]
        examples = os.path.join(ROOT, "config", "examples")
        files += [os.path.join(examples, name) for name in sorted(os.listdir(examples)) if name.endswith(".yml")]
        self.assertGreaterEqual(len(files), 5)
        for path in files:
            result = self.check(f"--config.file={path}")
            self.assertEqual(result.returncode, 0, f"{path}: {result.stderr}")
            self.assertIn("configuration OK", result.stdout)

    def test_embedded_default_summary(self):
        result = self.check()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("embedded default configuration: configuration OK", result.stdout)
        self.assertIn("ICMP targets: 2", result.stdout)
        self.assertIn("loopback-v4: 127.0.0.1 every 1s", result.stdout)

    def test_devices_and_fifos_fail_at_once_with_exit_2(self):
        # /dev/zero once grew the process to 6.6 GB and a FIFO blocked for ever: both are
        # refused before a byte is read, whatever the size or the writer.
        fifo = os.path.join(temporary_directory(self), "netprobe.yml")
        os.mkfifo(fifo)
        for path, kind in [("/dev/zero", "a character device"), ("/dev/urandom", "a character device"),
                           (fifo, "a FIFO (named pipe)")]:
            started = time.monotonic()
            result = self.check(f"--config.file={path}")
            elapsed = time.monotonic() - started
            self.assertEqual(result.returncode, 2, path)
            self.assertLess(elapsed, 1.0, f"{path} took {elapsed:.2f} s")
            self.assertEqual(result.stdout, "")
            self.assertEqual(result.stderr, f"{path}:1:1: cannot read the file: it is {kind}, not a regular file\n")

    def test_error_output_is_bounded(self):
        directory = temporary_directory(self)
        # A 10 MB value is shown as its first 80 characters and its length.
        path = os.path.join(directory, "long.yml")
        with open(path, "w") as f:
            f.write('targets:\n  - host: "' + "x" * 10_000_000 + '"\n')
        # Files this size take seconds in a debug build on a busy machine.
        result = self.check(f"--config.file={path}", timeout=180)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr, f"{path}:2:11: '{'x' * 80}… (10000000 bytes)' is neither an IP address "
                                        "nor a valid DNS name\n")
        # 200,000 duplicate names: 50 lines and a count, not 200,000 lines.
        path = os.path.join(directory, "duplicates.yml")
        with open(path, "w") as f:
            f.write("targets:\n" + "  - {name: same, host: 198.18.0.1}\n" * 200_000)
        result = self.check(f"--config.file={path}", timeout=180)
        self.assertEqual(result.returncode, 2)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 51)
        self.assertEqual(lines[-1], f"{path}: … and 199949 more errors (199999 in all)")

    def test_broken_file_prints_file_line_column_and_exits_2(self):
        path = os.path.join(temporary_directory(self), "bad.yml")
        with open(path, "w") as f:
            f.write(BROKEN)
        result = self.check(f"--config.file={path}")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertEqual(result.stderr.splitlines(), [
            f"{path}:3:11: duplicate target name 'lo' (first at 2:12)",
            f"{path}:5:10: 0 out of range: expected an integer from 1 to 255",
        ])

    def test_check_config_opens_no_socket(self):
        # strace is not needed: the check must work where sockets are forbidden. A listen
        # address that is taken proves no bind is attempted.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = self.check(f"--web.listen-address=127.0.0.1:{port}")
        self.assertEqual(result.returncode, 0, result.stderr)


class ServingTest(unittest.TestCase):
    def test_default_config_serves_metrics_that_promtool_accepts(self):
        promtool = require_tool(self, "promtool")
        exporter = Exporter(self)
        for path in ["/metrics", "/", "/-/healthy", "/-/ready"]:
            status, _, _ = exporter.get(path)
            self.assertEqual(status, 200, path)
        status, headers, body = exporter.get("/metrics")
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())
        text = body.decode()
        for family in ["netprobe_build_info", "netprobe_config_last_reload_successful", "process_cpu_seconds_total",
                       "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"]:
            self.assertIn(f"# TYPE {family} ", text)
        self.assertGreater(exporter.sample("process_resident_memory_bytes"), 1e6)

    def test_gzip_and_errors_over_the_wire(self):
        exporter = Exporter(self)
        status, headers, body = exporter.get("/metrics", {"Accept-Encoding": "gzip"})
        self.assertEqual((status, headers.get("Content-Encoding")), (200, "gzip"))
        self.assertIn(b"netprobe_build_info", gunzip(body))
        self.assertEqual(request(exporter.port, "DELETE", "/metrics")[0], 405)
        self.assertEqual(exporter.get("/nope")[0], 404)
        with socket.create_connection(("127.0.0.1", exporter.port), timeout=5) as raw:
            raw.sendall(b"\x00\x01garbage\r\n\r\n")
            self.assertTrue(raw.recv(100).startswith(b"HTTP/1.1 400 "))

    def test_real_prometheus_scrapes_the_agent(self):
        prometheus = require_tool(self, "prometheus")
        exporter = Exporter(self)
        directory = temporary_directory(self)
        config = os.path.join(directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                    "scrape_configs:\n"
                    f"  - job_name: netprobe\n    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n")
        port = free_port()
        start_process(self, [prometheus, f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
                             f"--web.listen-address=127.0.0.1:{port}"])

        def query(expression):
            url = "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
            status, _, body = request(port, "GET", url)
            return json.loads(body)["data"]["result"] if status == 200 else None

        result = wait_for(lambda: query("netprobe_build_info"), timeout=60, what="Prometheus to scrape the agent")
        self.assertEqual(result[0]["metric"]["job"], "netprobe")
        self.assertEqual(result[0]["value"][1], "1")
        up = wait_for(lambda: query('up{job="netprobe"}'), timeout=30, what="up")
        self.assertEqual(up[0]["value"][1], "1")
        targets = json.loads(request(port, "GET", "/api/v1/targets")[2])["data"]["activeTargets"]
        self.assertEqual(targets[0]["health"], "up", targets[0].get("lastError"))


class ReloadAndShutdownTest(unittest.TestCase):
    def config_file(self, text):
        path = os.path.join(temporary_directory(self), "netprobe.yml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_bad_reload_keeps_serving_the_old_config(self):
        path = self.config_file(GOOD)
        exporter = Exporter(self, config=path)
        self.assertEqual(exporter.sample('netprobe_config_items{kind="targets"}'), 1)
        with open(path, "w") as f:
            f.write(BROKEN)
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: exporter.sample("netprobe_config_last_reload_successful") == 0, what="the failed reload")
        self.assertIn(f"{path}:5:10: 0 out of range", exporter.log())
        self.assertEqual(exporter.sample('netprobe_config_items{kind="targets"}'), 1)
        status, _, body = request(exporter.port, "POST", "/-/reload")
        self.assertEqual(status, 500)
        self.assertIn(f"{path}:3:11: duplicate target name 'lo'", body.decode())
        self.assertEqual(exporter.sample('netprobe_config_reloads_total{result="failure"}'), 2)
        self.assertEqual(exporter.get("/-/ready")[0], 200)

        with open(path, "w") as f:
            f.write(GOOD + "  - {name: lo2, host: 127.0.0.2}\n")
        self.assertEqual(request(exporter.port, "POST", "/-/reload")[0], 200)
        self.assertEqual(exporter.sample("netprobe_config_last_reload_successful"), 1)
        self.assertEqual(exporter.sample('netprobe_config_items{kind="targets"}'), 2)

    def test_broken_file_at_start_exits_2_with_the_error(self):
        path = self.config_file(BROKEN)
        result = subprocess.run([BINARY, f"--config.file={path}", "--web.listen-address=127.0.0.1:0"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f'error="{path}:3:11: duplicate target name', result.stderr)

    def test_sigterm_and_sigint_stop_within_a_second(self):
        for number in (signal.SIGTERM, signal.SIGINT):
            exporter = Exporter(self)
            idle = socket.create_connection(("127.0.0.1", exporter.port))
            self.addCleanup(idle.close)
            started = time.monotonic()
            exporter.signal(number)
            exporter.process.wait(timeout=5)
            self.assertLess(time.monotonic() - started, 1.0)
            self.assertEqual(exporter.process.returncode, 0)
            self.assertIn("msg=stopped", exporter.log())

    def test_port_in_use_is_a_clear_error(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = subprocess.run([BINARY, f"--web.listen-address=127.0.0.1:{port}"],
                                    capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("bind: Address already in use (EADDRINUSE)", result.stderr)

    def test_json_logs(self):
        exporter = Exporter(self, "--log.format=json")
        lines = [json.loads(line) for line in exporter.log().splitlines() if line.startswith("{")]
        self.assertTrue(any(line["msg"] == "listening" and line["level"] == "info" for line in lines), lines)


class LoadTest(unittest.TestCase):
    def test_200_concurrent_scrapes_and_50_slow_connections_all_answered(self):
        """Many clients at once: the slow ones from 2 addresses, the scrapers from 10 (one
        address holds at most --web.max-connections-per-ip, 32, connections)."""
        exporter = Exporter(self)
        slow_request = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n\r\n"
        slow = [socket.create_connection(("127.0.0.1", exporter.port), timeout=30,
                                         source_address=(f"127.0.9.{i % 2 + 1}", 0)) for i in range(50)]
        for s in slow:
            self.addCleanup(s.close)

        def dribble():
            for offset in range(0, len(slow_request), 4):
                for s in slow:
                    s.sendall(slow_request[offset:offset + 4])
                time.sleep(0.05)

        results = []
        lock = threading.Lock()

        def scrape(index):
            connection = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=30,
                                                    source_address=(f"127.0.10.{index % 10 + 1}", 0))
            try:
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                ok = response.status == 200 and b"netprobe_build_info" in response.read()
            except (OSError, http.client.HTTPException) as error:
                ok = error
            finally:
                connection.close()
            with lock:
                results.append(ok)

        dribbler = threading.Thread(target=dribble)
        dribbler.start()
        scrapers = [threading.Thread(target=scrape, args=(i,)) for i in range(200)]
        for t in scrapers:
            t.start()
        for t in scrapers:
            t.join(60)
        dribbler.join(60)
        self.assertEqual(results.count(True), 200, [r for r in results if r is not True][:5])
        answers = []
        for s in slow:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            answers.append(data.startswith(b"HTTP/1.1 200 "))
        self.assertEqual(answers.count(True), 50)


if __name__ == "__main__":
    unittest.main()
