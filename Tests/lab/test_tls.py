"""TLS, client certificates and basic auth from --web.config.file, with real clients: curl,
Python's ssl, Debian's prometheus. Certificates are made with `openssl` in each test."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.parse
import warnings

from harness import BINARY, Exporter, free_port, request, require_tool, start_process, temporary_directory, wait_for

PASSWORD = "s3cret pass"


def bcrypt_hash(password):
    """A bcrypt hash ($2b$, cost 10) from the system's crypt(3) (libxcrypt), else htpasswd."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        value = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024))
        if value and value.startswith("$2"):
            return value
    except ImportError:
        pass
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        raise AssertionError("no bcrypt: python3's crypt module or htpasswd (apache2-utils) is needed")
    line = subprocess.run([htpasswd, "-nbBC", "10", "u", password], check=True, capture_output=True, text=True).stdout
    return line.strip().split(":", 1)[1]


def openssl(directory, *args):
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


class Certificates:
    """A CA, a server certificate for 127.0.0.1 and localhost, a client certificate from the
    CA and a self-signed client certificate no CA vouches for."""

    def __init__(self, test, directory):
        require_tool(test, "openssl")
        self.directory = directory
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=netprobe lab CA",
                "-keyout", "ca.key", "-out", "ca.crt")
        with open(os.path.join(directory, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        with open(os.path.join(directory, "client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        self.issue("server", "server.ext")
        self.issue("client", "client.ext")
        openssl(directory, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=rogue",
                "-keyout", "rogue.key", "-out", "rogue.crt")

    def issue(self, name, extensions, serial=None):
        openssl(self.directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        openssl(self.directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", str(serial or int.from_bytes(os.urandom(8), "big")), "-days", "2",
                "-extfile", extensions, "-out", f"{name}.crt")

    def path(self, name):
        return os.path.join(self.directory, name)


class TLSTest(unittest.TestCase):
    def setUp(self):
        self.directory = temporary_directory(self)
        self.certs = Certificates(self, self.directory)
        self.web = os.path.join(self.directory, "web.yml")

    def write_web(self, text):
        with open(self.web, "w") as f:
            f.write(text)

    def start(self, web_text, *args):
        self.write_web(web_text)
        return Exporter(self, f"--web.config.file={self.web}", *args)

    def context(self, client=None):
        context = ssl.create_default_context(cafile=self.certs.path("ca.crt"))
        if client:
            context.load_cert_chain(self.certs.path(f"{client}.crt"), self.certs.path(f"{client}.key"))
        return context

    def https(self, port, method, path, auth=None, client=None, timeout=10):
        """(status, headers, body) of one request over TLS."""
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=self.context(client))
        headers = {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def sample(self, port, series, auth=None, client=None):
        status, _, body = self.https(port, "GET", "/metrics", auth=auth, client=client)
        self.assertEqual(status, 200)
        return Exporter.value(body.decode(), series)

    def curl(self, port, path, *args):
        """curl's (exit code, HTTP status or 0, headers and body)."""
        curl = require_tool(self, "curl")
        result = subprocess.run([curl, "-sS", "-i", "--max-time", "10", "--cacert", self.certs.path("ca.crt"),
                                 "-w", "\n%{http_code}", *args, f"https://127.0.0.1:{port}{path}"],
                                capture_output=True, text=True)
        text, _, code = result.stdout.rpartition("\n")
        return result.returncode, int(code or 0), text

    def tls_config(self, extra=""):
        return (f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}")

    def test_tls_curl_with_right_and_wrong_passwords(self):
        hashed = bcrypt_hash(PASSWORD)
        exporter = self.start(self.tls_config() + f"basic_auth_users:\n  alice: '{hashed}'\n"
                              "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
        code, status, text = self.curl(exporter.port, "/metrics", "-u", f"alice:{PASSWORD}")
        self.assertEqual((code, status), (0, 200), text)
        self.assertIn("netprobe_build_info{", text)
        self.assertIn("X-Content-Type-Options: nosniff", text)
        for credentials in (["-u", "alice:wrong"], ["-u", f"mallory:{PASSWORD}"], []):
            code, status, text = self.curl(exporter.port, "/metrics", *credentials)
            self.assertEqual((code, status), (0, 401), credentials)
            self.assertIn('WWW-Authenticate: Basic realm="netprobe_exporter"', text)
            self.assertNotIn("netprobe_build_info", text)
        # Every endpoint, /-/reload included, is behind auth.
        for path in ("/", "/-/healthy", "/-/ready"):
            self.assertEqual(self.curl(exporter.port, path)[1], 401, path)
            self.assertEqual(self.curl(exporter.port, path, "-u", f"alice:{PASSWORD}")[1], 200, path)
        self.assertEqual(self.curl(exporter.port, "/-/reload", "-X", "POST")[1], 401)
        self.assertEqual(self.curl(exporter.port, "/-/reload", "-X", "POST", "-u", "alice:wrong")[1], 401)
        self.assertEqual(self.curl(exporter.port, "/-/reload", "-X", "POST", "-u", f"alice:{PASSWORD}")[1], 200)
        auth = ("alice", PASSWORD)
        self.assertEqual(self.sample(exporter.port, 'netprobe_http_auth_failures_total{reason="wrong_credentials"}', auth), 3)
        self.assertEqual(self.sample(exporter.port, 'netprobe_http_auth_failures_total{reason="missing"}', auth), 5)

    def test_tls_wrong_passwords_cost_the_guesser_not_the_scrapes(self):
        hashed = bcrypt_hash(PASSWORD)
        exporter = self.start(self.tls_config() + f"basic_auth_users:\n  alice: '{hashed}'\n")
        auth = ("alice", PASSWORD)
        self.assertEqual(self.https(exporter.port, "GET", "/metrics", auth=auth)[0], 200)
        # A guesser with a new password per request: past its bcrypt budget it gets 429
        # without a check, and the cached right password keeps being served quickly.
        statuses = [self.https(exporter.port, "GET", "/-/healthy", auth=("alice", f"guess{n}"))[0] for n in range(30)]
        self.assertIn(429, statuses)
        self.assertLessEqual(statuses.count(401), 12, statuses)
        started = time.monotonic()
        for _ in range(5):
            self.assertEqual(self.https(exporter.port, "GET", "/metrics", auth=auth)[0], 200)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertGreater(self.sample(exporter.port, 'netprobe_http_auth_failures_total{reason="throttled"}', auth), 0)

    def test_tls_client_certificates(self):
        exporter = self.start(self.tls_config("  client_auth_type: RequireAndVerifyClientCert\n"
                                              "  client_ca_file: ca.crt\n  min_version: TLS12\n"))
        code, status, text = self.curl(exporter.port, "/metrics", "--cert", self.certs.path("client.crt"),
                                       "--key", self.certs.path("client.key"))
        self.assertEqual((code, status), (0, 200), text)
        code, status, _ = self.curl(exporter.port, "/metrics")
        self.assertNotEqual(code, 0, "a client without a certificate was served")
        code, status, _ = self.curl(exporter.port, "/metrics", "--cert", self.certs.path("rogue.crt"),
                                    "--key", self.certs.path("rogue.key"))
        self.assertNotEqual(code, 0, "a certificate from no trusted CA was accepted")
        failures = self.sample(exporter.port, 'netprobe_http_tls_handshake_failures_total{reason="error"}', client="client")
        self.assertGreaterEqual(failures, 1)

    def test_tls_every_client_auth_type_with_curl(self):
        cert = ["--cert", self.certs.path("client.crt"), "--key", self.certs.path("client.key")]
        rogue = ["--cert", self.certs.path("rogue.crt"), "--key", self.certs.path("rogue.key")]
        # (type, served without a certificate, with the CA's, with a self-signed one)
        expectations = [("NoClientCert", True, True, True), ("RequestClientCert", True, True, True),
                        ("RequireAnyClientCert", False, True, True), ("VerifyClientCertIfGiven", True, True, False),
                        ("RequireAndVerifyClientCert", False, True, False)]
        for kind, bare, good, bad in expectations:
            with self.subTest(kind):
                ca = "  client_ca_file: ca.crt\n" if kind != "NoClientCert" else ""
                exporter = self.start(self.tls_config(f"  client_auth_type: {kind}\n{ca}"))
                for args, served in (([], bare), (cert, good), (rogue, bad)):
                    code, status, _ = self.curl(exporter.port, "/-/healthy", *args)
                    self.assertEqual((code, status) == (0, 200), served, (kind, args, code, status))
                exporter.kill()

    def test_tls_users_and_headers_change_on_reload(self):
        exporter = self.start(self.tls_config() + f"basic_auth_users:\n  alice: '{bcrypt_hash(PASSWORD)}'\n")
        self.assertEqual(self.curl(exporter.port, "/-/healthy", "-u", f"alice:{PASSWORD}")[1], 200)
        self.write_web(self.tls_config() + f"basic_auth_users:\n  bob: '{bcrypt_hash('other')}'\n"
                       "http_server_config:\n  headers: {X-Frame-Options: sameorigin}\n")
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: self.curl(exporter.port, "/-/healthy", "-u", f"alice:{PASSWORD}")[1] == 401,
                 what="the old user to be refused")
        code, status, text = self.curl(exporter.port, "/-/healthy", "-u", "bob:other")
        self.assertEqual(status, 200, text)
        self.assertIn("X-Frame-Options: sameorigin", text)
        # Basic auth removed: every endpoint opens again.
        self.write_web(self.tls_config())
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: self.curl(exporter.port, "/metrics")[1] == 200, what="auth to be lifted")
        # TLS cannot be switched off by a reload: the reload fails and TLS stays.
        self.write_web("")
        status, _, body = self.https(exporter.port, "POST", "/-/reload")
        self.assertEqual(status, 500)
        self.assertIn("tls_server_config cannot be removed by a reload", body.decode())

    def test_tls_plain_http_to_the_tls_port_is_refused_cleanly(self):
        exporter = self.start(self.tls_config())
        with socket.create_connection(("127.0.0.1", exporter.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.0 400 Bad Request\r\n"), answer)
        self.assertIn(b"Client sent an HTTP request to an HTTPS server.", answer)
        self.assertEqual(self.sample(exporter.port, 'netprobe_http_tls_handshake_failures_total{reason="plain_http"}'), 1)

    def test_tls_stalled_handshake_is_dropped_while_scrapes_continue(self):
        exporter = self.start(self.tls_config())
        # Half a ClientHello: a handshake record header announcing 512 bytes, then 40 of them.
        stalled = socket.create_connection(("127.0.0.1", exporter.port), timeout=15)
        self.addCleanup(stalled.close)
        stalled.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + os.urandom(29))
        opened = time.monotonic()
        while time.monotonic() - opened < 3:
            self.assertEqual(self.https(exporter.port, "GET", "/-/healthy", timeout=2)[0], 200)
            time.sleep(0.3)
        try:
            closed = stalled.recv(1024) == b""
        except ConnectionResetError:
            closed = True
        elapsed = time.monotonic() - opened
        self.assertTrue(closed)
        self.assertGreater(elapsed, 4.5)
        self.assertLess(elapsed, 8)
        self.assertEqual(self.sample(exporter.port, 'netprobe_http_tls_handshake_failures_total{reason="timeout"}'), 1)

    def served_serial(self, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with self.context().wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return int(s.getpeercert()["serialNumber"], 16)

    def test_tls_certificate_renewed_on_reload_and_bad_file_keeps_old(self):
        self.certs.issue("server", "server.ext", serial=1001)
        exporter = self.start(self.tls_config())
        self.assertEqual(self.served_serial(exporter.port), 1001)
        self.certs.issue("server", "server.ext", serial=1002)
        exporter.signal(signal.SIGHUP)
        wait_for(lambda: self.served_serial(exporter.port) == 1002, what="the renewed certificate")
        # A broken certificate file: the reload fails and the running certificate stays.
        with open(self.certs.path("server.crt"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        status, _, body = self.https(exporter.port, "POST", "/-/reload")
        self.assertEqual(status, 500)
        self.assertIn(f"{self.web}:2:3: tls_server_config: cannot load cert_file", body.decode())
        self.assertEqual(self.sample(exporter.port, "netprobe_config_last_reload_successful"), 0)
        self.assertEqual(self.served_serial(exporter.port), 1002)
        self.assertIn("configuration reload failed", exporter.log())

    def test_tls_real_prometheus_scrapes_over_https_with_basic_auth(self):
        prometheus = require_tool(self, "prometheus")
        hashed = bcrypt_hash(PASSWORD)
        exporter = self.start(self.tls_config() + f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        config = os.path.join(self.directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: netprobe\n"
                    "    scheme: https\n"
                    f"    basic_auth: {{username: prometheus, password: '{PASSWORD}'}}\n"
                    f"    tls_config: {{ca_file: {self.certs.path('ca.crt')}}}\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n")
        port = free_port()
        start_process(self, [prometheus, f"--config.file={config}", f"--storage.tsdb.path={self.directory}/data",
                             f"--web.listen-address=127.0.0.1:{port}"])

        def query(expression):
            url = "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
            status, _, body = request(port, "GET", url)
            return json.loads(body)["data"]["result"] if status == 200 else None

        result = wait_for(lambda: query("netprobe_build_info"), timeout=60, what="Prometheus to scrape over https")
        self.assertEqual(result[0]["value"][1], "1")
        up = wait_for(lambda: query('up{job="netprobe"}'), timeout=30, what="up")
        self.assertEqual(up[0]["value"][1], "1")
        # Scrapes after the first pay no bcrypt: the verified credential is cached.
        auth = ("prometheus", PASSWORD)
        self.assertEqual(self.sample(exporter.port, 'netprobe_http_auth_failures_total{reason="wrong_credentials"}', auth), 0)

    def test_tls_bad_web_config_is_reported_with_its_place(self):
        self.write_web("tls_server_config:\n  cert_fil: server.crt\n  key_file: server.key\n"
                       "basic_auth_users:\n  bob: hunter2\nrate_limit: {burst: 1}\n")
        result = subprocess.run([BINARY, f"--web.config.file={self.web}", "--check-config"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"{self.web}:2:3: unknown key 'cert_fil' in tls_server_config (did you mean 'cert_file'?)", result.stderr)
        self.assertIn(f"{self.web}:5:8: basic_auth_users.bob: expected a bcrypt hash", result.stderr)
        self.assertIn(f"{self.web}:6:1: 'rate_limit' in the web configuration is not supported", result.stderr)
        self.write_web(self.tls_config())
        result = subprocess.run([BINARY, f"--web.config.file={self.web}", "--check-config"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("TLS TLS12-TLS13", result.stdout)


if __name__ == "__main__":
    unittest.main()
