#!/usr/bin/env python3
"""Multicast reception cost: one group at rising rates over a veth pair.

Two network namespaces this script creates and removes, joined by one veth pair and
nothing else (no router, no default route, no link to the host): `send` (veth-send,
198.18.0.1/30) and `agent` (veth-agent, 198.18.0.2/30). The release exporter runs in
`agent` with one group (239.7.7.7:5007, format `sequence`: a u64 big-endian at offset 0)
joined on veth-agent; Benchmarks/mcast_blast.c, compiled here with cc/clang/gcc, sends to
it from `send` (IP_MULTICAST_IF veth-send, TTL 1, route 239.0.0.0/8 on veth-send only).
The exporter listens on 127.0.0.1:0 inside `agent` and its port is read from its log.

After the join shows in netprobe_multicast_membership and a short warm-up stream, for each
rate (packets/s): scrape, send for --seconds, wait until the socket's queue is empty, scrape
again, and report:
  - sent (the sender's count) and whether the sender kept the schedule,
  - received, lost, duplicate + late, sequence resets and socket drops (SO_RXQ_OVFL) as the
    exporter counts them (counter deltas), and the kernel's own view in the agent
    namespace (veth RX packets, UDP RcvbufErrors),
  - exporter CPU seconds (utime + stime, /proc/PID/stat) per 100,000 packets received,
    the share of one core of the whole process and of its receiver thread (`multicast`),
  - zero loss: received == sent, lost 0, socket drops 0.
Sequence numbers run on across the steps, so a step starts where the last ended (no reset).
Rates rise until two steps in a row fail (or the list ends): a step fails when it is not
zero-loss, or when the sender could not keep the rate (higher rates cannot be offered
either). The highest zero-loss rate is printed at the end.

The sender paces on a fixed grid and sends what is due in bursts of at most 8 (one
sendmmsg per wake-up, a wake-up about every 50 us at high rates; see mcast_blast.c), so
the exporter sees datagrams in small bursts, as from a NIC that coalesces interrupts.

The sender's side of the kernel (veth transmit, and the receive path up to the exporter's
socket, which runs in the sender's softirq) is charged to the sender, not to the exporter:
the exporter's figures are what it costs to take datagrams off its socket and account
them. On a 2-core machine the sender and the exporter share the machine; --cpus pins them
to different cores.

Prints figures, asserts nothing, exits 0 when something is missing (it names it). Needs
root (ip netns). Standard library only; reuses ping_bench's namespace and process helpers.

  python3 Benchmarks/multicast_bench.py [--rates 25000,50000,...] [--seconds 5]
      [--netprobe-binary .build/release/netprobe_exporter] [--cpus SENDER,EXPORTER]
      [--failures 2] [--keep-logs]
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ping_bench  # noqa: E402  (namespaces, processes, CPU from /proc, cleanup)
from ping_bench import (SCRAPER, _list_namespaces, _log, _on_signal, _processes,  # noqa: E402
                        _stop_process, _tempdirs, cleanup, cpu_seconds, make_namespace, peak_rss_mib,
                        tail)

ROOT = ping_bench.ROOT
CLK_TCK = ping_bench.CLK_TCK
GROUP, PORT, SENDER_ADDRESS, AGENT_ADDRESS = "239.7.7.7", 5007, "198.18.0.1", "198.18.0.2"
SEND_IF, AGENT_IF = "veth-send", "veth-agent"
DEFAULT_RATES = "25000,50000,100000,150000,200000,250000,300000,400000"
PAYLOAD = 64
FAMILIES = {
    "received": "netprobe_multicast_packets_received_total",
    "lost": "netprobe_multicast_packets_lost_total",
    "duplicate": "netprobe_multicast_packets_duplicate_total",
    "late": "netprobe_multicast_packets_late_total",
    "resets": "netprobe_multicast_sequence_resets_total",
    "drops": "netprobe_multicast_socket_drops_total",
    "unexpected": "netprobe_multicast_unexpected_packets_total",
    "membership": "netprobe_multicast_membership",
}


# ---------------------------------------------------------------------------------------
# The sender

def compiler():
    """cc, else clang (the Swift toolchain ships one, next to `swift`), else gcc."""
    for name in (os.environ.get("CC"), "cc", "clang", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    swift = shutil.which("swift")
    if swift:
        candidate = os.path.join(os.path.dirname(os.path.realpath(swift)), "clang")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def build_sender(workdir):
    cc = compiler()
    if cc is None:
        return None, "no C compiler (cc, clang or gcc): apt-get install gcc, or put the Swift toolchain's clang on PATH"
    binary = os.path.join(workdir, "mcast_blast")
    result = subprocess.run([cc, "-O2", "-Wall", "-o", binary, os.path.join(ROOT, "Benchmarks", "mcast_blast.c")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None, "%s failed: %s" % (cc, (result.stderr or result.stdout).strip())
    return binary, cc


# ---------------------------------------------------------------------------------------
# The two namespaces

def ip(namespace, *args, check=True):
    command = ["ip"] + (["-n", namespace] if namespace else []) + list(args)
    return subprocess.run(command, check=check, capture_output=True, text=True)


def in_ns(namespace, *command, timeout=30):
    return subprocess.run(["ip", "netns", "exec", namespace] + list(command), capture_output=True,
                          text=True, timeout=timeout)


def build_namespaces():
    send = make_namespace("mcast-send")
    agent = make_namespace("mcast-agent")
    for ns in (send, agent):
        in_ns(ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter; "
                              "echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter")
    # Created directly inside the namespaces (nothing appears on the host). Distinct
    # ifindexes at the two ends, or the carrier comes up about a second late.
    ip(None, "link", "add", SEND_IF, "index", "10", "netns", send, "type", "veth",
       "peer", "name", AGENT_IF, "index", "11", "netns", agent)
    ip(send, "addr", "add", SENDER_ADDRESS + "/30", "dev", SEND_IF)
    ip(agent, "addr", "add", AGENT_ADDRESS + "/30", "dev", AGENT_IF)
    ip(send, "link", "set", SEND_IF, "up")
    ip(agent, "link", "set", AGENT_IF, "up")
    # Multicast leaves the sender by veth-send only (the sender also sets IP_MULTICAST_IF).
    ip(send, "route", "add", "239.0.0.0/8", "dev", SEND_IF)
    for ns in (send, agent):
        routes = ip(ns, "-4", "route", "show", "table", "all").stdout
        if "default" in routes:
            raise RuntimeError("namespace %s has a default route" % ns)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = [ip(ns, "-o", "link", "show", dev).stdout for ns, dev in ((send, SEND_IF), (agent, AGENT_IF))]
        if all("state UP" in s for s in states):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("veth pair has no carrier after 10 s")
    return send, agent


def read_rmem_max(namespace):
    out = in_ns(namespace, "cat", "/proc/sys/net/core/rmem_max").stdout.strip()
    return int(out) if out.isdigit() else None


def kernel_counters(agent):
    """The agent namespace's view: veth RX packets and drops, UDP counters, and the socket's
    receive queue, drop count and buffer size (/proc/net/udp)."""
    script = ("cat /sys/class/net/%s/statistics/rx_packets /sys/class/net/%s/statistics/rx_dropped; "
              "cat /proc/net/snmp; echo ==; cat /proc/net/udp" % (AGENT_IF, AGENT_IF))
    out = in_ns(agent, "sh", "-c", script).stdout
    lines = out.splitlines()
    counters = {"rx_packets": int(lines[0]), "rx_dropped": int(lines[1])}
    snmp, udp = "\n".join(lines[2:]).split("==", 1)
    udp_rows = [row.split() for row in snmp.splitlines() if row.startswith("Udp:")]
    if len(udp_rows) == 2:
        for key, value in zip(udp_rows[0][1:], udp_rows[1][1:]):
            counters["Udp" + key] = int(value)
    queue = drops = 0
    for row in udp.splitlines()[1:]:
        fields = row.split()
        if len(fields) > 12 and fields[1].endswith(":%04X" % PORT):
            queue += int(fields[4].split(":")[1], 16)
            drops += int(fields[12])
    counters["socket_queue_bytes"], counters["socket_drops"] = queue, drops
    return counters


def socket_buffer(agent):
    """The receive buffer (rb) of the exporter's socket, from `ss -m`."""
    out = in_ns(agent, "ss", "-u", "-a", "-n", "-m", "sport", "= :%d" % PORT).stdout
    match = re.search(r"\brb(\d+)", out)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------
# The exporter

def scrape(namespace, port, timeout=30.0):
    code = SCRAPER % {"timeout": timeout}
    try:
        result = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", code,
                                 "http://127.0.0.1:%d/metrics" % port] + list(FAMILIES.values()),
                                capture_output=True, text=True, timeout=timeout + 30)
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return {"error": repr(error)}
    if "error" not in data:
        data["values"] = {key: data["sums"][family] for key, family in FAMILIES.items()}
    return data


def listening_port(stderr_path):
    try:
        with open(stderr_path, errors="replace") as f:
            log = f.read()
    except OSError:
        return None
    match = (re.search(r"msg=listening address=127\.0\.0\.1:(\d+)", log)
             or re.search(r'"msg":"listening","address":"127\.0\.0\.1:(\d+)"', log))
    return int(match.group(1)) if match else None


def threads(pid):
    """{tid: (comm, utime + stime ticks)} of every thread of `pid`."""
    result = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return result
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        result[int(tid)] = (name, int(fields[11]) + int(fields[12]))
    return result


def receiver_thread(before, after):
    """CPU seconds of the receiver thread between two `threads` readings: the exporter names
    its threads (`ps -L`), the receiver `multicast`; an exporter that does not gets its
    busiest thread, which with one busy group is the receiver."""
    deltas = {tid: (name, ticks - before.get(tid, ("", 0))[1]) for tid, (name, ticks) in after.items()}
    named = [ticks for name, ticks in deltas.values() if name == "multicast"]
    return (named[0] if named else max((ticks for _, ticks in deltas.values()), default=0)) / CLK_TCK


def set_affinity(cpu):
    def setup():
        ping_bench._child_setup(4096)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


def start(namespace, command, stdout, stderr, cpu=None):
    process = subprocess.Popen(["ip", "netns", "exec", namespace] + command, stdin=subprocess.DEVNULL,
                               stdout=stdout, stderr=stderr, preexec_fn=set_affinity(cpu), close_fds=True)
    _processes.append(process)
    return process


# ---------------------------------------------------------------------------------------
# One rate step

class Step:
    def __init__(self, rate):
        self.rate = rate
        self.sender = None  # the sender's JSON report
        self.sent = self.received = self.lost = self.dup_late = self.resets = self.drops = None
        self.unexpected = None
        self.cpu = self.thread_cpu = self.window = None
        self.kernel = {}
        self.load = None  # the 1-minute load average after the step (ours included): other work shows
        self.note = None

    @property
    def sender_on_schedule(self):
        s = self.sender
        return bool(s) and s["sent"] == s["requested"] and s["seconds"] <= s["scheduled_seconds"] * 1.01 + 0.002

    @property
    def zero_loss(self):
        return (self.received is not None and self.sent is not None and self.received == self.sent
                and self.lost == 0 and self.drops == 0)

    @property
    def passed(self):
        return self.zero_loss and self.sender_on_schedule


def send(sender_binary, send_ns, rate, seconds, first, cpu, workdir, batch):
    out_path = os.path.join(workdir, "sender-%d.json" % rate)
    err_path = os.path.join(workdir, "sender-%d.log" % rate)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = start(send_ns, [sender_binary, GROUP, str(PORT), SEND_IF, str(rate), "%g" % seconds,
                                  str(first), str(PAYLOAD), str(batch)], out, err, cpu)
        try:
            process.wait(timeout=seconds * 3 + 30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _stop_process(process)  # a no-op once it has exited
            if process in _processes:
                _processes.remove(process)
    try:
        with open(out_path) as f:
            return json.loads(f.read().strip().splitlines()[-1]), None
    except (OSError, ValueError, IndexError):
        return None, "sender failed (status %s): %s" % (process.returncode, tail(err_path))


def wait_drained(agent, timeout=10.0):
    """Until the exporter's socket queue is empty (checked from /proc, not by scraping)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kernel_counters(agent)["socket_queue_bytes"] == 0:
            time.sleep(0.05)
            if kernel_counters(agent)["socket_queue_bytes"] == 0:
                return True
        time.sleep(0.02)
    return False


def run_step(step, ctx, args, first):
    before = scrape(ctx["agent"], ctx["port"])
    if "error" in before:
        step.note = "scrape failed: %s" % before["error"]
        return first
    k0 = kernel_counters(ctx["agent"])
    pid = ctx["exporter"].pid
    threads0 = threads(pid)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    step.sender, error = send(ctx["sender"], ctx["send"], step.rate, args.seconds, first, ctx["sender_cpu"],
                              ctx["workdir"], args.batch)
    drained = wait_drained(ctx["agent"])
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    threads1 = threads(pid)
    k1 = kernel_counters(ctx["agent"])
    step.load = "%.2f" % os.getloadavg()[0]
    after = scrape(ctx["agent"], ctx["port"])
    if error:
        step.note = error
        return first
    if "error" in after or ctx["exporter"].poll() is not None:
        step.note = "final scrape failed: %s %s" % (after.get("error", ""), tail(ctx["stderr"]))
        return first + step.sender["sent"]
    delta = {key: (after["values"][key] or 0) - (before["values"][key] or 0) for key in FAMILIES}
    step.sent = step.sender["sent"]
    step.received, step.lost = int(delta["received"]), int(delta["lost"])
    step.dup_late = int(delta["duplicate"] + delta["late"])
    step.resets, step.drops, step.unexpected = int(delta["resets"]), int(delta["drops"]), int(delta["unexpected"])
    step.cpu, step.thread_cpu, step.window = cpu1 - cpu0, receiver_thread(threads0, threads1), t1 - t0
    step.kernel = {key: k1[key] - k0[key] for key in k1 if isinstance(k1[key], int) and key in k0}
    if not drained:
        step.note = "the socket queue did not empty within 10 s"
    return first + step.sent


def verdict(step):
    if step.passed:
        return "yes"
    if step.sender_on_schedule:
        return "no"
    # The rate was not offered: say what the exporter made of what was.
    return "n/a: rate not offered (%s)" % ("none lost at %s pps" % fmt_int(round(step.sender["rate"]))
                                           if step.zero_loss else "and loss")


def fmt_int(value):
    return "n/a" if value is None else "{:,}".format(value)


def report(steps, args, ctx):
    print()
    print("Multicast reception, one group (%s:%d, format sequence, %d-byte datagrams) over a veth pair "
          "between two namespaces; %g s per rate; %d CPU(s)%s." % (
              GROUP, PORT, PAYLOAD, args.seconds, os.cpu_count(),
              "; sender pinned to CPU %d, exporter to CPU %d" % tuple(args.cpu_pair) if args.cpu_pair else
              "; sender and exporter not pinned (they share the machine)"))
    if ctx.get("info"):
        print(ctx["info"])
    if ctx.get("rss"):
        print("Exporter peak RSS %.1f MiB." % ctx["rss"])
    print()
    print("| rate pps | sent | sender kept rate | received | lost | dup + late | socket drops "
          "| CPU s per 100k pkts | % of one core (process / receiver thread) | zero loss |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for s in steps:
        if s.received is None:
            print("| %s | %s | n/a | n/a | n/a | n/a | n/a | n/a | n/a | no (%s) |" % (
                fmt_int(s.rate), fmt_int(s.sent), s.note or "not measured"))
            continue
        kept = "yes" if s.sender_on_schedule else "no (%.0f pps, lag %.0f ms)" % (
            s.sender["rate"], s.sender["max_lag_us"] / 1000)
        per100k = 1e5 * s.cpu / s.received if s.received else None
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f / %.1f | %s |" % (
            fmt_int(s.rate), fmt_int(s.sent), kept, fmt_int(s.received), fmt_int(s.lost),
            fmt_int(s.dup_late), fmt_int(s.drops), "n/a" if per100k is None else "%.3f" % per100k,
            100 * s.cpu / s.window, 100 * s.thread_cpu / s.window,
            verdict(s)))
    print()
    best = [s for s in steps if s.passed]
    if best:
        top = max(best, key=lambda s: s.rate)
        print("Highest zero-loss rate: %s packets/s (CPU %.3f s per 100,000 packets, %.1f%% of one core; "
              "receiver thread %.1f%%)." % (fmt_int(top.rate), 1e5 * top.cpu / top.received,
                                            100 * top.cpu / top.window, 100 * top.thread_cpu / top.window))
    else:
        print("Highest zero-loss rate: none of the rates tried.")
    short = [s for s in steps if s.zero_loss and not s.sender_on_schedule]
    if short:
        top = max(short, key=lambda s: s.sender["rate"])
        print("The sender fell short above that: %s packets/s were offered and all received "
              "(CPU %.3f s per 100,000 packets); the sender, which also carries the kernel's delivery "
              "to the exporter's socket, was the limit there." % (fmt_int(round(top.sender["rate"])),
                                                                  1e5 * top.cpu / top.received))
    print()
    print("Steps (sender: achieved rate, largest lag behind schedule, sendmmsg calls; kernel in the "
          "agent namespace: veth RX packets, UDP RcvbufErrors, socket drops per /proc/net/udp):")
    for s in steps:
        line = "- %s pps: " % fmt_int(s.rate)
        if s.sender:
            line += ("sender %.0f pps over %.3f s, lag max %.0f us, %s calls (largest batch %d), ENOBUFS %d, "
                     "CPU %.2f s" % (s.sender["rate"], s.sender["seconds"], s.sender["max_lag_us"],
                                     fmt_int(s.sender["sendmmsg_calls"]), s.sender["largest_batch"],
                                     s.sender["enobufs"], s.sender["cpu_seconds"]))
        if s.kernel:
            line += "; kernel: veth rx %s, UdpRcvbufErrors %s, socket drops %s" % (
                fmt_int(s.kernel.get("rx_packets")), fmt_int(s.kernel.get("UdpRcvbufErrors")),
                fmt_int(s.kernel.get("socket_drops")))
        if s.cpu is not None:
            line += "; exporter CPU %.2f s over %.2f s; 1-min load average %s (ours included)" % (s.cpu, s.window, s.load)
        if s.resets or s.unexpected:
            line += "; resets %d, unexpected %d" % (s.resets or 0, s.unexpected or 0)
        if s.note:
            line += "; note: " + s.note
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default=DEFAULT_RATES, help="comma-separated packets/s, rising")
    parser.add_argument("--seconds", type=float, default=5.0, help="sending time per rate (s)")
    parser.add_argument("--failures", type=int, default=2, help="stop after this many failing steps in a row")
    parser.add_argument("--batch", type=int, default=8, help="largest sendmmsg batch of the sender (1-64)")
    parser.add_argument("--cpus", default="", help="SENDER,EXPORTER: pin each to one CPU (default: not pinned)")
    parser.add_argument("--netprobe-binary", default=os.path.join(ROOT, ".build", "release", "netprobe_exporter"))
    parser.add_argument("--keep-logs", action="store_true", help="keep the config and logs")
    args = parser.parse_args()
    try:
        rates = [int(x) for x in args.rates.split(",") if x.strip()]
        if not rates or any(r <= 0 for r in rates):
            raise ValueError
    except ValueError:
        parser.error("--rates: comma-separated positive integers")
    args.cpu_pair = None
    if args.cpus:
        try:
            args.cpu_pair = [int(x) for x in args.cpus.split(",")]
            if len(args.cpu_pair) != 2 or any(c not in os.sched_getaffinity(0) for c in args.cpu_pair):
                raise ValueError
        except ValueError:
            parser.error("--cpus: two CPU numbers this process may use, e.g. 1,0")

    if os.geteuid() != 0:
        print("multicast_bench: needs root (ip netns add); run it as root. Nothing measured.")
        return 0
    for tool, package in (("ip", "iproute2"), ("ss", "iproute2")):
        if shutil.which(tool) is None:
            print("multicast_bench: `%s` is missing: apt-get install %s. Nothing measured." % (tool, package))
            return 0
    binary = os.path.abspath(args.netprobe_binary)
    if not os.access(binary, os.X_OK):
        print("multicast_bench: no binary at %s (build it: swift build -c release). Nothing measured." % binary)
        return 0
    stale = [n for n in _list_namespaces() if re.match(r"npbench-(\d+)-", n)
             and not os.path.exists("/proc/%s" % re.match(r"npbench-(\d+)-", n).group(1))]
    if stale:
        _log("note: namespaces left by an earlier, killed run: %s (remove with ip netns del NAME)" % ", ".join(stale))

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(cleanup)
    workdir = tempfile.mkdtemp(prefix="npmbench-")
    if not args.keep_logs:
        _tempdirs.append(workdir)

    steps = []
    ctx = {"workdir": workdir}
    try:
        sender, cc = build_sender(workdir)
        if sender is None:
            print("multicast_bench: cannot build the sender: %s. Nothing measured." % cc)
            return 0
        ctx["sender"] = sender
        ctx["send"], ctx["agent"] = build_namespaces()
        config = os.path.join(workdir, "netprobe.yml")
        with open(config, "w") as f:
            f.write("multicast:\n  - name: bench\n    group: %s\n    port: %d\n    interface: %s\n"
                    "    format: sequence\n    sequence: {offset: 0, width: 8, endianness: big}\n"
                    % (GROUP, PORT, AGENT_IF))
        ctx["stderr"] = os.path.join(workdir, "exporter.log")
        sender_cpu, exporter_cpu = args.cpu_pair if args.cpu_pair else (None, None)
        ctx["sender_cpu"] = sender_cpu
        with open(ctx["stderr"], "wb") as err:
            ctx["exporter"] = start(ctx["agent"], [binary, "--config.file=" + config,
                                                   "--web.listen-address=127.0.0.1:0", "--log.level=info"],
                                    subprocess.DEVNULL, err, exporter_cpu)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ctx.get("port") is None:
            if ctx["exporter"].poll() is not None:
                print("multicast_bench: the exporter exited (%s): %s" % (ctx["exporter"].returncode, tail(ctx["stderr"])))
                return 0
            ctx["port"] = listening_port(ctx["stderr"])
            time.sleep(0.05)
        if ctx.get("port") is None:
            print("multicast_bench: the exporter never logged its port: %s" % tail(ctx["stderr"]))
            return 0
        while time.monotonic() < deadline:
            data = scrape(ctx["agent"], ctx["port"], timeout=5)
            if "error" not in data and data["values"]["membership"] == 1:
                break
            time.sleep(0.1)
        else:
            print("multicast_bench: membership never reached 1: %s" % tail(ctx["stderr"]))
            return 0
        # Warm-up: the first packet starts the sequence tracking; sequence numbers then run on.
        warm, error = send(sender, ctx["send"], 10000, 0.5, 0, sender_cpu, workdir, args.batch)
        if error:
            print("multicast_bench: warm-up failed: %s" % error)
            return 0
        wait_drained(ctx["agent"])
        first = warm["sent"]
        rmem = read_rmem_max(ctx["agent"])
        rb = socket_buffer(ctx["agent"])
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
        ctx["info"] = ("Exporter %s; its socket's receive buffer: rb %s bytes in `ss -m` (twice the 8 MiB it asks with "
                       "SO_RCVBUFFORCE; net.core.rmem_max in the namespace is %s); sender built with %s, "
                       "batches of at most %d." % (version[0] if version else "?", fmt_int(rb), fmt_int(rmem),
                                                   os.path.basename(cc), args.batch))
        failures = 0
        for rate in rates:
            _log("multicast_bench: %s packets/s for %g s ..." % (fmt_int(rate), args.seconds))
            step = Step(rate)
            first = run_step(step, ctx, args, first)
            steps.append(step)
            _log("  sent %s, received %s, lost %s, drops %s, CPU %s" % (
                fmt_int(step.sent), fmt_int(step.received), fmt_int(step.lost), fmt_int(step.drops),
                "n/a" if step.cpu is None else "%.2f s" % step.cpu))
            failures = 0 if step.passed else failures + 1
            if failures >= args.failures:
                break
        ctx["rss"] = peak_rss_mib(ctx["exporter"].pid)
    except KeyboardInterrupt:
        _log("multicast_bench: interrupted; cleaning up")
        cleanup()
        if steps:
            report(steps, args, ctx)
        return 130
    finally:
        cleanup()
    report(steps, args, ctx)
    if args.keep_logs:
        print("\nlogs and config kept in %s" % workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
