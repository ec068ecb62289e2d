"""Multicast in the network lab: igmpproxy in a router as the multicast router, a test
stream sent from the target namespace, and nftables drops of multicast at the agent.

The stream leaves the target namespace on its link to r1 (198.18.3.2), igmpproxy in r1
forwards it (upstream "target", downstream "agent") once the agent joins on its interface
"r1", so the agent sees it from the source it was sent from. Everything started here is a
process of the lab (`lab.popen`), ended by the lab's cleanup; the nftables table lives in a
lab namespace and goes with it.
"""
import json
import os
import re
import signal
import subprocess
import time

from harness import require_tool, temporary_directory, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "mcast_sender.py")
TARGET_ON_R1 = "198.18.3.2"
TABLE = "netprobe_mlab"
COUNT_TABLE = "netprobe_mcount"


def start_igmpproxy(test, lab, router=1):
    """igmpproxy in router `router`, forwarding from its "target" link to its "agent" link;
    returns the process once its virtual interfaces exist."""
    directory = temporary_directory(test)
    conf = os.path.join(directory, "igmpproxy.conf")
    with open(conf, "w") as f:
        f.write("quickleave\n"
                "phyint target upstream ratelimit 0 threshold 1\n"
                "  altnet 198.18.0.0/15\n"
                "phyint agent downstream ratelimit 0 threshold 1\n"
                "phyint lo disabled\n")
    binary = require_tool(test, "igmpproxy")
    process = lab.popen(f"r{router}", [binary, "-n", "-d", conf],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def vifs():
        if process.poll() is not None:
            raise AssertionError(f"igmpproxy exited with {process.returncode}")
        table = lab.run(f"r{router}", ["cat", "/proc/net/ip_mr_vif"]).stdout
        return len(table.strip().splitlines()) >= 3  # header and two interfaces
    wait_for(vifs, timeout=10, what="igmpproxy's virtual interfaces")
    return process


def stop_process(process, timeout=5):
    """SIGTERM one lab process (by its PID) and wait for it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)


def start_sender(lab, group, port, fmt, rate=200, count=0, bind=None, **faults):
    """mcast_sender.py in the target namespace. `faults` are its options without dashes
    (skip="10,11", duplicate="20", swap="30", ssrc_change="40", cc_error="50", start=N)."""
    argv = ["python3", SENDER, "--group", group, "--port", port, "--interface-address", TARGET_ON_R1,
            "--format", fmt, "--rate", rate, "--count", count]
    if bind:
        argv += ["--bind", bind]
    for name, value in faults.items():
        argv += ["--" + name.replace("_", "-"), value]
    return lab.popen("target", argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sender_report(process, timeout=60):
    """Wait for a sender with a count to finish (or stop one without) and return its stats."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    if process.returncode not in (0, -signal.SIGTERM):
        raise AssertionError(f"sender failed: {err}")
    return json.loads(out.strip().splitlines()[-1])


def drop_multicast(lab, percent, ns="agent"):
    """Drop `percent` of the UDP datagrams to 239.0.0.0/8 arriving in `ns` (0 removes the drop)."""
    lab.run(ns, ["nft", "delete", "table", "inet", TABLE])
    if percent == 0:
        return
    rule = "drop" if percent >= 100 else f"numgen random mod 100 < {percent} drop"
    script = (f"table inet {TABLE} {{\n"
              "  chain input {\n"
              "    type filter hook prerouting priority -300; policy accept;\n"
              f"    ip daddr 239.0.0.0/8 meta l4proto udp {rule}\n"
              "  }\n"
              "}\n")
    result = lab.run(ns, ["nft", "-f", "-"], input=script)
    if result.returncode != 0:
        raise AssertionError(f"nft: {result.stderr}")


def count_arrivals(lab, counters, ns="agent"):
    """nftables counters of what arrives in `ns` before anything else sees it (ahead of
    `drop_multicast`'s drop and of every socket): {name: match}, e.g.
    {"other": "ip saddr 198.18.3.2 ip daddr 239.2.2.2 udp dport 5002"}. Read with `arrivals`."""
    lines = [f"table inet {COUNT_TABLE} {{"]
    lines += [f"  counter {name} {{}}" for name in counters]
    lines += ["  chain input {", "    type filter hook prerouting priority -310; policy accept;"]
    lines += [f"    {match} counter name {name}" for name, match in counters.items()]
    lines += ["  }", "}", ""]
    result = lab.run(ns, ["nft", "-f", "-"], input="\n".join(lines))
    if result.returncode != 0:
        raise AssertionError(f"nft: {result.stderr}")


def arrivals(lab, name, ns="agent"):
    """Packets counted so far by the `count_arrivals` counter `name`."""
    result = lab.run(ns, ["nft", "list", "counter", "inet", COUNT_TABLE, name])
    match = re.search(r"packets (\d+)", result.stdout)
    if result.returncode != 0 or not match:
        raise AssertionError(f"nft counter {name}: {result.stderr or result.stdout}")
    return int(match.group(1))


def kernel_groups(lab, ns="agent"):
    """The agent's /proc/net/igmp as text, for failure messages."""
    return lab.run(ns, ["cat", "/proc/net/igmp"]).stdout


def series(exporter, family, name, metrics=None, **labels):
    """The value of `family` for the series of group `name` (and any other labels given)."""
    wanted = [f'name="{name}"'] + [f'{key}="{value}"' for key, value in labels.items()]
    for text, value in exporter.samples(family, metrics).items():
        if all(w in text for w in wanted):
            return value
    return None


def wait_series(exporter, family, name, predicate, timeout=20, **labels):
    return wait_for(lambda: (v := series(exporter, family, name, **labels)) is not None and predicate(v) and (v,),
                    timeout=timeout, what=f"{family}{{name={name}}}")[0]


# A plain receiver joined to a group on an interface address, counting datagrams until
# SIGTERM, then printing the count: "another program" on the agent's host.
OTHER_RECEIVER = """
import signal, socket, sys
group, port, address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("", port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(address))
count = 0
signal.signal(signal.SIGTERM, lambda *_: (print(count, flush=True), sys.exit(0)))
while True:
    s.recv(2048)
    count += 1
"""


# A program holding a UDP port with SO_REUSEPORT alone (as some receivers do), printing
# "bound" once it is; it runs until SIGTERM.
PORT_HOLDER = """
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("", int(sys.argv[1])))
print("bound", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.pause()
"""


def start_capture(test, lab, ns, interface, expression):
    """tcpdump in `ns` on `interface`, writing text to a file; returns (process, path)."""
    path = os.path.join(temporary_directory(test), "capture.txt")
    out = open(path, "w")
    test.addCleanup(out.close)
    process = lab.popen(ns, ["tcpdump", "-l", "-n", "-v", "-i", interface, expression],
                        stdout=out, stderr=subprocess.PIPE)
    # tcpdump says "listening on" once its capture runs.
    wait_for(lambda: b"listening on" in process.stderr.read1(4096), timeout=10, what="tcpdump to start")
    return process, path


def capture_text(capture, settle=0.5):
    """Stop a capture (by PID) and return what it printed."""
    process, path = capture
    time.sleep(settle)
    stop_process(process)
    with open(path) as f:
        return f.read()
