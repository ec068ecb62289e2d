#!/usr/bin/env python3
"""Targets from files at scale (issue 15): how long adding targets to a file that already
gives many takes to apply, and whether the running targets lose a probe meanwhile.

The exporter probes N addresses of 127.1.0.0/16 from a file_sd JSON file (loopback only:
Linux answers echo requests on every address of 127.0.0.0/8, nothing leaves the machine).
Once all run, M more (127.2.0.0/16) are written into the same file by a rename, as a
generator does. Printed:
  - apply latency: from the rename to the exporter's "targets from files applied" log line,
    and to a scrape that shows every new target with a probe sent;
  - the running targets' probes over a window that spans the change, against what their
    interval promises: any target that went back or fell short of interval - 1 is counted.

Prints figures, asserts nothing. Standard library only.

  python3 Benchmarks/target_files_bench.py [--binary .build/release/netprobe_exporter]
      [--targets 10000] [--added 1000] [--interval 2]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENT = "netprobe_ping_packets_sent_total{"


def addresses(prefix, count):
    return [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def write(path, targets):
    temporary = os.path.join(os.path.dirname(path), ".targets.tmp")
    with open(temporary, "w") as f:
        json.dump([{"targets": targets, "labels": {"bench": "1"}}], f)
    os.replace(temporary, path)


def scrape(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/metrics")
    body = connection.getresponse().read().decode()
    connection.close()
    sent = {}
    for line in body.splitlines():
        if line.startswith(SENT):
            sent[re.search(r'target="([^"]*)"', line).group(1)] = float(line.rsplit(" ", 1)[1])
    return sent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "netprobe_exporter"))
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--added", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=19515)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="netprobe-tfbench-")
    process = None
    try:
        file = os.path.join(directory, "targets", "bench.json")
        os.mkdir(os.path.dirname(file))
        running = addresses("127.1", args.targets)
        added = addresses("127.2", args.added)
        write(file, running)
        config = os.path.join(directory, "netprobe.yml")
        with open(config, "w") as f:
            f.write(f"defaults:\n  interval: {int(args.interval * 1000)}ms\n  timeout: 1s\n  window: 10\n"
                    "ping:\n  rtt_buckets: [0.01]\n"
                    f"target_files:\n  - files: ['{directory}/targets/*.json']\n"
                    f"    max_targets_per_file: {args.targets + args.added}\n")
        log = open(os.path.join(directory, "log"), "w+")
        process = subprocess.Popen([args.binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{args.port}"],
                                   stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 120
        while True:
            time.sleep(1)
            try:
                sent = scrape(args.port)
            except OSError:
                continue
            if len(sent) == args.targets and min(sent.values()) >= 1:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(sent)} targets running after 120 s")
        time.sleep(2 * args.interval)
        start = time.monotonic()
        before = scrape(args.port)
        before_time = (start + time.monotonic()) / 2
        log.seek(0, os.SEEK_END)
        offset = log.tell()
        changed_at = time.time()
        changed_mono = time.monotonic()
        write(file, running + added)
        applied = None
        while applied is None and time.monotonic() - changed_mono < 30:
            log.seek(offset)
            for line in log.read().splitlines():
                match = re.search(r'ts=(\S+) level=info msg="targets from files applied"', line)
                if match:
                    stamp = time.mktime(time.strptime(match.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                    applied = stamp + float("0" + match.group(1)[19:-1]) - changed_at
            time.sleep(0.01)
        seen = None
        while seen is None and time.monotonic() - changed_mono < 60:
            asked = time.monotonic() - changed_mono
            sent = scrape(args.port)
            if all(sent.get(a, 0) >= 1 for a in added):
                seen = (asked, time.monotonic() - changed_mono)
        time.sleep(max(0, 5 * args.interval - (time.monotonic() - changed_mono)))
        after_start = time.monotonic()
        after = scrape(args.port)
        after_time = (after_start + time.monotonic()) / 2
        window = after_time - before_time
        promised = window / args.interval
        went_back = sum(1 for a in running if after[a] < before[a])
        short = sum(1 for a in running if after[a] - before[a] < int(promised) - 1)
        total = sum(after[a] - before[a] for a in running)
        print(f"{args.targets} targets running at {args.interval}s, {args.added} added to the same file by a rename:")
        print(f"  applied (log line) {applied * 1000:.0f} ms after the rename" if applied is not None else "  no apply log line seen")
        print(f"  every new target probed: seen in the scrape asked for {seen[0]:.2f} s after the rename "
              f"and answered at {seen[1]:.2f} s (a scrape of {len(after)} targets takes a while)")
        print(f"  running targets over {window:.1f} s spanning the change: {total:.0f} probes, {total / len(running):.2f} each "
              f"(interval promises {promised:.2f}); {went_back} went back, {short} fell short of {int(promised) - 1}")
    finally:
        if process and process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(directory, True)


if __name__ == "__main__":
    main()
