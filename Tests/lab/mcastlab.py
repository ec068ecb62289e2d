"""Multicast in the network lab: r1 as the fabric between the target (the senders) and the
agent, a test stream sent from the target namespace, and nftables drops of multicast at the
agent.

Two fabrics carry a stream from the target's link to the agent's:

- a switch (`start_switch`, the default): r1's two links become ports of a Linux bridge with
  IGMP/MLD snooping, usually with its own querier. The agent's port floods no unregistered
  multicast, so a group reaches the agent only after the agent joined it, as behind a real
  snooping switch. It needs no multicast routing in the kernel.
- a router (`start_igmpproxy`): igmpproxy in r1 forwards from its "target" link to its
  "agent" link once the agent joins. It needs a kernel with multicast routing
  (CONFIG_IP_MROUTE); where there is none, the test is skipped with that reason.

Either way the stream leaves the target namespace on its link to r1 (198.18.3.2) and the
agent sees it from the source it was sent from. Everything started here is a process of the
lab (`lab.popen`), ended by the lab's cleanup; the bridge and the nftables tables live in lab
namespaces and go with them.
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
TARGET_ON_R1_V6 = "2001:db8:3::2"
SWITCH = "br0"
SWITCH_ADDRESS = "198.18.1.1"   # the switch's querier source: r1's address on the agent's link
AGENT_ON_R1 = "198.18.1.2"
TABLE = "netprobe_mlab"
COUNT_TABLE = "netprobe_mcount"


def multicast_routing_missing():
    """Why this kernel cannot run a multicast router (igmpproxy), or None when it can."""
    if not os.path.exists("/proc/net/ip_mr_vif"):
        return "kernel has no multicast routing (CONFIG_IP_MROUTE)"
    return None


def start_igmpproxy(test, lab, router=1):
    """igmpproxy in router `router`, forwarding from its "target" link to its "agent" link;
    returns the process once its virtual interfaces exist. Skips `test` on a kernel without
    multicast routing, where igmpproxy exits at once."""
    missing = multicast_routing_missing()
    if missing:
        test.skipTest(missing)
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


def _centiseconds(seconds):
    """The bridge's timers are set in USER_HZ ticks (1/100 s)."""
    return str(int(round(seconds * 100)))


def start_switch(test, lab, querier=True, igmp_version=3, mld_version=2, query_interval=1.0,
                 response_interval=0.5, membership_interval=None, querier_interval=None):
    """Make r1 an IGMP/MLD snooping switch: its "agent" and "target" links become ports of
    bridge br0 (their routed addresses go; br0 takes 198.18.1.1/30 and 2001:db8:1::1/64 as
    its querier's source), and the agent's port gets only the groups joined behind it.

    querier: whether the bridge queries itself (IGMP `igmp_version`, MLD `mld_version`, every
    `query_interval` seconds with `response_interval` as the maximum response time). With
    it, this returns once a group the agent joins is forwarded to it. Without it (or before
    `set_switch_querier(lab, True)`), nothing is forwarded to the agent unless another
    querier is heard. `membership_interval` and `querier_interval` (seconds) shorten how long
    the bridge keeps a membership after the last report and another querier after its last
    query."""
    options = ["mcast_snooping", "1", "mcast_querier", "0", "mcast_query_use_ifaddr", "1",
               "mcast_igmp_version", str(igmp_version), "mcast_mld_version", str(mld_version),
               "mcast_query_interval", _centiseconds(query_interval),
               "mcast_startup_query_interval", _centiseconds(query_interval),
               "mcast_query_response_interval", _centiseconds(response_interval)]
    if membership_interval is not None:
        options += ["mcast_membership_interval", _centiseconds(membership_interval)]
    if querier_interval is not None:
        options += ["mcast_querier_interval", _centiseconds(querier_interval)]
    script = (f"set -e\n"
              f"ip link add {SWITCH} type bridge {' '.join(options)}\n"
              "ip addr flush dev agent\n"
              "ip addr flush dev target\n"
              f"ip link set agent master {SWITCH}\n"
              f"ip link set target master {SWITCH}\n"
              "bridge link set dev agent mcast_flood off\n"
              f"ip addr add {SWITCH_ADDRESS}/30 dev {SWITCH}\n"
              f"ip addr add 2001:db8:1::1/64 dev {SWITCH} nodad\n"
              f"ip link set {SWITCH} up\n")
    result = lab.run("r1", ["sh", "-c", script])
    if result.returncode != 0 and "Unknown device type" in result.stderr:
        test.skipTest("kernel has no Linux bridge (CONFIG_BRIDGE)")
    if result.returncode != 0:
        raise AssertionError(f"building the switch failed: {result.stderr.strip()}")
    if querier:
        set_switch_querier(lab, True)
        wait_until_switch_forwards(lab)


def set_switch_querier(lab, on):
    """Turn the switch's own querier on or off. It is turned on only after the bridge has
    its timers: the bridge waits one maximum response time from this moment before it
    trusts its membership table (a querier set in `ip link add` would wait the default
    10 s, whatever the response interval given beside it)."""
    result = lab.run("r1", ["ip", "link", "set", SWITCH, "type", "bridge", "mcast_querier", "1" if on else "0"])
    if result.returncode != 0:
        raise AssertionError(f"switch querier: {result.stderr.strip()}")


def set_switch_port(lab, port, forwarding):
    """Stop (or resume) the switch forwarding anything through one of its ports ("agent" or
    "target"), without taking the link down under the hosts."""
    result = lab.run("r1", ["bridge", "link", "set", "dev", port, "state", "3" if forwarding else "0"])
    if result.returncode != 0:
        raise AssertionError(f"switch port {port}: {result.stderr.strip()}")


# A receiver that joins a group on the agent's link and exits after its first datagram.
FIRST_DATAGRAM = """
import socket, sys
group, port, address = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((group, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(address))
s.settimeout(15)
s.recv(2048)
print("received", flush=True)
"""


def wait_until_switch_forwards(lab, timeout=15):
    """Wait until the switch forwards a group joined behind the agent's port: a probe group
    (239.255.77.77) joined in the agent and sent from the target until one datagram arrives.
    Sleeping instead would guess at the bridge's start-up, which differs between kernels."""
    receiver = lab.popen("agent", ["python3", "-c", FIRST_DATAGRAM, "239.255.77.77", "5999", AGENT_ON_R1],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = start_sender(lab, "239.255.77.77", 5999, "raw", rate=50)
    try:
        out, err = receiver.communicate(timeout=timeout + 5)
        if "received" not in out:
            raise AssertionError(f"the switch forwarded nothing to the agent within {timeout}s: {err.strip()}")
    finally:
        stop_process(sender)
        sender.communicate()


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
