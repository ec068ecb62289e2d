"""The hardened systemd unit's system-call filter against what the exporter really calls.

deploy/systemd/netprobe_exporter.service allows `@system-service` minus `@privileged` and
`@resources` (SystemCallErrorNumber=EPERM): a call outside that set fails in production, on
a path no other test runs under systemd. This test runs the exporter under `strace -f` in
the lab with every engine busy (ping on raw and datagram sockets, path tracing, multicast
joins, beacons, the IGMP/MLD querier watch, a push to a closed port, scrapes plain and
gzipped, a reload, a clean stop) and checks every call it made against the unit's filter,
expanded by `systemd-analyze syscall-filter`.
"""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from harness import BINARY, ROOT, free_port, require_tool, temporary_directory, wait_for, write_config
from netlab import Lab

UNIT = os.path.join(ROOT, "deploy", "systemd", "netprobe_exporter.service")
CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_][a-z0-9_]*)(?:\(| resumed>)")


def syscall_groups(analyze):
    """{"@group": [members…]} from `systemd-analyze syscall-filter` (members may be groups)."""
    output = subprocess.run([analyze, "syscall-filter"], capture_output=True, text=True, timeout=30,
                            check=True).stdout
    groups, current = {}, None
    for line in output.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(names, groups):
    calls, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name.startswith("@"):
            todo.extend(groups.get(name, []))
        else:
            calls.add(name)
    return calls


def unit_filter():
    """(allowed, denied) group and call names of the unit's SystemCallFilter= lines."""
    allowed, denied = [], []
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SystemCallFilter="):
                value = line.split("=", 1)[1]
                (denied if value.startswith("~") else allowed).extend(value.lstrip("~").split())
    return allowed, denied


class SyscallFilterTest(unittest.TestCase):
    def test_every_system_call_the_exporter_makes_passes_the_units_filter(self):
        strace = require_tool(self, "strace")
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.skipTest("systemd-analyze is missing (Debian's systemd package)")
        groups = syscall_groups(analyze)
        allowed_names, denied_names = unit_filter()
        self.assertEqual(allowed_names, ["@system-service"], "the unit's filter changed: update this test")
        allowed = expand(allowed_names, groups) - expand(denied_names, groups)
        self.assertGreater(len(allowed), 200)

        lab = Lab.for_test(self, targets=2)
        lab.allow_unprivileged_ping()
        raw_target, dgram_target = lab.addresses(2)
        config = write_config(self, f"""\
defaults: {{interval: 200ms, timeout: 1s}}
targets:
  - name: raw
    host: "{raw_target}"
    socket: raw
    trace: {{enabled: true, interval: 2s, max_hops: 4}}
  - name: dgram
    host: "{dgram_target}"
    socket: dgram
    trace: {{enabled: true, interval: 2s, max_hops: 4}}
  - {{name: six, host: "{lab.target_v6(0)}", socket: auto}}
multicast:
  - {{name: any, group: 239.7.7.1, port: 5700, interface: r1, format: beacon}}
  - name: ssm
    group: 232.7.7.2
    port: 5701
    interface: r1
    sources: [198.18.3.2]
    format: rtp
  - name: v6
    group: "ff15::7"
    port: 5702
    interface: r1
    format: sequence
    sequence: {{offset: 0, width: 4}}
beacons:
  - {{name: mesh, group: 239.7.7.1, port: 5700, interface: r1, rate: 20}}
querier_watch:
  interfaces: [r1]
  protocols: [igmp, mld]
push: {{url: "http://127.0.0.1:{free_port()}", job: lab, interval: 1s, timeout: 500ms, gzip: true, delete_on_shutdown: true}}
""")
        directory = temporary_directory(self)
        trace = os.path.join(directory, "strace.out")
        log = open(os.path.join(directory, "exporter.log"), "w+")
        self.addCleanup(log.close)
        # `ip netns exec` and strace exec in place: the process started is strace itself; the
        # exporter is its child, whose PID the signals below go to.
        tracer = lab.popen("agent", [strace, "-f", "-q", "-o", trace, "--", BINARY,
                                     "--web.listen-address=127.0.0.1:0", f"--config.file={config}"],
                           stdout=subprocess.DEVNULL, stderr=log)

        def exporter_log():
            log.seek(0)
            return log.read()

        def exporter_pid():
            if tracer.poll() is not None:
                raise AssertionError(f"strace exited with {tracer.returncode}: {exporter_log()}")
            with open(f"/proc/{tracer.pid}/task/{tracer.pid}/children") as f:
                children = f.read().split()
            return int(children[0]) if children else None

        pid = wait_for(exporter_pid, timeout=20, what="the traced exporter")

        def port():
            match = re.search(r"msg=listening address=127\.0\.0\.1:(\d+)", exporter_log())
            return int(match.group(1)) if match else None

        port = wait_for(port, timeout=30, what="the traced exporter to listen")

        def scrape(*headers):
            argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
            for header in headers:
                argv += ["-H", header]
            return lab.run("agent", argv + [f"http://127.0.0.1:{port}/metrics"], timeout=30).stdout

        wait_for(lambda: scrape() == "200", timeout=30, what="a scrape")
        time.sleep(5)  # pings, two trace rounds, beacons sent and received, pushes that fail
        self.assertEqual(scrape("Accept-Encoding: gzip"), "200")
        os.kill(pid, signal.SIGHUP)
        time.sleep(1)
        self.assertEqual(scrape(), "200")
        os.kill(pid, signal.SIGTERM)
        tracer.wait(timeout=30)

        with open(trace, errors="replace") as f:
            lines = f.read().splitlines()
        calls = {match.group(1) for line in lines if (match := CALL.match(line))}
        self.assertTrue({"sendto", "recvmsg", "setsockopt", "socket"} <= calls, sorted(calls))
        self.assertTrue(any("IPPROTO_IGMP" in line for line in lines), "the querier watch did not run")
        self.assertTrue(any("MCAST_JOIN" in line for line in lines), "no multicast join was traced")
        outside = sorted(calls - allowed)
        self.assertEqual(outside, [], f"system calls outside {allowed_names} ~{denied_names}: "
                                      + "; ".join(next(l for l in lines if CALL.match(l) and CALL.match(l).group(1) == c)
                                                  for c in outside))
        self.assertTrue(any(line.endswith("+++ exited with 0 +++") and line.startswith(f"{pid} ") for line in lines),
                        "the exporter did not exit cleanly on SIGTERM")


if __name__ == "__main__":
    unittest.main()
