"""The project's network lab: four network namespaces wired as two parallel paths to a target
that answers on many addresses, built with `ip`, `nft` and /proc/sys writes (stdlib only).

    agent ──198.18.1.0/30, 2001:db8:1::/64── r1 ──198.18.3.0/30, 2001:db8:3::/64── target
      └────198.18.2.0/30, 2001:db8:2::/64── r2 ──198.18.4.0/30, 2001:db8:4::/64─────┘

Router ends are .1 / ::1: agent–r1 198.18.1.0/30 (r1 .1, agent .2) and 2001:db8:1::/64, agent–r2
198.18.2.0/30 and 2001:db8:2::/64, r1–target 198.18.3.0/30 (r1 .1, target .2) and
2001:db8:3::/64, r2–target 198.18.4.0/30 and 2001:db8:4::/64. Interfaces are named after the
namespace at the other end ("r1", "r2" in the agent; "agent", "target" in the routers; "r1",
"r2" in the target). The target carries `targets` addresses of each family on its `lo`:
198.19.0.1, 198.19.0.2 … (254 per /24, skipping .0 and .255) and 2001:db8:99::1, ::2 … (hex).
The agent reaches 198.19.0.0/16 and 2001:db8:99::/64 through r1, or r2 after `use_router(2)`;
the target answers through r1 for 198.18.1.0/24 and 2001:db8:1::/64 and through r2 for
198.18.2.0/24 and 2001:db8:2::/64, so replies follow the agent's choice. No namespace has a
default route: nothing leaves the lab. IPv6 duplicate address detection is off, reverse-path
filtering is off, the routers forward.

    with Lab(targets=20) as lab:                # or: lab = Lab.for_test(self, targets=20)
        lab.run("agent", ["ping", "-c", "1", lab.target_v4(0)])
        lab.drop(lab.target_v4(1), 50)          # nftables in the target: 50% of echo requests
        lab.use_router(2)

Everything the lab creates (namespaces, /etc/netns/<ns>/, processes from `popen`) is removed by
`close()`: from the context manager, from `for_test`'s cleanup, at interpreter exit (atexit),
and on SIGTERM/SIGHUP (turned into KeyboardInterrupt when no other handler is installed).
"""
import atexit
import ipaddress
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import threading
import time

NAMESPACES = ("agent", "r1", "r2", "target")
TABLE = "netprobe_lab"
NETNS_ETC = "/etc/netns"
TARGET_V4_BASE = (198, 19)
TARGET_V6_PREFIX = "2001:db8:99::"
PER_SLASH24 = 254
MAX_TARGETS = PER_SLASH24 * 256
INSTALL_HINT = "`make test` installs it (scripts/install-deps.sh test)"

# Each veth link: its number N (198.18.N.0/30, 2001:db8:N::/64) and its two (namespace,
# interface) ends; the first end, always a router, gets .1 and ::1, the second .2 and ::2.
LINKS = (
    (1, ("r1", "agent"), ("agent", "r1")),
    (2, ("r2", "agent"), ("agent", "r2")),
    (3, ("r1", "target"), ("target", "r1")),
    (4, ("r2", "target"), ("target", "r2")),
)

_live_labs = set()
_live_lock = threading.Lock()
_handlers_installed = False


def target_v4(index):
    """The IPv4 address of target `index` (0-based): 0 → 198.19.0.1, 253 → 198.19.0.254,
    254 → 198.19.1.1, …"""
    if not 0 <= index < MAX_TARGETS:
        raise IndexError(f"target index {index} out of range 0…{MAX_TARGETS - 1}")
    third, fourth = divmod(index, PER_SLASH24)
    return f"{TARGET_V4_BASE[0]}.{TARGET_V4_BASE[1]}.{third}.{fourth + 1}"


def target_v6(index):
    """The IPv6 address of target `index` (0-based): 0 → 2001:db8:99::1, 9 → 2001:db8:99::a."""
    if not 0 <= index < MAX_TARGETS:
        raise IndexError(f"target index {index} out of range 0…{MAX_TARGETS - 1}")
    return str(ipaddress.IPv6Address(TARGET_V6_PREFIX) + index + 1)


def _proc_sys_script(settings):
    """A /bin/sh script that writes {sysctl.key: value} through /proc/sys (no procps needed);
    run inside a namespace it sets that namespace's values."""
    lines = ["set -e"]
    for key, value in settings.items():
        path = "/proc/sys/" + key.replace(".", "/")
        lines.append(f"printf '%s\\n' {shlex.quote(str(value))} > {shlex.quote(path)}")
    return "\n".join(lines) + "\n"


def _close_all_live():
    with _live_lock:
        labs = list(_live_labs)
    for lab in labs:
        try:
            lab.close()
        except Exception:  # noqa: BLE001 — a safety net must try every lab
            pass


def _on_signal(number, _frame):
    # Back to the default so a second signal ends the process at once, then unwind: finally
    # blocks, test cleanups, atexit (which closes any lab still open).
    signal.signal(number, signal.SIG_DFL)
    raise KeyboardInterrupt(f"signal {number}")


def _install_safety_net():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_close_all_live)
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(number) == signal.SIG_DFL:
                signal.signal(number, _on_signal)


class LabError(RuntimeError):
    """A command that builds or changes the lab failed."""


class Lab:
    """The four-namespace lab (see the module docstring for the addresses).

    Lab(targets=N) builds it at once (N target addresses of each family on the target's lo,
    up to 65,024); use it as a context manager or through `Lab.for_test(testcase)`, which
    removes it in the test's cleanup. Namespace names are `<prefix>-<role>` with prefix
    `np<pid><4 hex>`; methods take the role ("agent", "r1", "r2", "target") or the full name.
    """

    _availability = None
    # The namespaces' roles; a lab of another shape (ecmplab.EcmpLab) names its own.
    ROLES = NAMESPACES

    # ---- availability ------------------------------------------------------------------------

    @classmethod
    def available(cls):
        """(True, "") when the lab can be built here: root, `ip netns` creates a namespace,
        `nft` is installed; otherwise (False, reason). Cached after the first call."""
        if cls._availability is None:
            cls._availability = cls._check_available()
        return cls._availability

    @staticmethod
    def _check_available():
        if os.geteuid() != 0:
            return False, "the network lab needs root (network namespaces, nftables)"
        for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("setpriv", "util-linux")):
            if not shutil.which(tool):
                return False, f"`{tool}` ({package}) is missing; {INSTALL_HINT}"
        probe = f"np{os.getpid()}{secrets.token_hex(2)}-probe"
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if made.returncode != 0:
            return False, f"`ip netns add` fails: {made.stderr.strip()}"
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        return True, ""

    @classmethod
    def require(cls, testcase):
        """Skip `testcase` when not root; fail it (naming the install step) when root but a
        tool is missing or namespaces cannot be made."""
        ok, reason = cls.available()
        if ok:
            return
        if os.geteuid() != 0:
            testcase.skipTest(reason)
        testcase.fail(reason if INSTALL_HINT in reason else f"{reason}; {INSTALL_HINT}")

    @classmethod
    def for_test(cls, testcase, **kwargs):
        """`require(testcase)`, then a Lab(**kwargs) that `testcase.addCleanup` removes."""
        cls.require(testcase)
        lab = cls(**kwargs)
        testcase.addCleanup(lab.close)
        return lab

    # ---- building ----------------------------------------------------------------------------

    def __init__(self, targets=4):
        """Build the lab with `targets` addresses of each family on the target's lo."""
        if not 0 <= targets <= MAX_TARGETS:
            raise ValueError(f"targets must be 0…{MAX_TARGETS}")
        self.targets = targets
        self.prefix = f"np{os.getpid()}{secrets.token_hex(2)}"
        self.router = 1
        self.build_seconds = None
        self.stop_timeout = 5.0      # seconds between SIGTERM and SIGKILL in close()
        self._created = []           # full namespace names, in creation order
        self._etc_dirs = []          # /etc/netns/<ns> directories we made
        self._made_netns_etc = False
        self._processes = []
        self._drops = {}             # canonical address → percent
        self._unreachable = {}       # router role → set of canonical addresses
        self._tables = set()         # roles whose nftables table exists
        self._closed = False
        _install_safety_net()
        with _live_lock:
            _live_labs.add(self)
        started = time.monotonic()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - started

    def ns(self, role):
        """The full namespace name of a role ("agent", "r1", "r2", "target"); a full name
        passes through."""
        if role in self.ROLES:
            return f"{self.prefix}-{role}"
        if role.startswith(self.prefix + "-"):
            return role
        raise ValueError(f"unknown namespace {role!r}: expected one of {self.ROLES}")

    @property
    def namespaces(self):
        """The full names of the lab's namespaces."""
        return [self.ns(role) for role in self.ROLES]

    def _ip_batch(self, commands, netns=None):
        argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True), "\n".join(commands) + "\n"

    @staticmethod
    def _finish(started, what):
        """Wait for [(Popen, input)] started together; raise LabError naming `what` if any
        failed."""
        errors = []
        for process, data in started:
            out, err = process.communicate(data, timeout=120)
            if process.returncode != 0:
                errors.append(f"{' '.join(process.args)}: exit {process.returncode}: {(err or out).strip()}")
        if errors:
            raise LabError(f"{what} failed: " + "; ".join(errors))

    def _build(self):
        # 1. namespaces (one `ip` process). They are recorded first so close() removes even
        #    a half-built lab.
        self._created = list(self.namespaces)
        self._finish([self._ip_batch([f"netns add {name}" for name in self._created])], "creating namespaces")
        # 2. sysctls before any link exists, so `default` covers the veths: no DAD, no
        #    reverse-path filter, forwarding on the routers.
        common = {
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_dad": 0,
            "net.ipv6.conf.default.router_solicitations": 0,
        }
        router = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
        started = []
        for role in NAMESPACES:
            settings = dict(common, **(router if role in ("r1", "r2") else {}))
            started.append((subprocess.Popen(["ip", "netns", "exec", self.ns(role), "sh", "-s"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True),
                            _proc_sys_script(settings)))
        self._finish(started, "setting sysctls")
        # 3. veth pairs, created directly inside their namespaces (nothing appears on the host).
        links = []
        for number, (ns_a, if_a), (ns_b, if_b) in LINKS:
            # Distinct ifindexes at the two ends: a veth whose peer has its own ifindex (same
            # number, other namespace) gets its carrier-up event delayed by ~1 s (linkwatch
            # treats only iflink != ifindex as urgent), and IPv6 stays unusable meanwhile.
            links.append(f"link add {if_a} index {10 * number} netns {self.ns(ns_a)} type veth"
                         f" peer name {if_b} index {10 * number + 1} netns {self.ns(ns_b)}")
        self._finish([self._ip_batch(links)], "creating veth links")
        # 4. addresses, links up, routes: one `ip -n NS -batch` per namespace, in parallel.
        per_ns = {role: ["link set lo up"] for role in NAMESPACES}
        for number, (ns_a, if_a), (ns_b, if_b) in LINKS:
            for (role, ifname), host in (((ns_a, if_a), 1), ((ns_b, if_b), 2)):
                per_ns[role] += [f"addr add 198.18.{number}.{host}/30 dev {ifname}",
                                 f"addr add 2001:db8:{number}::{host}/64 dev {ifname} nodad",
                                 f"link set {ifname} up"]
        per_ns["agent"] += self._agent_routes(1, "add")
        for number, role in ((3, "r1"), (4, "r2")):
            per_ns[role] += [f"route add 198.19.0.0/16 via 198.18.{number}.2",
                             f"route add 2001:db8:99::/64 via 2001:db8:{number}::2"]
        per_ns["target"] += ["route add 198.18.1.0/24 via 198.18.3.1",
                             "route add 198.18.2.0/24 via 198.18.4.1",
                             "route add 2001:db8:1::/64 via 2001:db8:3::1",
                             "route add 2001:db8:2::/64 via 2001:db8:4::1"]
        for index in range(self.targets):
            per_ns["target"].append(f"addr add {target_v4(index)}/32 dev lo")
        for index in range(self.targets):
            per_ns["target"].append(f"addr add {target_v6(index)}/128 dev lo nodad")
        self._finish([self._ip_batch(commands, self.ns(role)) for role, commands in per_ns.items()],
                     "addressing the lab")
        self._wait_ready()
        # 5. an /etc/netns/<ns>/hosts for every namespace, present before any process starts,
        #    so set_hosts() later changes what already-running processes resolve.
        for role in NAMESPACES:
            self.set_hosts(role, {})

    def _wait_ready(self, timeout=10.0):
        """Wait until every veth has carrier (operstate UP) and a usable IPv6 link-local
        address: before that, IPv6 through the link fails."""
        deadline = time.monotonic() + timeout
        while True:
            pending = []
            for role in self.ROLES:
                links = subprocess.run(["ip", "-n", self.ns(role), "-o", "link", "show"],
                                       capture_output=True, text=True).stdout.splitlines()
                local = subprocess.run(["ip", "-n", self.ns(role), "-6", "-o", "addr", "show", "scope",
                                        "link"], capture_output=True, text=True).stdout.splitlines()
                for line in links:
                    name = line.split(":")[1].strip().split("@")[0]
                    if name == "lo":
                        continue
                    if "state UP" not in line:
                        pending.append(f"{role}/{name} not up")
                    elif not any(f" {name} " in f" {entry} " and "tentative" not in entry for entry in local):
                        pending.append(f"{role}/{name} has no IPv6 link-local address yet")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"lab links not ready after {timeout}s: {', '.join(pending)}")
            time.sleep(0.01)

    @staticmethod
    def _agent_routes(number, verb):
        return [f"route {verb} 198.19.0.0/16 via 198.18.{number}.1",
                f"route {verb} 2001:db8:99::/64 via 2001:db8:{number}::1"]

    # ---- addresses ---------------------------------------------------------------------------

    def target_v4(self, index):
        """IPv4 address of target `index` (0-based: 0 → 198.19.0.1); IndexError past `targets`."""
        self._check_index(index)
        return target_v4(index)

    def target_v6(self, index):
        """IPv6 address of target `index` (0-based: 0 → 2001:db8:99::1)."""
        self._check_index(index)
        return target_v6(index)

    def _check_index(self, index):
        if not 0 <= index < self.targets:
            raise IndexError(f"target index {index}: this lab has {self.targets} targets")

    def addresses(self, n=None, family=4):
        """The first `n` target addresses (all when None): family 4 or 6, or "both" for the
        IPv4 ones followed by the IPv6 ones. addresses(n)[i] == target_v4(i)."""
        n = self.targets if n is None else n
        if n > self.targets:
            raise IndexError(f"{n} addresses asked, this lab has {self.targets} targets")
        if family == "both":
            return self.addresses(n, 4) + self.addresses(n, 6)
        make = {4: target_v4, 6: target_v6}[family]
        return [make(index) for index in range(n)]

    # ---- running things inside ---------------------------------------------------------------

    def command(self, ns, argv, user=None):
        """The argv that runs `argv` inside namespace `ns` (as `user`, a name or uid, when
        given — through setpriv with that user's group and no supplementary groups)."""
        prefix = ["ip", "netns", "exec", self.ns(ns)]
        if user is not None:
            if isinstance(user, int) or str(user).isdigit():
                uid = int(user)
                try:
                    gid = pwd.getpwuid(uid).pw_gid
                except KeyError:
                    gid = uid
            else:
                entry = pwd.getpwnam(user)
                uid, gid = entry.pw_uid, entry.pw_gid
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return prefix + [str(a) for a in argv]

    def run(self, ns, argv, user=None, **kwargs):
        """subprocess.run of `argv` inside `ns`; defaults capture_output=True, text=True,
        timeout=60, check=False. Returns the CompletedProcess."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.command(ns, argv, user), **kwargs)

    def popen(self, ns, argv, user=None, **kwargs):
        """subprocess.Popen of `argv` inside `ns` (as `user` when given), in its own session;
        close() ends its process group: SIGTERM, then SIGKILL after `stop_timeout` (5 s).
        `ip netns exec` and setpriv exec in place, so `.pid` is the program's own PID."""
        kwargs.setdefault("start_new_session", True)
        process = subprocess.Popen(self.command(ns, argv, user), **kwargs)
        self._processes.append((process, kwargs["start_new_session"]))
        return process

    def _sh(self, ns, script):
        result = subprocess.run(["ip", "netns", "exec", self.ns(ns), "sh", "-s"], input=script,
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise LabError(f"in {ns}: {result.stderr.strip()}")

    def sysctl(self, ns, settings):
        """Write {key: value} sysctls (dotted names) inside namespace `ns`."""
        self._sh(ns, _proc_sys_script(settings))

    def _ip(self, ns, commands):
        self._finish([self._ip_batch(commands, self.ns(ns))], f"ip in {ns}")

    # ---- changing the lab --------------------------------------------------------------------

    def use_router(self, number):
        """Route the agent's traffic to the targets (both families) through r1 (1) or r2 (2)."""
        if number not in (1, 2):
            raise ValueError("router must be 1 or 2")
        self._ip("agent", self._agent_routes(number, "replace"))
        self.router = number

    def allow_unprivileged_ping(self, ns="agent"):
        """net.ipv4.ping_group_range = "0 2147483647" in `ns` (a new namespace has "1 0":
        datagram ICMP sockets, IPv4 and IPv6, fail with EACCES for everyone)."""
        self.sysctl(ns, {"net.ipv4.ping_group_range": "0 2147483647"})

    def icmp_ratelimit(self, router, milliseconds):
        """Set net.ipv4.icmp_ratelimit and net.ipv6.icmp.ratelimit on router 1, 2 (or "r1",
        "r2", or "both"): 0 lets every Time Exceeded / Unreachable through (the kernel's
        global icmp_msgs_per_sec=1000, burst 50, still applies); 1000 is the default."""
        roles = ("r1", "r2") if router == "both" else (router if isinstance(router, str) else f"r{router}",)
        for role in roles:
            if role not in ("r1", "r2"):
                raise ValueError(f"not a router: {router!r}")
            self.sysctl(role, {"net.ipv4.icmp_ratelimit": milliseconds,
                               "net.ipv6.icmp.ratelimit": milliseconds})

    def _nft(self, ns, script):
        result = subprocess.run(["ip", "netns", "exec", self.ns(ns), "nft", "-f", "-"], input=script,
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise LabError(f"nft in {ns} failed: {result.stderr.strip()}\n--- script ---\n{script}")

    def _target_table(self):
        if "target" in self._tables:
            return ""
        self._tables.add("target")
        return (f"table inet {TABLE} {{\n"
                "  map drop4 { type ipv4_addr : verdict; }\n"
                "  map drop6 { type ipv6_addr : verdict; }\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                "    icmp type echo-request ip daddr vmap @drop4\n"
                "    icmpv6 type echo-request ip6 daddr vmap @drop6\n"
                "  }\n"
                "}\n")

    @staticmethod
    def _canonical(address):
        parsed = ipaddress.ip_address(address)
        return str(parsed), parsed.version

    @staticmethod
    def _chain(address, version):
        return f"d{version}_" + address.replace(".", "_").replace(":", "_")

    def drop(self, address, percent):
        """Make the target drop `percent` (0–100, integer) of the ICMP/ICMPv6 echo requests to
        `address` (one address or a list, applied in one nft transaction). 100 is a plain
        drop, 0 is undrop. Replaces any earlier share for that address."""
        addresses = [address] if isinstance(address, str) else list(address)
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError("percent must be an integer 0…100")
        if percent == 0:
            return self.undrop(addresses)
        script = [self._target_table()]
        for item in addresses:
            canonical, version = self._canonical(item)
            chain = self._chain(canonical, version)
            rule = "drop" if percent == 100 else f"numgen random mod 100 < {percent} drop"
            if canonical not in self._drops:
                script.append(f"add chain inet {TABLE} {chain}")
                script.append(f"add element inet {TABLE} drop{version} {{ {canonical} : jump {chain} }}")
            else:
                script.append(f"flush chain inet {TABLE} {chain}")
            script.append(f"add rule inet {TABLE} {chain} {rule}")
        self._nft("target", "\n".join(script) + "\n")
        for item in addresses:
            self._drops[self._canonical(item)[0]] = percent

    def undrop(self, address):
        """Stop dropping echo requests to `address` (one or a list); unknown ones are ignored."""
        addresses = [address] if isinstance(address, str) else list(address)
        script = []
        for item in addresses:
            canonical, version = self._canonical(item)
            if canonical in self._drops:
                chain = self._chain(canonical, version)
                script.append(f"delete element inet {TABLE} drop{version} {{ {canonical} }}")
                script.append(f"delete chain inet {TABLE} {chain}")
        if script:
            self._nft("target", "\n".join(script) + "\n")
        for item in addresses:
            self._drops.pop(self._canonical(item)[0], None)

    def clear_drops(self):
        """Remove every drop set with `drop` (one nft transaction)."""
        self.undrop(list(self._drops))

    @property
    def drops(self):
        """{address: percent} of the drops in force."""
        return dict(self._drops)

    def count_echo_requests(self, role="r1", ttls=range(1, 9), iif="agent"):
        """Count, in router `role`, the ICMP and ICMPv6 echo requests that arrive from `iif`
        with each TTL / hop limit in `ttls`, as sent (prerouting: before the router
        decrements it or answers Time Exceeded). Read them with `echo_request_counts`."""
        table = f"{TABLE}_ttl"
        lines = [f"table inet {table} {{"]
        for ttl in ttls:
            lines += [f"  counter v4_{ttl} {{ }}", f"  counter v6_{ttl} {{ }}"]
        lines += ["  chain prerouting {", "    type filter hook prerouting priority -300; policy accept;"]
        for ttl in ttls:
            lines.append(f'    iifname "{iif}" icmp type echo-request ip ttl {ttl} counter name "v4_{ttl}"')
            lines.append(f'    iifname "{iif}" icmpv6 type echo-request ip6 hoplimit {ttl} counter name "v6_{ttl}"')
        lines += ["  }", "}"]
        self._nft(role, "\n".join(lines) + "\n")

    def echo_request_counts(self, role="r1"):
        """{(4 or 6, ttl): packets} of the counters `count_echo_requests` set up in `role`."""
        result = subprocess.run(["ip", "netns", "exec", self.ns(role), "nft", "-j", "list", "counters",
                                 "table", "inet", f"{TABLE}_ttl"], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise LabError(f"nft list counters in {role} failed: {result.stderr.strip()}")
        counts = {}
        for item in json.loads(result.stdout)["nftables"]:
            counter = item.get("counter")
            if counter:
                version, ttl = counter["name"][1:].split("_")
                counts[(int(version), int(ttl))] = counter["packets"]
        return counts

    def _router_table(self, role):
        if role in self._tables:
            return ""
        self._tables.add(role)
        return (f"table inet {TABLE} {{\n"
                "  set unreach4 { type ipv4_addr; }\n"
                "  set unreach6 { type ipv6_addr; }\n"
                "  chain forward {\n"
                "    type filter hook forward priority 0; policy accept;\n"
                "    ip daddr @unreach4 icmp type echo-request reject with icmp type host-unreachable\n"
                "    ip6 daddr @unreach6 icmpv6 type echo-request reject with icmpv6 type addr-unreachable\n"
                "  }\n"
                "}\n")

    def host_unreachable(self, address, router=1):
        """Make router `router` (1 or 2) answer echo requests to `address` with ICMP host
        unreachable (ICMPv6 address unreachable) instead of forwarding them. These errors
        are subject to the router's icmp_ratelimit."""
        role = f"r{router}"
        canonical, version = self._canonical(address)
        done = self._unreachable.setdefault(role, set())
        if canonical in done:
            return
        element = f"add element inet {TABLE} unreach{version} {{ {canonical} }}\n"
        self._nft(role, self._router_table(role) + element)
        done.add(canonical)

    def host_reachable(self, address, router=1):
        """Undo host_unreachable(address, router)."""
        role = f"r{router}"
        canonical, version = self._canonical(address)
        done = self._unreachable.get(role, set())
        if canonical not in done:
            return
        self._nft(role, f"delete element inet {TABLE} unreach{version} {{ {canonical} }}\n")
        done.discard(canonical)

    def set_hosts(self, ns, names):
        """Make {name: address or [addresses]} the /etc/hosts that processes in `ns` see
        (besides localhost). `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts;
        the lab creates that file at build and rewrites it in place (same inode, never shorter
        in one write), so processes already running see each change too."""
        directory = os.path.join(NETNS_ETC, self.ns(ns))
        if not os.path.isdir(NETNS_ETC):
            os.makedirs(NETNS_ETC, exist_ok=True)
            self._made_netns_etc = True
        if directory not in self._etc_dirs:
            os.makedirs(directory, exist_ok=True)
            self._etc_dirs.append(directory)
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for name, addresses in names.items():
            for address in [addresses] if isinstance(addresses, str) else addresses:
                lines.append(f"{ipaddress.ip_address(address)}\t{name}")
        data = ("\n".join(lines) + "\n").encode()
        path = os.path.join(directory, "hosts")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            old = os.fstat(fd).st_size
            if len(data) < old:  # pad with a comment instead of truncating first
                data += b"#" * (old - len(data) - 1) + b"\n"
            os.write(fd, data)
        finally:
            os.close(fd)

    # ---- cleanup -----------------------------------------------------------------------------

    def close(self):
        """Remove everything: processes (by process group / PID), namespaces (with their
        links, routes and nftables tables), /etc/netns/<ns>/. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_processes()
        finally:
            try:
                if self._created:
                    batch = "".join(f"netns del {name}\n" for name in self._created
                                    if os.path.exists(f"/run/netns/{name}"))
                    if batch:
                        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, capture_output=True,
                                       text=True, timeout=60)
                for directory in self._etc_dirs:
                    shutil.rmtree(directory, ignore_errors=True)
                if self._made_netns_etc:
                    try:
                        os.rmdir(NETNS_ETC)
                    except OSError:
                        pass  # not empty: someone else's namespaces use it
            finally:
                with _live_lock:
                    _live_labs.discard(self)

    def _stop_processes(self):
        def send(process, group, number):
            try:
                if group:
                    os.killpg(process.pid, number)
                elif process.poll() is None:
                    process.send_signal(number)
            except (ProcessLookupError, PermissionError):
                pass

        for process, group in self._processes:
            send(process, group, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process, group in self._processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            send(process, group, signal.SIGKILL)  # the leader, or children it left behind
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._processes.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = " closed" if self._closed else ""
        return f"<Lab {self.prefix} targets={self.targets} router=r{self.router}{state}>"
