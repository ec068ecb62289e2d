"""Pushing to a real prometheus-pushgateway on loopback, and to a misbehaving one."""
import http.server
import os
import signal
import threading
import time
import unittest

from harness import (Exporter, free_port, request, require_tool, start_process, temporary_directory,
                     wait_for)


def push_config(directory, port, extra=""):
    path = os.path.join(directory, "netprobe.yml")
    with open(path, "w") as f:
        f.write("targets:\n  - {name: lo, host: 127.0.0.1}\n"
                "push:\n"
                f"  url: http://127.0.0.1:{port}\n"
                "  job: netprobe-lab\n"
                "  instance: agent-1\n"
                "  grouping: {owner: \"ops team/eu\", site: fra}\n"
                "  interval: 1s\n"
                "  timeout: 800ms\n" + extra)
    return path


class Gateway:
    """The Debian prometheus-pushgateway on an ephemeral loopback port."""

    def __init__(self, test, port=None):
        self.binary = require_tool(test, "prometheus-pushgateway")
        self.test = test
        self.port = port or free_port()
        self.start()

    def start(self):
        self.process = start_process(self.test, [self.binary, f"--web.listen-address=127.0.0.1:{self.port}",
                                                 "--persistence.file="])
        wait_for(lambda: request(self.port, "GET", "/-/ready")[0] == 200, what="the pushgateway")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def metrics(self):
        return request(self.port, "GET", "/metrics")[2].decode()


class PushTest(unittest.TestCase):
    GROUP = 'instance="agent-1",job="netprobe-lab",owner="ops team/eu",site="fra"'

    def test_pushed_series_carry_the_grouping_labels(self):
        gateway = Gateway(self)
        # gzip on: the gateway must inflate the body to see any series at all.
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port, "  gzip: true\n"))
        text = wait_for(lambda: (m := gateway.metrics()) and "netprobe_build_info{" in m and m,
                        what="the first push")
        lines = [line for line in text.splitlines() if line.startswith("netprobe_build_info{")]
        self.assertEqual(len(lines), 1, lines)
        for label in ['instance="agent-1"', 'job="netprobe-lab"', 'owner="ops team/eu"', 'site="fra"']:
            self.assertIn(label, lines[0])
        self.assertIn(f'push_time_seconds{{{self.GROUP}}}', text)
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 2, what="two pushes")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="failure"}'), 0)
        self.assertGreater(exporter.sample("netprobe_push_last_success_timestamp_seconds"), time.time() - 60)

    def test_gateway_down_then_back(self):
        gateway = Gateway(self)
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port))
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 1, what="a push")
        gateway.stop()
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="failure"}') >= 2, what="failed pushes")
        status, _, _ = exporter.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("push failed", exporter.log())
        self.assertIn("Failed to connect to 127.0.0.1 port", exporter.log())
        before = exporter.sample('netprobe_pushes_total{result="success"}')
        gateway.start()
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') > before, timeout=15,
                 what="pushes to resume")
        self.assertIn("push recovered", exporter.log())
        wait_for(lambda: "netprobe_build_info{" in gateway.metrics(), what="series back on the gateway")

    def test_delete_on_shutdown_removes_the_group(self):
        gateway = Gateway(self)
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port,
                                                     "  delete_on_shutdown: true\n"))
        wait_for(lambda: "netprobe_build_info{" in gateway.metrics(), what="the first push")
        exporter.signal(signal.SIGTERM)
        exporter.process.wait(timeout=10)
        self.assertEqual(exporter.process.returncode, 0)
        self.assertIn("deleted the push group on shutdown", exporter.log())
        self.assertNotIn("netprobe_build_info{", gateway.metrics())
        self.assertNotIn(f'push_time_seconds{{{self.GROUP}}}', gateway.metrics())

    def test_slow_or_failing_gateway_never_delays_scrapes(self):
        behaviour = {"mode": "slow"}
        hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hits.append(behaviour["mode"])
                if behaviour["mode"] == "slow":
                    time.sleep(10)
                body = b"storage broke\n"
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        exporter = Exporter(self, config=push_config(temporary_directory(self), server.server_address[1]))
        wait_for(lambda: hits, what="a push to the slow gateway")
        worst = 0.0
        for _ in range(20):
            started = time.monotonic()
            self.assertEqual(exporter.get("/metrics")[0], 200)
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.1)
        self.assertLess(worst, 0.5, "a scrape waited on the push")
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="failure"}') >= 1, what="the timeout")
        behaviour["mode"] = "error"
        wait_for(lambda: "status=500" in exporter.log() or hits.count("error") >= 3, what="500 answers")
        started = time.monotonic()
        self.assertEqual(exporter.get("/metrics")[0], 200)
        self.assertLess(time.monotonic() - started, 0.5)
        # A 500 is retried after a backoff: the retry is counted when it starts.
        wait_for(lambda: exporter.sample("netprobe_push_retries_total") > 0, timeout=15, what="a retry after a 500")


if __name__ == "__main__":
    unittest.main()
