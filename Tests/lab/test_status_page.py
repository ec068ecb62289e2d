"""The status page in a real browser: headless chromium, run inside the lab's agent namespace
(the exporter listens on that namespace's 127.0.0.1, and chromium there can reach nothing
else), loads `/` and `/targets/NAME` from an exporter probing four lab targets, one of them
behind a lossy router. The DOM chromium built is checked (the lossy target first, marked CRIT
in text, its smoke graph's median coloured by loss), and a PNG screenshot is kept as an
artifact under a temporary directory whose path is printed. A multicast group whose stream
nftables cuts for a few seconds shows that loss in `/groups/NAME`'s graph, in the seconds it
happened."""
import html.parser
import os
import re
import shutil
import tempfile
import time
import unittest

from harness import LabExporter, wait_for, write_config
from mcastlab import drop_multicast, series, start_sender, start_switch, stop_process, wait_series
from netlab import Lab

EVIL_NAME = "<script>document.title='pwned-name'</script>"
EVIL_LABEL = "<img src=x onerror=\"document.title='pwned-label'\"><script>document.title='pwned-label'</script>"


def chromium():
    """The chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Rows(html.parser.HTMLParser):
    """The rows of the targets table as [(data-health, first link's text, row text)], every
    <script> element seen anywhere, and the document's title."""

    def __init__(self):
        super().__init__()
        self.rows, self.scripts, self.title = [], 0, ""
        self._table = False
        self._row = None
        self._in_title = False
        self.median_strokes = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "title" and not self.title:
            # The document's <title>; the SVGs' own titles come later.
            self._in_title = True
        elif tag == "table" and attrs.get("id") == "targets-table":
            self._table = True
        elif tag == "tr" and self._table and "data-health" in attrs:
            self._row = [attrs["data-health"], None, ""]
        elif tag == "a" and self._row is not None and self._row[1] is None:
            self._row[1] = ""
        elif tag == "path" and attrs.get("class") == "median":
            self.median_strokes.append(attrs.get("stroke"))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "table":
            self._table = False
        elif tag == "tr" and self._row is not None:
            self.rows.append(tuple(self._row))
            self._row = None
        elif tag == "a" and self._row is not None and self._row[1] is not None and not self._row[1].endswith("\0"):
            self._row[1] += "\0"

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._row is not None:
            self._row[2] += data
            if self._row[1] is not None and not self._row[1].endswith("\0"):
                self._row[1] += data


def parse(dom):
    parser = Rows()
    parser.feed(dom)
    parser.rows = [(health, (name or "").rstrip("\0"), text) for health, name, text in parser.rows]
    return parser


class LossMarks(html.parser.HTMLParser):
    """The group graph's loss triangles as [(data-start, data-lost)], and whether the graph
    has received bars."""

    def __init__(self):
        super().__init__()
        self.marks, self.received = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "path" and attrs.get("class") == "loss":
            self.marks.append((int(attrs["data-start"]), int(attrs["data-lost"])))
        elif tag == "path" and attrs.get("class") == "received":
            self.received = True


class StatusPageBrowserTest(unittest.TestCase):
    def setUp(self):
        self.browser = chromium()
        if not self.browser:
            self.skipTest("chromium is not installed (apt-get install chromium)")
        self.lab = Lab.for_test(self, targets=4)
        self.lab.allow_unprivileged_ping()
        self.profile = tempfile.mkdtemp(prefix="netprobe-chromium-")
        self.addCleanup(shutil.rmtree, self.profile, True)

    def browse(self, exporter, path, *flags):
        """Runs headless chromium inside the agent namespace on the exporter's URL only."""
        argv = [self.browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
                f"--user-data-dir={self.profile}", *flags, f"http://127.0.0.1:{exporter.port}{path}"]
        result = self.lab.run("agent", argv, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result.stdout

    def exporter(self, targets_yaml):
        config = ("defaults:\n  interval: 50ms\n  timeout: 500ms\n  window: 100\n  socket: auto\n"
                  "targets:\n" + targets_yaml)
        return LabExporter(self, self.lab, config=write_config(self, config))

    def test_status_page_in_chromium_puts_the_lossy_target_first(self):
        addresses = self.lab.addresses(4)
        self.lab.drop(addresses[2], 30)
        lines = []
        for index, address in enumerate(addresses):
            trace = "    trace: {interval: 1s, max_hops: 6}\n" if index == 2 else ""
            lines.append(f"  - name: t{index}\n    host: \"{address}\"\n    labels: {{site: lab}}\n{trace}")
        exporter = self.exporter("".join(lines))
        wait_for(lambda: (exporter.target_value("netprobe_ping_window_probes", "t2") or 0) >= 100
                 and exporter.target_value("netprobe_path_hops", "t2") is not None,
                 timeout=60, what="a full window and a traced path for the lossy target")

        page = parse(self.browse(exporter, "/", "--dump-dom"))
        self.assertEqual(page.scripts, 0)
        self.assertEqual(len(page.rows), 4, page.rows)
        health, name, text = page.rows[0]
        self.assertEqual((name, health), ("t2", "critical"), page.rows)
        self.assertIn("CRIT", text)
        self.assertRegex(text, r"loss \d+(\.\d)?%")
        for health, name, text in page.rows[1:]:
            self.assertEqual(health, "ok", (name, text))
            self.assertIn("OK", text)

        detail = self.browse(exporter, "/targets/t2", "--dump-dom")
        target = parse(detail)
        self.assertIn('id="smoke"', detail)
        self.assertIn('id="hops"', detail)
        # Loss shows in the smoke: some slot's median is not the no-loss green.
        self.assertTrue(target.median_strokes, detail[:2000])
        self.assertTrue(any(stroke != "#1fb800" for stroke in target.median_strokes), target.median_strokes)

        artifacts = tempfile.mkdtemp(prefix="netprobe-status-page-")
        for path, file in [("/", "status.png"), ("/targets/t2", "target.png")]:
            shot = os.path.join(artifacts, file)
            self.browse(exporter, path, f"--screenshot={shot}", "--window-size=1280,860", "--hide-scrollbars")
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            self.assertGreater(os.path.getsize(shot), 10_000)
            print(f"\nstatus page screenshot: {shot}")

    def test_group_graph_in_chromium_marks_a_stretch_of_loss_in_its_seconds(self):
        self.lab.sysctl("agent", {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.r1.rp_filter": 0})
        start_switch(self, self.lab)
        sender = start_sender(self.lab, "239.1.7.7", 5077, "sequence", rate=50)
        self.addCleanup(stop_process, sender)
        exporter = LabExporter(self, self.lab, config=write_config(
            self, "multicast:\n  - name: feed\n    group: 239.1.7.7\n    port: 5077\n    interface: r1\n"
                  "    format: sequence\n    sequence: {offset: 0, width: 4, endianness: little}\n"
                  "    expected_rate: 50\n"))
        wait_series(exporter, "netprobe_multicast_receiving", "feed", lambda v: v == 1)
        time.sleep(2)
        # Four seconds of every datagram dropped at the agent, before any socket sees it.
        cut = time.time()
        drop_multicast(self.lab, 100)
        time.sleep(4)
        drop_multicast(self.lab, 0)
        restored = time.time()
        # The counters settle the hole 64 numbers on; the graph has it once the packet after
        # it came, in the last complete second.
        wait_series(exporter, "netprobe_multicast_packets_lost_total", "feed", lambda v: v >= 100, timeout=15)
        time.sleep(1.5)

        dom = self.browse(exporter, "/groups/feed", "--dump-dom")
        self.assertIn('id="group-graph"', dom)
        graph = LossMarks()
        graph.feed(dom)
        self.assertTrue(graph.received, dom[:3000])
        seconds = {start for start, _ in graph.marks}
        # Every second wholly inside the cut is marked, and nothing outside it (a second of
        # slack each side: the cut and the clocks are not aligned to whole seconds).
        self.assertTrue(set(range(int(cut) + 1, int(restored))) <= seconds, (cut, restored, graph.marks))
        self.assertTrue(all(int(cut) - 1 <= start <= int(restored) + 1 for start in seconds), (cut, restored, graph.marks))
        # The graph places what the counters count (no reordering here).
        lost = series(exporter, "netprobe_multicast_packets_lost_total", "feed")
        self.assertEqual(sum(count for _, count in graph.marks), lost, graph.marks)

        overview = self.browse(exporter, "/", "--dump-dom")
        self.assertIn('<a href="/groups/feed">feed</a>', overview)
        self.assertIn('class="group-graph"', overview)
        artifacts = tempfile.mkdtemp(prefix="netprobe-status-page-")
        shot = os.path.join(artifacts, "group.png")
        self.browse(exporter, "/groups/feed", f"--screenshot={shot}", "--window-size=1280,640", "--hide-scrollbars")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"\ngroup page screenshot: {shot}")

    def test_status_page_xss_names_and_labels_are_text(self):
        address = self.lab.addresses(1)[0]
        name = EVIL_NAME.replace("'", "''")
        label = EVIL_LABEL.replace("'", "''")
        exporter = self.exporter(f"  - name: '{name}'\n    host: \"{address}\"\n    labels: {{note: '{label}'}}\n")
        wait_for(lambda: exporter.get("/")[0] == 200, what="the status page")
        for path in ["/", "/targets/" + re.sub(r"[^A-Za-z0-9._~-]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), EVIL_NAME)]:
            dom = self.browse(exporter, path, "--dump-dom")
            page = parse(dom)
            self.assertEqual(page.scripts, 0, dom[:3000])
            self.assertNotIn("<img", dom)
            # A script that ran would have set the title to "pwned-…"; as text, the name is in it.
            expected = "netprobe_exporter status" if path == "/" else f"{EVIL_NAME} · netprobe_exporter"
            self.assertEqual(page.title, expected)
            self.assertIn("&lt;script&gt;document.title='pwned-name'&lt;/script&gt;", dom.replace("&#39;", "'"))
        rows = parse(self.browse(exporter, "/", "--dump-dom")).rows
        self.assertEqual(rows[0][1], EVIL_NAME)
        self.assertIn(EVIL_LABEL, rows[0][2])


if __name__ == "__main__":
    unittest.main()
