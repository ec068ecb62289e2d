#!/usr/bin/env python3
"""/metrics at scale: time per scrape, body size and peak memory, netprobe_exporter against
smokeping_prober.

Each tool probes N addresses of 127.1.0.0/16 once per second, inside a network namespace
this script creates for the run and removes afterwards (only `lo`, no route out; Linux
answers echo requests on all of 127.0.0.0/8, so nothing leaves the machine). After a
warm-up (every target probed a few times), it scrapes /metrics with curl inside the
namespace, one scrape at a time, in each format:
  - text: plain text 0.0.4,
  - gzip: `Accept-Encoding: gzip` (the compressed bytes are timed, not decompressed),
  - protobuf: Prometheus' delimited protobuf, when the tool answers with it (else n/a),
`--scrapes` times each (5), and prints the median and the slowest time per scrape, the
body size, the series per target (counted in one more plain scrape, not timed), the
resident memory between scrapes (VmRSS before the first timed scrape) and the peak
(VmHWM after the last, which the scrapes' own memory would raise).

Prints figures, asserts nothing, skips a tool that is missing (it names the package).
Needs root (ip netns). Standard library and curl only.

  python3 Benchmarks/scrape_bench.py [--targets 1000,10000] [--scrapes 5] [--warmup 8]
      [--tools netprobe,smokeping] [--netprobe-binary .build/release/netprobe_exporter]
"""
import argparse
import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ping_bench as pb  # noqa: E402 — the namespace, process and memory helpers

FORMATS = {
    "text": [],
    "gzip": ["-H", "Accept-Encoding: gzip"],
    "protobuf": ["-H", "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                       "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"],
}
TOOLS = {
    "netprobe": {"label": "netprobe_exporter", "families": ("netprobe_ping_packets_received_total",)},
    "smokeping": {"label": "smokeping_prober", "package": "prometheus-smokeping-prober",
                  "binary": "prometheus-smokeping-prober",
                  "families": ("smokeping_response_duration_seconds_count",)},
}


def curl(namespace, extra, timeout=120):
    """One scrape: (seconds, bytes, content type), or an error string."""
    command = ["ip", "netns", "exec", namespace, "curl", "-s", "-o", "/dev/null", "--max-time", str(timeout),
               "-w", "%{time_total} %{size_download} %{http_code} %{content_type}"] + extra + [
        "http://127.0.0.1:%d/metrics" % pb.PORT]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 10).stdout.split(" ", 3)
        seconds, size, code, kind = float(out[0]), int(out[1]), out[2], out[3] if len(out) > 3 else ""
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return "curl failed: %r" % (error,)
    if code != "200":
        return "HTTP %s" % code
    return seconds, size, kind


def series_count(namespace):
    """Samples in one plain scrape (not timed), and per target."""
    result = subprocess.run(["ip", "netns", "exec", namespace, "curl", "-s",
                             "http://127.0.0.1:%d/metrics" % pb.PORT], capture_output=True, timeout=120)
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(b"#"))


class Run:
    def __init__(self, tool, n):
        self.tool, self.n = tool, n
        self.version = None
        self.rss_between = self.peak = None
        self.series = None
        self.formats = {}  # format -> (median s, max s, bytes) or a note
        self.note = None


def run_one(tool, n, args, workdir):
    run = Run(tool, n)
    spec = TOOLS[tool]
    if tool == "netprobe":
        binary = os.path.abspath(args.netprobe_binary)
        if not os.access(binary, os.X_OK):
            run.note = "no binary at %s (build it: swift build -c release)" % binary
            return run
    elif shutil.which(spec["binary"]) is None:
        run.note = "not installed: apt-get install %s" % spec["package"]
        return run
    run.version = pb.tool_version(tool, getattr(args, "netprobe_binary", ""))
    addresses = pb.target_addresses(n)
    tag = "scrape-%s-%d" % (tool, n)
    run_dir = os.path.join(workdir, tag)
    os.makedirs(run_dir)
    stderr_path = os.path.join(run_dir, "stderr.log")
    namespace = pb.make_namespace(tag)
    process = None
    try:
        if tool == "smokeping":
            config = os.path.join(run_dir, "smokeping.yml")
            with open(config, "w") as f:
                f.write("targets:\n- interval: 1s\n  network: ip4\n  protocol: udp\n  size: 56\n  hosts:\n")
                f.writelines("  - %s\n" % a for a in addresses)
            command = ["prometheus-smokeping-prober", "--config.file=" + config, "--no-privileged",
                       "--web.listen-address=127.0.0.1:%d" % pb.PORT, "--log.level=warn"]
        else:
            config = os.path.join(run_dir, "netprobe.yml")
            with open(config, "w") as f:
                f.write("targets:\n")
                f.writelines("  - {name: t%d, host: %s}\n" % (i, a) for i, a in enumerate(addresses))
                f.write("defaults: {interval: 1s, timeout: 1s, socket: dgram}\n")
            command = [os.path.abspath(args.netprobe_binary), "--config.file=" + config,
                       "--web.listen-address=127.0.0.1:%d" % pb.PORT, "--log.level=warn"]
        with open(stderr_path, "wb") as err:
            process = pb.start(namespace, command, subprocess.DEVNULL, err, max(4096, 2 * n + 1024))
        # smokeping_prober sets up every pinger before it listens: minutes at 10,000 targets.
        first, error = pb.wait_http(namespace, process, spec["families"], timeout=args.start_timeout)
        if error:
            run.note = "%s: %s" % (error, pb.tail(stderr_path))
            return run
        time.sleep(args.warmup)
        if process.poll() is not None:
            run.note = "exited during warm-up: %s" % pb.tail(stderr_path)
            return run
        run.series = series_count(namespace)
        run.rss_between = pb.rss_mib(process.pid)
        for name in args.formats:
            times, size, note = [], None, None
            for _ in range(args.scrapes):
                result = curl(namespace, FORMATS[name])
                if isinstance(result, str):
                    note = result
                    break
                seconds, size, kind = result
                if name == "protobuf" and "protobuf" not in kind:
                    note = "answered %s" % (kind or "no Content-Type")
                    break
                times.append(seconds)
            run.formats[name] = note if note else (statistics.median(times), max(times), size)
        run.peak = pb.peak_rss_mib(process.pid)
        if process.poll() is not None:
            run.note = "exited during the scrapes: %s" % pb.tail(stderr_path)
    except Exception as error:  # noqa: BLE001 — report and go on
        run.note = "failed: %r" % (error,)
    finally:
        if process is not None:
            pb._stop_process(process)
            if process in pb._processes:
                pb._processes.remove(process)
        if pb._delete_namespace(namespace) and namespace in pb._namespaces:
            pb._namespaces.remove(namespace)
    return run


def report(runs, args):
    print()
    print("/metrics, one scrape at a time with curl, N targets at 1 s on 127.1.0.0/16 in a private namespace; "
          "median (slowest) of %d scrapes per format after %g s warm-up; %d CPU(s)."
          % (args.scrapes, args.warmup, os.cpu_count()))
    print()
    header = "| tool | N | series (per target) |"
    rule = "|---|---:|---:|"
    for name in args.formats:
        header += " %s ms | %s MB |" % (name, name)
        rule += "---:|---:|"
    header += " RSS MiB between scrapes | peak RSS MiB |"
    rule += "---:|---:|"
    print(header)
    print(rule)
    for run in runs:
        label = TOOLS[run.tool]["label"] + (" " + run.version if run.version and run.version != "?" else "")
        if run.series is None:
            print("| %s | %d | n/a: %s |" % (label, run.n, run.note or "not run"))
            continue
        row = "| %s | %d | %d (%.1f) |" % (label, run.n, run.series, run.series / run.n)
        for name in args.formats:
            figures = run.formats.get(name)
            if isinstance(figures, tuple):
                median, slowest, size = figures
                row += " %.0f (%.0f) | %.2f |" % (1000 * median, 1000 * slowest, size / 1e6)
            else:
                row += " n/a | n/a |"
        row += " %s | %s |" % (pb.fmt(run.rss_between, ".1f"), pb.fmt(run.peak, ".1f"))
        print(row)
    notes = [(run, name, figures) for run in runs for name, figures in run.formats.items() if isinstance(figures, str)]
    notes += [(run, None, run.note) for run in runs if run.note]
    if notes:
        print()
        for run, name, note in notes:
            print("- %s N=%d%s: %s" % (run.tool, run.n, " " + name if name else "", note))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="1000,10000", help="comma-separated target counts")
    parser.add_argument("--scrapes", type=int, default=5, help="timed scrapes per format")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of probing before the scrapes")
    parser.add_argument("--formats", default="text,gzip,protobuf", help="comma-separated: text, gzip, protobuf")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds for a tool to serve /metrics")
    parser.add_argument("--tools", default="netprobe,smokeping", help="comma-separated: netprobe, smokeping")
    parser.add_argument("--netprobe-binary", default=os.path.join(pb.ROOT, ".build", "release", "netprobe_exporter"))
    args = parser.parse_args()
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for name in args.formats:
        if name not in FORMATS:
            parser.error("unknown format %s (choose from %s)" % (name, ", ".join(FORMATS)))
    for tool in tools:
        if tool not in TOOLS:
            parser.error("unknown tool %s (choose from %s)" % (tool, ", ".join(TOOLS)))
    counts = [int(x) for x in args.targets.split(",") if x.strip()]
    if os.geteuid() != 0:
        print("scrape_bench: needs root (ip netns add); run it as root. Nothing measured.")
        return 0
    for program, package in (("ip", "iproute2"), ("curl", "curl")):
        if shutil.which(program) is None:
            print("scrape_bench: `%s` is missing: apt-get install %s. Nothing measured." % (program, package))
            return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, pb._on_signal)
    atexit.register(pb.cleanup)
    workdir = tempfile.mkdtemp(prefix="npscrape-")
    pb._tempdirs.append(workdir)
    runs = []
    try:
        for n in counts:
            for tool in tools:
                pb._log("scrape_bench: %s, %d targets ..." % (tool, n))
                runs.append(run_one(tool, n, args, workdir))
    except KeyboardInterrupt:
        pb._log("scrape_bench: interrupted; cleaning up")
        pb.cleanup()
        report(runs, args)
        return 130
    finally:
        pb.cleanup()
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
