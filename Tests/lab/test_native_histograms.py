"""Native histograms end to end: Debian's Prometheus, with native histograms on, scrapes the
exporter in protobuf and must read the RTT histogram as a native one that agrees with the
received counter and with the classic buckets; the Pushgateway must take the protobuf push
and hand the native histogram on. All on loopback, targets 127.0.0.1-10."""
import json
import os
import re
import subprocess
import time
import unittest
import urllib.parse

from harness import Exporter, free_port, request, require_tool, start_process, temporary_directory, wait_for
from test_push import Gateway

TARGETS = [f"127.0.0.{n}" for n in range(1, 11)]
PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def supports_native_histograms(prometheus):
    """Whether this Prometheus knows the feature flag (2.40 and later list it in --help)."""
    help_text = subprocess.run([prometheus, "--help"], capture_output=True, text=True, timeout=30)
    return "native-histograms" in help_text.stdout + help_text.stderr


class Prometheus:
    """A throw-away Prometheus on loopback scraping `jobs` ({name: 'host:port'}) every 500 ms."""

    def __init__(self, test, binary, jobs, native):
        directory = temporary_directory(test)
        config = os.path.join(directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 500ms, scrape_timeout: 500ms}\nscrape_configs:\n")
            for name, address in jobs.items():
                f.write(f"  - job_name: {name}\n    honor_labels: true\n"
                        f"    static_configs: [{{targets: ['{address}']}}]\n")
        self.port = free_port()
        start_process(test, [binary, f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
                             f"--web.listen-address=127.0.0.1:{self.port}",
                             *(["--enable-feature=native-histograms"] if native else [])])

    def query(self, expression, at=None):
        """The instant vector of `expression`, evaluated now or at Unix time `at`."""
        url = "/api/v1/query?" + urllib.parse.urlencode({"query": expression, **({"time": at} if at else {})})
        status, _, body = request(self.port, "GET", url)
        return json.loads(body)["data"]["result"] if status == 200 else None


def by_target(result, value_of):
    return {sample["metric"]["target"]: value_of(sample) for sample in result}


class NativeHistogramTest(unittest.TestCase):
    def test_prometheus_and_pushgateway_read_the_native_histogram(self):
        prometheus = require_tool(self, "prometheus")
        if not supports_native_histograms(prometheus):
            self.skipTest("this Prometheus has no native-histograms feature flag (needs 2.40 or later)")
        promtool = require_tool(self, "promtool")
        gateway = Gateway(self)
        config = os.path.join(temporary_directory(self), "netprobe.yml")
        with open(config, "w") as f:
            f.write("ping:\n  native_histograms: true\ntargets:\n")
            for address in TARGETS:
                f.write(f"  - {{name: t{address.rsplit('.', 1)[1]}, host: {address}, interval: 1s}}\n")
            f.write(f"push:\n  url: http://127.0.0.1:{gateway.port}\n  job: netprobe-push\n"
                    "  instance: agent-1\n  interval: 1s\n  timeout: 800ms\n  gzip: true\n")
        exporter = Exporter(self, config=config)
        native = Prometheus(self, prometheus, {"netprobe": f"127.0.0.1:{exporter.port}",
                                               "gateway": f"127.0.0.1:{gateway.port}"}, native=True)
        classic = Prometheus(self, prometheus, {"netprobe": f"127.0.0.1:{exporter.port}"}, native=False)

        # Text stays the default and stays clean; protobuf only when asked for.
        status, headers, body = exporter.get("/metrics")
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())
        self.assertEqual(exporter.get("/metrics", {"Accept": PROTOBUF})[1]["Content-Type"], PROTOBUF)

        # Every target's RTT histogram arrives as a native histogram whose count rises at
        # exactly the rate of the received counter (both come from one snapshot per scrape);
        # wait until every target's window holds replies, so no rate is a vacuous 0 = 0.
        def native_rates():
            result = native.query('rate(netprobe_ping_rtt_seconds{job="netprobe"}[1m])')
            if not result or len(result) < len(TARGETS) or any("histogram" not in s for s in result):
                return None
            return result if all(float(s["histogram"][1]["count"]) > 0 for s in result) else None
        rates = wait_for(native_rates, timeout=30, interval=0.25, what="native histogram rates of every target")
        self.assertTrue(all(s["histogram"][1]["buckets"] for s in rates))
        # Both at one evaluation time, so both rates span the same scrapes.
        at = f"{time.time():.3f}"
        counts = by_target(native.query('histogram_count(rate(netprobe_ping_rtt_seconds{job="netprobe"}[1m]))', at),
                           lambda s: float(s["value"][1]))
        received = by_target(native.query('rate(netprobe_ping_packets_received_total{job="netprobe"}[1m])', at),
                             lambda s: float(s["value"][1]))
        self.assertEqual(set(counts), {f"t{n}" for n in range(1, 11)})
        for target, count in counts.items():
            self.assertGreater(received[target], 0, target)
            self.assertAlmostEqual(count, received[target], delta=1e-9 * received[target], msg=target)

        # The median over all targets, native against classic (from the Prometheus that reads
        # text, since 2.42 keeps only the native buckets of a histogram that has both): the
        # native estimate must lie in the classic estimate's bucket, widened by one native
        # bucket (growth 1.09 at schema 3) for the interpolation inside it.
        bounds = [0.00005 * 2 ** k for k in range(20)]

        def medians():
            n = native.query('histogram_quantile(0.5, sum(rate(netprobe_ping_rtt_seconds{job="netprobe"}[1m])))')
            c = classic.query("histogram_quantile(0.5, sum by (le) (rate(netprobe_ping_rtt_seconds_bucket[1m])))")
            if not n or not c or "NaN" in (n[0]["value"][1], c[0]["value"][1]):
                return None
            return float(n[0]["value"][1]), float(c[0]["value"][1])
        native_median, classic_median = wait_for(medians, timeout=30, interval=0.25, what="both medians")
        upper = next(bound for bound in bounds if classic_median <= bound)
        lower = bounds[bounds.index(upper) - 1] if upper != bounds[0] else 0.0
        self.assertTrue(lower / 1.1 <= native_median <= upper * 1.1,
                        f"native median {native_median} outside the classic bucket ({lower}, {upper}] "
                        f"of the classic median {classic_median}")

        # The push went as gzipped protobuf, and the gateway handed the native histogram on.
        # (Prometheus' scrapes above were gzipped protobuf too: it sends Accept-Encoding: gzip.)
        pushed = wait_for(lambda: native.query('histogram_count(netprobe_ping_rtt_seconds{job="netprobe-push"})'),
                          timeout=30, interval=0.25, what="the pushed native histogram through the gateway")
        self.assertEqual(len(pushed), len(TARGETS))
        self.assertTrue(re.search(r"push_time_seconds\{[^}]*job=\"netprobe-push\"", gateway.metrics()))


if __name__ == "__main__":
    unittest.main()
