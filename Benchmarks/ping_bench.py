#!/usr/bin/env python3
"""ICMP echo probing cost: netprobe_exporter against fping and smokeping_prober.

Every tool probes N addresses of 127.1.0.0/16 once per second each, inside a network
namespace this script creates for that run and removes afterwards: the namespace holds
only `lo` (no other interface, no route out), and Linux answers echo requests on every
address of 127.0.0.0/8, so nothing leaves the machine. HTTP listeners bind 127.0.0.1
inside the namespace.

For each tool and N: start it, warm up (5 s), then measure over a window (60 s):
  - CPU seconds (utime + stime from /proc/PID/stat, plus reaped and live children),
  - CPU seconds per 1,000 probes sent, and the share of one core,
  - peak RSS (VmHWM from /proc/PID/status) in MiB,
  - echo requests sent and replies counted during the window (counter deltas).

Counters: fping from its interval splits (SIGQUIT prints and resets them, fping -Q
suppresses the per-reply lines); smokeping_prober from smokeping_requests_total and
smokeping_response_duration_seconds_count; netprobe from netprobe_ping_packets_sent_total
and netprobe_ping_packets_received_total. Scrapes (and fping's split printing) happen just
outside the CPU window, and the probe counts are scaled to the CPU window's length, so the
figures are the cost of probing, not of serving /metrics.

Prints figures, asserts nothing, exits 0 when a tool is missing (it names the package).
Needs root (ip netns). Standard library only.

  python3 Benchmarks/ping_bench.py [--seconds 60] [--targets 1000,10000]
      [--tools netprobe,fping,smokeping] [--netprobe-binary .build/release/netprobe_exporter]
"""
import argparse
import atexit
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FPING_MIN_INTERVAL_MS = 0.16  # <= 6,250 probes/s: below fping 5.1's sequence-number limit
PORT = 19469  # inside each private namespace, so never in conflict with anything
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MIB = 1024.0  # VmHWM is in kB
NS_PREFIX = "npbench-%d-" % os.getpid()

TOOLS = {
    "netprobe": {"label": "netprobe_exporter", "package": None},
    "fping": {"label": "fping -l", "package": "fping", "binary": "fping"},
    "smokeping": {"label": "smokeping_prober (datagram)", "package": "prometheus-smokeping-prober",
                  "binary": "prometheus-smokeping-prober"},
}

# ---------------------------------------------------------------------------------------
# Cleanup: every namespace and process this script starts is recorded here and removed by
# name / PID on normal exit, on an exception, on SIGINT/SIGTERM/SIGHUP (via finally) and at
# interpreter exit (atexit). Children also get PR_SET_PDEATHSIG so that they die with us
# even if this process is killed with SIGKILL.

_processes = []   # subprocess.Popen objects we started
_namespaces = []  # names of namespaces we created
_tempdirs = []


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _stop_process(process):
    if process.poll() is not None:
        return
    try:
        process.terminate()  # SIGTERM to this PID only
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            process.kill()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
    except OSError:
        pass


def _delete_namespace(name):
    # Any process still inside OUR namespace was started by us: end it by PID.
    try:
        out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                             timeout=10).stdout
        ns_inode = os.stat("/run/netns/" + name).st_ino
        for pid in (int(p) for p in out.split() if p.isdigit()):
            try:
                if os.stat("/proc/%d/ns/net" % pid).st_ino == ns_inode:  # still ours
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
    except (OSError, subprocess.SubprocessError):
        pass
    for _ in range(20):
        result = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
        if result.returncode == 0 or name not in _list_namespaces():
            return True
        time.sleep(0.25)
    _log("warning: could not delete namespace %s: %s" % (name, result.stderr.strip()))
    return False


def _list_namespaces():
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup():
    while _processes:
        _stop_process(_processes.pop())
    while _namespaces:
        _delete_namespace(_namespaces.pop())
    while _tempdirs:
        shutil.rmtree(_tempdirs.pop(), ignore_errors=True)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _child_setup(nofile):
    """Runs in the child between fork and exec: die with the parent, raise the fd limit."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    os.setsid()  # a terminal's Ctrl-C reaches only us; we stop the child ourselves
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < nofile:
            if hard < nofile:
                try:
                    with open("/proc/sys/fs/nr_open") as f:
                        hard = max(hard, min(nofile, int(f.read())))
                except OSError:
                    pass
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
    except (ValueError, OSError):
        pass


# ---------------------------------------------------------------------------------------
# Namespace and process helpers

def make_namespace(tag):
    name = NS_PREFIX + tag
    _namespaces.append(name)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True,
                   capture_output=True)
    links = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link", "show"], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    names = [line.split(":")[1].strip().split("@")[0] for line in links if ":" in line]
    if names != ["lo"]:
        raise RuntimeError("namespace %s has interfaces %s, expected only lo" % (name, names))
    routes = subprocess.run(["ip", "netns", "exec", name, "ip", "-4", "route", "show",
                             "table", "all"], capture_output=True, text=True).stdout
    if "default" in routes:
        raise RuntimeError("namespace %s has a default route" % name)
    subprocess.run(["ip", "netns", "exec", name, "sh", "-c",
                    "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range"],
                   check=True, capture_output=True)
    return name


def start(namespace, command, stdout, stderr, nofile):
    process = subprocess.Popen(["ip", "netns", "exec", namespace] + command,
                               stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                               preexec_fn=lambda: _child_setup(nofile), close_fds=True)
    _processes.append(process)
    return process


def _stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # Fields after the ")" that closes comm: index 0 is field 3 (state).
    return data[data.rindex(")") + 2:].split()


def _children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[1]) == pid:
                    kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def process_tree(pid):
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children_of(current))
    return tree


def cpu_seconds(pid):
    """utime+stime of the process (all its threads) and of its reaped children, plus the
    same for any live descendant."""
    total = 0
    for index, member in enumerate(process_tree(pid)):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        total += int(fields[13]) + int(fields[14])  # cutime, cstime (fields 16, 17)
    return total / CLK_TCK


def _status_mib(pid, field):
    total = 0
    for member in process_tree(pid):
        try:
            with open("/proc/%d/status" % member) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / PAGE_MIB


def peak_rss_mib(pid):
    """VmHWM: the high-water mark, scrapes included."""
    return _status_mib(pid, "VmHWM")


def rss_mib(pid):
    """VmRSS now: read at the end of the window, long after the last scrape (memory held
    between scrapes, the figure the exporter's memory goal is about)."""
    return _status_mib(pid, "VmRSS")


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def tail(path, lines=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


# Scrapes run inside the namespace (the listener is on the namespace's 127.0.0.1).
SCRAPER = r"""
import json, sys, time, urllib.request
url, families = sys.argv[1], sys.argv[2:]
sums = dict.fromkeys(families); series = dict.fromkeys(families, 0)
t_req = time.monotonic()
try:
    response = urllib.request.urlopen(url, timeout=float(%(timeout)r))
    t_hdr = time.monotonic()
    body = response.read().decode("utf-8", "replace")
except Exception as error:
    print(json.dumps({"error": repr(error)})); sys.exit(0)
t_end = time.monotonic()
for line in body.splitlines():
    if not line or line[0] == "#":
        continue
    end = len(line)
    for i, ch in enumerate(line):
        if ch == "{" or ch == " ":
            end = i; break
    name = line[:end]
    if name in sums and end < len(line):
        rest = line[line.rindex("}") + 1:] if line[end] == "{" else line[end:]
        value = float(rest.split()[0])
        sums[name] = (sums[name] or 0.0) + value
        series[name] += 1
print(json.dumps({"t_req": t_req, "t_hdr": t_hdr, "t_end": t_end, "bytes": len(body),
                  "sums": sums, "series": series}))
"""


def scrape(namespace, families, timeout=60.0):
    code = SCRAPER % {"timeout": timeout}
    try:
        result = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", code,
                                 "http://127.0.0.1:%d/metrics" % PORT] + list(families),
                                capture_output=True, text=True, timeout=timeout + 30)
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return {"error": repr(error)}


def wait_http(namespace, process, families, timeout=60.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None, "exited with status %s" % process.returncode
        last = scrape(namespace, families, timeout=5.0)
        if "error" not in last:
            return last, None
        time.sleep(0.25)
    return None, "no /metrics after %.0f s (%s)" % (timeout, last.get("error") if last else "")


# ---------------------------------------------------------------------------------------
# Targets

def target_addresses(n):
    # 127.1.0.1 … 127.1.0.250, 127.1.1.1 …: 250 per /24, never .0 or .255.
    if n > 250 * 256:
        raise ValueError("at most %d targets" % (250 * 256))
    return ["127.1.%d.%d" % (i // 250, i % 250 + 1) for i in range(n)]


# ---------------------------------------------------------------------------------------
# One run per tool and N

class Result:
    def __init__(self, tool, n):
        self.tool, self.n = tool, n
        self.cpu = self.window = self.rss = self.rss_now = None
        self.sent = self.answered = None
        self.note = None
        self.command = None
        self.version = None
        self.extra = ""
        self.stderr_path = None


def tool_version(tool, netprobe_binary):
    try:
        if tool == "fping":
            out = subprocess.run(["fping", "-v"], capture_output=True, text=True, timeout=10)
            return (out.stdout + out.stderr).strip().split("Version")[-1].strip()
        if tool == "smokeping":
            out = subprocess.run(["prometheus-smokeping-prober", "--version"], capture_output=True,
                                 text=True, timeout=10)
            m = re.search(r"version (\S+)", out.stdout + out.stderr)
            return m.group(1) if m else "?"
        out = subprocess.run([netprobe_binary, "--version"], capture_output=True, text=True,
                             timeout=10)
        text = (out.stdout + out.stderr).strip()
        text = text.splitlines()[0] if text else "?"
        return text[len("netprobe_exporter"):].strip() if text.startswith("netprobe_exporter") else text
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def measure_http(result, namespace, process, sent_family, answered_family, args):
    families = [sent_family, answered_family]
    first, error = wait_http(namespace, process, families)
    if error:
        result.note = "%s: %s" % (error, tail(result.stderr_path))
        return
    t_ready = time.monotonic()
    cpu_ready = cpu_seconds(process.pid)
    time.sleep(args.warmup)
    if process.poll() is not None:
        result.note = "exited during warm-up: %s" % tail(result.stderr_path)
        return
    before = scrape(namespace, families)
    if "error" in before:
        result.note = "scrape failed: %s" % before["error"]
        return
    if before["sums"][sent_family] is None or before["sums"][answered_family] is None:
        idle = (cpu_seconds(process.pid) - cpu_ready) / max(time.monotonic() - t_ready, 1e-9)
        missing = [f for f in families if before["sums"][f] is None]
        result.note = ("/metrics (%d bytes) has no %s (during warm-up: %.1f%% of one core, "
                       "peak RSS %.1f MiB)" % (before["bytes"], " nor ".join(missing),
                                               100 * idle, peak_rss_mib(process.pid)))
        return
    cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(args.seconds)
    cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
    result.rss = peak_rss_mib(process.pid)
    result.rss_now = rss_mib(process.pid)
    after = scrape(namespace, families)
    if "error" in after or process.poll() is not None:
        result.note = "final scrape failed: %s %s" % (after.get("error", ""), tail(result.stderr_path))
        return
    count_window = after["t_hdr"] - before["t_hdr"]
    scale = (t1 - t0) / count_window  # counts over the CPU window's length
    result.cpu, result.window = cpu1 - cpu0, t1 - t0
    result.sent = (after["sums"][sent_family] - before["sums"][sent_family]) * scale
    result.answered = (after["sums"][answered_family] - before["sums"][answered_family]) * scale
    result.extra = "scrape %.0f KB in %.0f ms" % (after["bytes"] / 1000.0,
                                                   1000 * (after["t_end"] - after["t_req"]))


FPING_LINE = re.compile(r"^(\S+)\s*:\s*xmt/rcv/%(?:loss|return) = (\d+)/(\d+)/", re.M)


def fping_split(process, stderr_path, n, timeout=20.0):
    """SIGQUIT: fping prints per-target counts since the previous split and resets them."""
    offset = os.path.getsize(stderr_path)
    t_signal = time.monotonic()
    process.send_signal(signal.SIGQUIT)  # a no-op once the child is reaped: never a reused PID
    deadline = time.monotonic() + timeout
    matches = []
    while time.monotonic() < deadline:
        with open(stderr_path, errors="replace") as f:
            f.seek(offset)
            matches = FPING_LINE.findall(f.read())
        if len(matches) >= n or process.poll() is not None:
            break
        time.sleep(0.05)
    sent = sum(int(m[1]) for m in matches)
    answered = sum(int(m[2]) for m in matches)
    return t_signal, len(matches), sent, answered


def run_one(tool, n, args, workdir):
    result = Result(tool, n)
    spec = TOOLS[tool]
    if tool == "netprobe":
        binary = os.path.abspath(args.netprobe_binary)
        if not os.access(binary, os.X_OK):
            result.note = "no binary at %s (build it: swift build -c release)" % binary
            return result
    elif shutil.which(spec["binary"]) is None:
        result.note = "not installed: apt-get install %s" % spec["package"]
        return result
    result.version = tool_version(tool, getattr(args, "netprobe_binary", ""))

    addresses = target_addresses(n)
    tag = "%s-%d" % (tool, n)
    run_dir = os.path.join(workdir, tag)
    os.makedirs(run_dir)
    result.stderr_path = os.path.join(run_dir, "stderr.log")
    nofile = max(4096, 2 * n + 1024)
    namespace = make_namespace(tag)
    process = None
    try:
        if tool == "fping":
            targets = os.path.join(run_dir, "targets.txt")
            with open(targets, "w") as f:
                f.write("\n".join(addresses) + "\n")
            # -p 1000: 1 s between probes to one target. -i: minimum gap between any two
            # sends (default 10 ms = at most 100 probes/s in all!), so spread one round over
            # 90% of the period, but no faster than FPING_MIN_INTERVAL_MS: fping 5.1 holds
            # each of its 65,536 sequence numbers for 10 s and exits ("not enough sequence
            # numbers available!") above ~6,500 probes/s. -Q 3600: quiet (fping 5.1's -q
            # still prints every reply in loop mode), splits only on our SIGQUIT.
            interval = min(10.0, max(0.9 * 1000.0 / n, FPING_MIN_INTERVAL_MS))
            command = ["fping", "-l", "-Q", "3600", "-p", "1000", "-i", "%g" % interval,
                       "-f", targets]
            result.command = " ".join(command)
            with open(result.stderr_path, "wb") as err:
                process = start(namespace, command, subprocess.DEVNULL, err, nofile)
            time.sleep(0.5)
            if process.poll() is not None:
                result.note = "exited with %s: %s" % (process.returncode, tail(result.stderr_path))
                return result
            time.sleep(args.warmup)
            if process.poll() is not None:
                result.note = "fping exited during warm-up: %s" % tail(result.stderr_path, 1)
                return result
            t_a, lines_a, _, _ = fping_split(process, result.stderr_path, n)  # reset
            cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
            time.sleep(args.seconds)
            cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
            result.rss = peak_rss_mib(process.pid)
            result.rss_now = rss_mib(process.pid)
            alive = process.poll() is None
            t_b, lines_b, sent, answered = fping_split(process, result.stderr_path, n)
            if not alive:
                result.note = "fping exited during the window: %s" % tail(result.stderr_path, 1)
                return result
            if lines_b < n:
                result.note = "only %d of %d targets in fping's split" % (lines_b, n)
            if sent < 0.95 * n * (t_b - t_a):
                result.note = ("fping sent %.0f probes/s, not %d: -i %g ms is its floor here"
                               % (sent / (t_b - t_a), n, interval))
            scale = (t1 - t0) / (t_b - t_a)
            result.cpu, result.window = cpu1 - cpu0, t1 - t0
            result.sent, result.answered = sent * scale, answered * scale
            result.extra = ("raw socket (fping tries raw first; we are root)" if _has_raw(namespace)
                            else "datagram socket")
        elif tool == "smokeping":
            config = os.path.join(run_dir, "smokeping.yml")
            with open(config, "w") as f:
                f.write("targets:\n- interval: 1s\n  network: ip4\n  protocol: udp\n  size: 56\n"
                        "  hosts:\n")
                f.writelines("  - %s\n" % a for a in addresses)
            command = ["prometheus-smokeping-prober", "--config.file=" + config, "--no-privileged",
                       "--web.listen-address=127.0.0.1:%d" % PORT, "--log.level=warn"]
            result.command = " ".join(command)
            with open(result.stderr_path, "wb") as err:
                process = start(namespace, command, subprocess.DEVNULL, err, nofile)
            measure_http(result, namespace, process, "smokeping_requests_total",
                         "smokeping_response_duration_seconds_count", args)
            if result.cpu is not None and _has_raw(namespace):
                result.extra += "; WARNING: raw sockets open"
        else:
            config = os.path.join(run_dir, "netprobe.yml")
            with open(config, "w") as f:
                f.write("targets:\n")
                f.writelines("  - {name: t%d, host: %s}\n" % (i, a) for i, a in enumerate(addresses))
                f.write("defaults: {interval: 1s, timeout: 1s, socket: dgram}\n")
            command = [os.path.abspath(args.netprobe_binary), "--config.file=" + config,
                       "--web.listen-address=127.0.0.1:%d" % PORT, "--log.level=warn"]
            result.command = " ".join(command)
            with open(result.stderr_path, "wb") as err:
                process = start(namespace, command, subprocess.DEVNULL, err, nofile)
            measure_http(result, namespace, process, "netprobe_ping_packets_sent_total",
                         "netprobe_ping_packets_received_total", args)
        if process is not None and result.cpu is not None:
            result.extra = "%s; pid %d (%s)" % (result.extra, process.pid, comm(process.pid))
    except Exception as error:  # noqa: BLE001 — report and go on to the next run
        result.note = "failed: %r" % (error,)
    finally:
        if process is not None:
            _stop_process(process)
            if process in _processes:
                _processes.remove(process)
        if _delete_namespace(namespace) and namespace in _namespaces:
            _namespaces.remove(namespace)
    return result


def _has_raw(namespace):
    out = subprocess.run(["ip", "netns", "exec", namespace, "cat", "/proc/net/raw"],
                         capture_output=True, text=True).stdout
    return len(out.strip().splitlines()) > 1


# ---------------------------------------------------------------------------------------
# Report

def per_thousand(r):
    return 1000.0 * r.cpu / r.sent if r.cpu is not None and r.sent else None


def fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def report(results, args):
    print()
    print("ICMP echo probing, 1 probe/s per target on 127.1.0.0/16 in a private namespace; "
          "%g s window after %g s warm-up; %d CPU(s)." % (args.seconds, args.warmup, os.cpu_count()))
    print()
    print("| tool | N | CPU s per 1,000 probes | % of one core | RSS MiB between scrapes | peak RSS MiB "
          "| answered / sent | sent / expected |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for r in results:
        label = TOOLS[r.tool]["label"] + (" " + r.version if r.version and r.version != "?" else "")
        if r.cpu is None or not r.sent:
            print("| %s | %d | n/a | n/a | n/a | n/a | n/a | n/a |" % (label, r.n))
            continue
        expected = r.n * r.window
        print("| %s | %d | %.3f | %.1f | %s | %.1f | %d / %d (%.2f%%) | %.1f%% |" % (
            label, r.n, per_thousand(r), 100 * r.cpu / r.window, fmt(r.rss_now, ".1f"), r.rss, round(r.answered),
            round(r.sent), 100 * r.answered / r.sent, 100 * r.sent / expected))
    print()
    ns = sorted({r.n for r in results})
    by = {(r.tool, r.n): r for r in results}
    print("netprobe ratios (< 1: netprobe uses less):")
    for n in ns:
        mine = by.get(("netprobe", n))
        parts = []
        for peer in ("fping", "smokeping"):
            other = by.get((peer, n))
            if other is None:
                continue
            cpu = (per_thousand(mine) / per_thousand(other)
                   if mine and other and per_thousand(mine) and per_thousand(other) else None)
            rss = mine.rss / other.rss if mine and other and mine.rss and other.rss and mine.cpu is not None else None
            parts.append("netprobe/%s CPU per probe %s, RSS %s" % (peer, fmt(cpu, ".2f"), fmt(rss, ".2f")))
        print("- N=%d: %s" % (n, "; ".join(parts) if parts else "n/a"))
    print()
    print("Runs:")
    for r in results:
        line = "- %s N=%d: " % (r.tool, r.n)
        line += ("`%s`" % r.command) if r.command else "(not started)"
        if r.cpu is not None:
            line += "; CPU %.2f s over %.1f s, %s" % (r.cpu, r.window, getattr(r, "extra", ""))
        if r.note:
            line += "; n/a: " + r.note if r.cpu is None else "; note: " + r.note
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window (s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before the window (s)")
    parser.add_argument("--targets", default="1000,10000", help="comma-separated target counts")
    parser.add_argument("--tools", default="netprobe,fping,smokeping",
                        help="comma-separated: netprobe, fping, smokeping")
    parser.add_argument("--netprobe-binary", default=os.path.join(ROOT, ".build", "release",
                                                                  "netprobe_exporter"))
    parser.add_argument("--keep-logs", action="store_true", help="keep the tools' configs and logs")
    args = parser.parse_args()

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error("unknown tool(s): %s (choose from %s)" % (", ".join(unknown), ", ".join(TOOLS)))
    try:
        counts = [int(x) for x in args.targets.split(",") if x.strip()]
        for n in counts:
            if n <= 0:
                raise ValueError("N must be > 0")
            target_addresses(n)
    except ValueError as error:
        parser.error("--targets: %s" % error)

    if os.geteuid() != 0:
        print("ping_bench: needs root (ip netns add); run it as root. Nothing measured.")
        return 0
    if shutil.which("ip") is None:
        print("ping_bench: `ip` is missing: apt-get install iproute2. Nothing measured.")
        return 0
    stale = [n for n in _list_namespaces() if re.match(r"npbench-(\d+)-", n)
             and not os.path.exists("/proc/%s" % re.match(r"npbench-(\d+)-", n).group(1))]
    if stale:
        _log("note: namespaces left by an earlier, killed run: %s (remove with ip netns del NAME)"
             % ", ".join(stale))

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(cleanup)
    workdir = tempfile.mkdtemp(prefix="npbench-")
    if not args.keep_logs:
        _tempdirs.append(workdir)

    results = []
    try:
        for n in counts:
            for tool in tools:
                _log("ping_bench: %s, %d targets, %g s window ..." % (tool, n, args.seconds))
                results.append(run_one(tool, n, args, workdir))
    except KeyboardInterrupt:
        _log("ping_bench: interrupted; cleaning up")
        cleanup()
        if results:
            report(results, args)
        return 130
    finally:
        cleanup()
    report(results, args)
    if args.keep_logs:
        print("\nlogs and configs kept in %s" % workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
