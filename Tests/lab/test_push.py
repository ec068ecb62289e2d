"""Pushing to a real prometheus-pushgateway on loopback, and to a misbehaving one."""
import base64
import http.client
import http.server
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import unittest

from harness import (Exporter, free_port, request, require_tool, start_process, temporary_directory,
                     wait_for)


def push_config(directory, port, extra="", site="fra", interval="1s", timeout="800ms", push=True):
    path = os.path.join(directory, "netprobe.yml")
    with open(path, "w") as f:
        f.write("targets:\n  - {name: lo, host: 127.0.0.1, interval: 200ms}\n")
        if push:
            f.write("push:\n"
                    f"  url: http://127.0.0.1:{port}\n"
                    "  job: netprobe-lab\n"
                    "  instance: agent-1\n"
                    f"  grouping: {{owner: \"ops team/eu\", site: {site}}}\n"
                    f"  interval: {interval}\n"
                    f"  timeout: {timeout}\n" + extra)
    return path


def ping_counts(exporter):
    """(sent, received) echo requests and replies, summed over the targets."""
    text = exporter.metrics()

    def total(family):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(family + "{"))
    return total("netprobe_ping_packets_sent_total"), total("netprobe_ping_packets_received_total")


class FakeGateway:
    """A gateway on loopback that answers PUTs as `mode` says: "slow" sleeps 10 s before a
    500, "error" answers 500 with a body at once, "hang" and DELETEs never answer."""

    def __init__(self, test, mode):
        self.mode = mode
        self.hits = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.hits.append(gateway.mode)
                if gateway.mode == "hang":
                    time.sleep(30)
                    return
                if gateway.mode == "slow":
                    time.sleep(10)
                body = b"storage broke\n"
                try:
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the agent gave up on this push (its timeout)

            def do_DELETE(self):
                gateway.hits.append("DELETE")
                time.sleep(30)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        test.addCleanup(self.server.server_close)
        test.addCleanup(self.server.shutdown)


class Gateway:
    """The Debian prometheus-pushgateway on an ephemeral loopback port."""

    def __init__(self, test, port=None, web_config=None):
        """`web_config`: the gateway's own --web.config.file (TLS, basic auth); its readiness
        is then not polled over plain HTTP but by the caller."""
        self.binary = require_tool(test, "prometheus-pushgateway")
        self.test = test
        self.port = port or free_port()
        self.web_config = web_config
        self.start()

    def start(self):
        extra = [f"--web.config.file={self.web_config}"] if self.web_config else []
        self.process = start_process(self.test, [self.binary, f"--web.listen-address=127.0.0.1:{self.port}",
                                                 "--persistence.file=", *extra])
        if not self.web_config:
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
        self.assertRegex(text, r'netprobe_push_interval_seconds\{[^}]*site="fra"[^}]*\} 1\n')
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 2, what="two pushes")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="failure"}'), 0)
        self.assertGreater(exporter.sample("netprobe_push_last_success_timestamp_seconds"), time.time() - 60)

    def test_gateway_down_then_back(self):
        gateway = Gateway(self)
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port))
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 1, what="a push")
        gateway.stop()
        sent, received = ping_counts(exporter)
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="failure"}') >= 2, what="failed pushes")
        # The probes do not wait on the push: 200 ms pings went on through two failed pushes.
        sent_after, received_after = ping_counts(exporter)
        self.assertGreaterEqual(sent_after - sent, 4, "pings stalled while the gateway was down")
        self.assertGreaterEqual(received_after - received, 4, "pings stalled while the gateway was down")
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

    def timed_scrapes(self, exporter, count):
        """The slowest of `count` scrapes, 100 ms apart."""
        worst = 0.0
        for _ in range(count):
            started = time.monotonic()
            self.assertEqual(exporter.get("/metrics")[0], 200)
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.1)
        return worst

    def test_slow_or_failing_gateway_never_delays_scrapes(self):
        gateway = FakeGateway(self, "slow")
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port))
        wait_for(lambda: gateway.hits, what="a push to the slow gateway")
        self.assertLess(self.timed_scrapes(exporter, 20), 0.5, "a scrape waited on the slow push")
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="failure"}') >= 1, what="the timeout")
        self.assertIn("Operation timed out", exporter.log())
        gateway.mode = "error"
        wait_for(lambda: gateway.hits.count("error") >= 3, what="500 answers")
        self.assertLess(self.timed_scrapes(exporter, 10), 0.5, "a scrape waited on a failing push")
        # The gateway's answer reaches the log, with its status.
        line = wait_for(lambda: next((l for l in exporter.log().splitlines()
                                      if "push rejected by the gateway" in l and "status=500" in l), None),
                        what="the 500 in the log")
        self.assertIn('body="storage broke"', line)
        # A 500 is retried after a backoff: the retry is counted when it starts.
        wait_for(lambda: exporter.sample("netprobe_push_retries_total") > 0, timeout=15, what="a retry after a 500")

    def test_sigterm_abandons_a_push_in_flight(self):
        gateway = FakeGateway(self, "hang")
        # A 5 s timeout: waiting for the push would take up to 5 s.
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port,
                                                     interval="10s", timeout="5s"))
        wait_for(lambda: gateway.hits, what="a push to the gateway that never answers")
        time.sleep(0.3)
        started = time.monotonic()
        exporter.signal(signal.SIGTERM)
        exporter.process.wait(timeout=10)
        took = time.monotonic() - started
        print(f"\n  SIGTERM to exit with a push in flight: {took:.2f}s", end=" ")
        self.assertEqual(exporter.process.returncode, 0)
        self.assertLess(took, 1.5, "stopping waited on the push in flight")

    def test_the_delete_on_shutdown_is_bounded(self):
        gateway = FakeGateway(self, "hang")
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port, "  delete_on_shutdown: true\n",
                                                     interval="30s", timeout="20s"))
        wait_for(lambda: gateway.hits, what="a push to the gateway that never answers")
        started = time.monotonic()
        exporter.signal(signal.SIGTERM)
        exporter.process.wait(timeout=15)
        took = time.monotonic() - started
        print(f"\n  SIGTERM to exit with a push in flight and a DELETE nobody answers: {took:.2f}s", end=" ")
        self.assertIn("DELETE", gateway.hits)
        self.assertIn("deleting the push group on shutdown failed", exporter.log())
        # 3 s for the DELETE, whatever the 20 s push timeout: well within the 10 s that
        # systemd (TimeoutStopSec) and the DaemonSet (terminationGracePeriodSeconds) allow.
        self.assertGreaterEqual(took, 2.9)
        self.assertLess(took, 6)

    def test_a_reload_that_moves_the_group_deletes_the_old_one(self):
        gateway = Gateway(self)
        directory = temporary_directory(self)
        config = push_config(directory, gateway.port, "  delete_on_shutdown: true\n")
        exporter = Exporter(self, config=config)
        wait_for(lambda: 'site="fra"' in gateway.metrics(), what="the first group")
        push_config(directory, gateway.port, "  delete_on_shutdown: true\n", site="ber")
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: 'site="ber"' in gateway.metrics() and 'site="fra"' not in gateway.metrics(),
                 what="the new group, the old one gone")
        self.assertIn("deleted the push group the new configuration no longer pushes to", exporter.log())
        # The old loop is gone: two intervals later its group has not come back.
        time.sleep(2.5)
        self.assertNotIn('site="fra"', gateway.metrics())
        # No push section any more: the group goes, and nothing pushes.
        push_config(directory, gateway.port, push=False)
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: "netprobe_build_info{" not in gateway.metrics(), what="the group deleted")
        time.sleep(2.5)
        self.assertNotIn("netprobe_build_info{", gateway.metrics())
        self.assertIsNone(exporter.sample("netprobe_push_interval_seconds"))
        self.assertGreaterEqual(exporter.sample('netprobe_pushes_total{result="success"}'), 2)

    def test_a_reload_that_first_adds_push_loads_libcurl_and_pushes(self):
        gateway = Gateway(self)
        directory = temporary_directory(self)
        exporter = Exporter(self, config=push_config(directory, gateway.port, push=False))
        self.assertIsNone(exporter.sample('netprobe_pushes_total{result="success"}'))
        # No push at start-up: libcurl was never opened.
        with open(f"/proc/{exporter.process.pid}/maps") as maps:
            self.assertNotIn("libcurl", maps.read())
        push_config(directory, gateway.port)
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: 'site="fra"' in gateway.metrics(), what="the first push after the reload")
        self.assertEqual(exporter.sample("netprobe_push_interval_seconds"), 1)
        with open(f"/proc/{exporter.process.pid}/maps") as maps:
            self.assertIn("libcurl", maps.read())

    def test_a_proxy_in_the_environment_is_ignored(self):
        gateway = Gateway(self)
        # Every variable libcurl reads, pointing at a closed port: a push through it would fail.
        proxy = "http://127.0.0.1:1"
        exporter = Exporter(self, config=push_config(temporary_directory(self), gateway.port),
                            env={"http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
                                 "HTTPS_PROXY": proxy, "all_proxy": proxy, "ALL_PROXY": proxy,
                                 "no_proxy": "", "NO_PROXY": ""})
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 2, what="pushes past the proxy")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="failure"}'), 0)
        self.assertIn("netprobe_build_info{", gateway.metrics())

    def test_without_libcurl_every_push_counts_a_failure(self):
        unshare = require_tool(self, "unshare")
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        library = re.search(r"^\s*libcurl\.so\.4 \(.*x86-64.*\) => (\S+)$", listing, re.M) or \
            re.search(r"^\s*libcurl\.so\.4 .* => (\S+)$", listing, re.M)
        self.assertIsNotNone(library, "libcurl.so.4 is not in the linker cache")
        # A mount namespace of its own, where libcurl.so.4 is an empty file; the host's stays.
        wrapper = [unshare, "-m", "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"', library.group(1)]
        exporter = Exporter(self, config=push_config(temporary_directory(self), free_port()), wrapper=wrapper)
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="failure"}') >= 3, what="failed pushes")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="success"}'), 0)
        self.assertIsNone(exporter.sample("netprobe_push_last_success_timestamp_seconds"))
        log = exporter.log()
        self.assertIn("cannot load libcurl", log)
        self.assertIn("file too short", log)
        # Logged at start-up and once for the failures; the rest are summed up a minute later.
        self.assertEqual(log.count('msg="push failed"'), 1, log)
        status, _, _ = exporter.get("/metrics")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()


class PushTLSTest(unittest.TestCase):
    """Pushing over the same trust the exporter serves with: a pushgateway started with its
    own --web.config.file (TLS, basic auth, client certificates)."""

    def setUp(self):
        from test_tls import PASSWORD, Certificates, bcrypt_hash
        self.password = PASSWORD
        self.directory = temporary_directory(self)
        self.certs = Certificates(self, self.directory)
        self.hash = bcrypt_hash(PASSWORD)
        with open(os.path.join(self.directory, "password"), "w") as f:
            f.write(PASSWORD + "\n")

    def gateway(self, web_text):
        web = os.path.join(self.directory, "gateway-web.yml")
        with open(web, "w") as f:
            f.write(web_text)
        gateway = Gateway(self, web_config=web)
        context = ssl.create_default_context(cafile=self.certs.path("ca.crt"))
        context.load_cert_chain(self.certs.path("client.crt"), self.certs.path("client.key"))
        auth = "Basic " + base64.b64encode(f"pusher:{self.password}".encode()).decode()

        def get(path):
            connection = http.client.HTTPSConnection("127.0.0.1", gateway.port, timeout=5, context=context)
            try:
                connection.request("GET", path, headers={"Authorization": auth})
                response = connection.getresponse()
                return response.status, response.read().decode()
            finally:
                connection.close()
        wait_for(lambda: get("/-/ready")[0] == 200, what="the pushgateway over TLS")
        return gateway, get

    @staticmethod
    def push_config(directory, port, extra):
        """The lab's push configuration with an https:// gateway URL."""
        path = push_config(directory, port, extra)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(f"url: http://127.0.0.1:{port}", f"url: https://127.0.0.1:{port}"))
        return path

    def test_push_over_tls_with_basic_auth(self):
        gateway, get = self.gateway("tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
                                    f"basic_auth_users:\n  pusher: '{self.hash}'\n")
        exporter = Exporter(self, config=self.push_config(self.directory, gateway.port, (
            "  basic_auth: {username: pusher, password_file: password}\n"
            f"  tls: {{ca_file: {self.certs.path('ca.crt')}}}\n")))
        wait_for(lambda: "netprobe_build_info{" in get("/metrics")[1], timeout=15, what="a push over TLS with basic auth")
        wait_for(lambda: exporter.sample('netprobe_pushes_total{result="success"}') >= 2, what="two pushes")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="failure"}'), 0)

    def test_push_over_tls_refused_without_the_right_password_or_ca(self):
        gateway, get = self.gateway("tls_server_config: {cert_file: server.crt, key_file: server.key}\n"
                                    f"basic_auth_users:\n  pusher: '{self.hash}'\n")
        with open(os.path.join(self.directory, "wrong"), "w") as f:
            f.write("not the password\n")
        wrong_password = Exporter(self, config=self.push_config(self.directory, gateway.port, (
            "  basic_auth: {username: pusher, password_file: wrong}\n"
            f"  tls: {{ca_file: {self.certs.path('ca.crt')}}}\n")))
        wait_for(lambda: wrong_password.sample('netprobe_pushes_total{result="failure"}') >= 1, what="a refused push")
        self.assertIn("401", wrong_password.log())
        self.assertEqual(wrong_password.sample('netprobe_pushes_total{result="success"}'), 0)
        # A second agent in another directory: no CA given, so the lab CA is not trusted.
        other = temporary_directory(self)
        shutil.copy(os.path.join(self.directory, "password"), other)
        no_ca = Exporter(self, config=self.push_config(other, gateway.port, (
            "  basic_auth: {username: pusher, password_file: password}\n")))
        wait_for(lambda: no_ca.sample('netprobe_pushes_total{result="failure"}') >= 1, what="an untrusted gateway")
        self.assertEqual(no_ca.sample('netprobe_pushes_total{result="success"}'), 0)
        self.assertNotIn("netprobe_build_info{", get("/metrics")[1])

    def test_push_with_a_client_certificate(self):
        gateway, get = self.gateway("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                                    "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")
        exporter = Exporter(self, config=self.push_config(self.directory, gateway.port, (
            f"  tls: {{ca_file: {self.certs.path('ca.crt')}, cert_file: {self.certs.path('client.crt')}, "
            f"key_file: {self.certs.path('client.key')}}}\n")))
        wait_for(lambda: "netprobe_build_info{" in get("/metrics")[1], timeout=15, what="a push with a client certificate")
        self.assertEqual(exporter.sample('netprobe_pushes_total{result="failure"}'), 0)
