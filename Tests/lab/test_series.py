"""The series an operator chooses: each `series` switch counted in a live scrape, and the
README's capacity table checked against those counts, so the table cannot drift."""
import os
import re
import subprocess
import unittest

from harness import ROOT, LabExporter, require_tool, wait_for, write_config
from netlab import Lab

# Per target: the `series` setting, and whether it is traced.
CHOICES = {
    "all": ("", False),
    "no_buckets": ("series: {classic_buckets: false}", False),
    "no_window": ("series: {window_gauges: false}", False),
    "neither": ("series: {classic_buckets: false, window_gauges: false}", False),
    "traced": ("trace: {interval: 2s, max_hops: 8}", True),
    "traced_no_hops": ("trace: {interval: 2s, max_hops: 8}\n    series: {hop_series: false}", True),
}


def readme_capacity_rows():
    """{first cell: second cell} of the README's series tables under "Capacity"."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("### Capacity", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.strip().startswith("|") and len(cells) >= 2 and re.fullmatch(r"\d+", cells[1]):
            rows[cells[0]] = int(cells[1])
    return rows


class SeriesChoiceTest(unittest.TestCase):
    def test_series_per_target_for_each_choice_match_the_readme(self):
        lab = Lab.for_test(self, targets=len(CHOICES))
        lab.allow_unprivileged_ping()
        addresses = lab.addresses(len(CHOICES))
        lines = ["defaults: {interval: 100ms, timeout: 1s, socket: dgram}", "targets:"]
        for (name, (extra, _)), address in zip(CHOICES.items(), addresses):
            lines.append(f"  - name: {name}\n    host: \"{address}\"")
            if extra:
                lines.append(f"    {extra}")
        exporter = LabExporter(self, lab, config=write_config(self, "\n".join(lines) + "\n"))

        def counts():
            """Series per target in one scrape, once every target has the series it will
            keep: replies in its window (the gauges), and its path for the traced ones."""
            metrics = exporter.metrics()
            received = exporter.samples("netprobe_ping_packets_received_total", metrics)
            hops = exporter.samples("netprobe_path_hops", metrics)
            if len(received) < len(CHOICES) or min(received.values()) < 3:
                return None
            if sum(1 for labels in hops if 'target="traced' in labels) < 2:
                return None
            per_target = {name: 0 for name in CHOICES}
            for line in metrics.splitlines():
                match = re.search(r'\{target="([a-z_]+)"', line)
                if match and not line.startswith("#"):
                    per_target[match.group(1)] += 1
            return per_target, hops, metrics

        per_target, hops, metrics = wait_for(counts, timeout=30, what="replies and paths for every target")
        path_hops = {int(value) for labels, value in hops.items()}
        self.assertEqual(len(path_hops), 1, hops)
        hop_count = path_hops.pop()
        self.assertEqual(hop_count, 2, "agent -> router -> target")

        rows = readme_capacity_rows()
        self.assertEqual(per_target["all"], rows["all on (the default)"])
        self.assertEqual(per_target["no_buckets"], rows["`classic_buckets: false`"])
        self.assertEqual(per_target["no_window"], rows["`window_gauges: false`"])
        self.assertEqual(per_target["neither"], rows["`classic_buckets: false, window_gauges: false`"])
        self.assertEqual(per_target["traced_no_hops"] - per_target["all"], rows["a traced target, per target"])
        self.assertEqual(
            per_target["traced"] - per_target["traced_no_hops"], hop_count * rows["a traced target, per hop (`hop_series: true`)"])

        # What each switch removes is exactly its families.
        self.assertNotIn('netprobe_ping_rtt_seconds_bucket{target="no_buckets",host="%s",address="%s",family="ip4",le="0.001"}'
                         % (addresses[1], addresses[1]), metrics)
        self.assertIn('netprobe_ping_rtt_seconds_bucket{target="no_buckets",host="%s",address="%s",family="ip4",le="+Inf"}'
                      % (addresses[1], addresses[1]), metrics)
        self.assertIsNone(exporter.target_value("netprobe_ping_loss_ratio", "no_window"))
        self.assertIsNotNone(exporter.target_value("netprobe_ping_loss_ratio", "all"))
        self.assertFalse([labels for labels in exporter.samples("netprobe_path_hop_info", metrics) if 'target="traced_no_hops"' in labels])
        promtool = require_tool(self, "promtool")
        check = subprocess.run([promtool, "check", "metrics"], input=metrics.encode(), capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())


if __name__ == "__main__":
    unittest.main()
