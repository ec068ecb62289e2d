"""An ECMP lab: a Linux router with a multipath route in front of two next hops that both
reach the target, built with the same tools and cleanup as netlab.Lab (stdlib only).

    agent ──198.18.11.0/30── edge ──198.18.12.0/30── b1 ──198.18.14.0/30── target
                               └───198.18.13.0/30── b2 ──198.18.15.0/30─────┘

IPv6 alike (2001:db8:N::/64 for link N). Router ends are .1 / ::1 (edge towards the agent and
the branches, the branches towards the target), the other ends .2 / ::2. `edge` routes
198.19.0.0/16 and 2001:db8:99::/64 over both branches (`nexthop via b1 nexthop via b2`) with
`fib_multipath_hash_policy=1` (IPv4 and IPv6): it hashes the 5-tuple, so flows that differ
only in their ports may take different branches, while ICMP (no ports) takes one per address
pair. Both branches answer Time Exceeded from their address on the edge link (198.18.12.2,
198.18.13.2); the target answers through b1. The target's addresses are netlab's
(198.19.0.1…, 2001:db8:99::1…). No ICMP rate limit on the branches and the target; no
namespace has a default route.

    lab = EcmpLab.for_test(self, targets=2)     # skips with a reason if the kernel lacks a policy
    lab.branch_of("198.18.13.2")                # "b2"
"""
import json
import os
import subprocess

from netlab import TABLE, Lab, LabError, target_v4, target_v6

ECMP_ROLES = ("agent", "edge", "b1", "b2", "target")

# (number, (namespace, interface) of the .1 end, (namespace, interface) of the .2 end)
ECMP_LINKS = (
    (11, ("edge", "agent"), ("agent", "edge")),
    (12, ("edge", "b1"), ("b1", "edge")),
    (13, ("edge", "b2"), ("b2", "edge")),
    (14, ("b1", "target"), ("target", "b1")),
    (15, ("b2", "target"), ("target", "b2")),
)

HASH_POLICIES = ("net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy")


class EcmpLab(Lab):
    """The five-namespace ECMP lab (see the module docstring). Roles: agent, edge, b1, b2,
    target; `run`, `popen`, `sysctl`, `allow_unprivileged_ping` and cleanup are netlab.Lab's."""

    ROLES = ECMP_ROLES

    @classmethod
    def missing_feature(cls):
        """A one-line reason this kernel cannot build the lab (no 5-tuple multipath hash for
        a family), or None."""
        for key in HASH_POLICIES:
            if not os.path.exists("/proc/sys/" + key.replace(".", "/")):
                return f"this kernel has no {key} (IPv4 needs Linux 4.12, IPv6 5.3)"
        return None

    @classmethod
    def for_test(cls, testcase, **kwargs):
        cls.require(testcase)
        reason = cls.missing_feature()
        if reason:
            testcase.skipTest(reason)
        return super().for_test(testcase, **kwargs)

    # Addresses of the branches on the edge links: their Time Exceeded comes from there.
    BRANCHES = {"b1": ("198.18.12.2", "2001:db8:12::2"), "b2": ("198.18.13.2", "2001:db8:13::2")}
    EDGE = ("198.18.11.1", "2001:db8:11::1")

    def branch_of(self, address):
        """"b1" or "b2" for a branch's address, else None."""
        for name, addresses in self.BRANCHES.items():
            if address in addresses:
                return name
        return None

    def _build(self):
        self._created = list(self.namespaces)
        self._finish([self._ip_batch([f"netns add {name}" for name in self._created])], "creating namespaces")
        common = {
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_dad": 0,
            "net.ipv6.conf.default.router_solicitations": 0,
        }
        router = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1,
                  "net.ipv4.icmp_ratelimit": 0, "net.ipv6.icmp.ratelimit": 0}
        per_role = {
            "agent": common,
            "edge": dict(common, **router, **{key: 1 for key in HASH_POLICIES}),
            "b1": dict(common, **router),
            "b2": dict(common, **router),
            # The destination's Port Unreachable is rate-limited like any error.
            "target": dict(common, **{"net.ipv4.icmp_ratelimit": 0, "net.ipv6.icmp.ratelimit": 0}),
        }
        for role, settings in per_role.items():
            self.sysctl(role, settings)
        links = []
        for number, (ns_a, if_a), (ns_b, if_b) in ECMP_LINKS:
            links.append(f"link add {if_a} index {10 * number} netns {self.ns(ns_a)} type veth"
                         f" peer name {if_b} index {10 * number + 1} netns {self.ns(ns_b)}")
        self._finish([self._ip_batch(links)], "creating veth links")
        per_ns = {role: ["link set lo up"] for role in ECMP_ROLES}
        for number, (ns_a, if_a), (ns_b, if_b) in ECMP_LINKS:
            for (role, ifname), host in (((ns_a, if_a), 1), ((ns_b, if_b), 2)):
                per_ns[role] += [f"addr add 198.18.{number}.{host}/30 dev {ifname}",
                                 f"addr add 2001:db8:{number}::{host}/64 dev {ifname} nodad",
                                 f"link set {ifname} up"]
        per_ns["agent"] += ["route add 198.19.0.0/16 via 198.18.11.1",
                            "route add 2001:db8:99::/64 via 2001:db8:11::1"]
        per_ns["edge"] += ["route add 198.19.0.0/16 nexthop via 198.18.12.2 nexthop via 198.18.13.2",
                           "route add 2001:db8:99::/64 nexthop via 2001:db8:12::2 nexthop via 2001:db8:13::2"]
        for role, number in (("b1", 14), ("b2", 15)):
            edge_link = 12 if role == "b1" else 13
            per_ns[role] += [f"route add 198.19.0.0/16 via 198.18.{number}.2",
                             f"route add 2001:db8:99::/64 via 2001:db8:{number}::2",
                             f"route add 198.18.11.0/24 via 198.18.{edge_link}.1",
                             f"route add 2001:db8:11::/64 via 2001:db8:{edge_link}::1"]
        per_ns["target"] += ["route add 198.18.11.0/24 via 198.18.14.1",
                             "route add 2001:db8:11::/64 via 2001:db8:14::1"]
        for index in range(self.targets):
            per_ns["target"].append(f"addr add {target_v4(index)}/32 dev lo")
            per_ns["target"].append(f"addr add {target_v6(index)}/128 dev lo nodad")
        self._finish([self._ip_batch(commands, self.ns(role)) for role, commands in per_ns.items()],
                     "addressing the ECMP lab")
        self._wait_ready()
        for role in ECMP_ROLES:
            self.set_hosts(role, {})
        for key in HASH_POLICIES:
            path = "/proc/sys/" + key.replace(".", "/")
            value = self.run("edge", ["cat", path]).stdout.strip()
            if value != "1":
                raise LabError(f"{key} is {value!r} in the edge router, not 1")

    def count_udp_probes(self, addresses, ttls=range(1, 4)):
        """Count, in the edge router, the UDP probes (destination ports 33434–34457) that
        arrive from the agent for each of `addresses` with each TTL / hop limit in `ttls`, as
        sent (prerouting: before the edge decrements it). Read them with `udp_probe_counts`."""
        lines = [f"table inet {TABLE}_udp {{"]
        rules = []
        for number, address in enumerate(addresses):
            version = 6 if ":" in address else 4
            match = "ip ttl" if version == 4 else "ip6 hoplimit"
            for ttl in ttls:
                lines.append(f"  counter a{number}_{ttl} {{ }}")
                rules.append(f'    iifname "agent" ip{"" if version == 4 else "6"} daddr {address}'
                             f' udp dport 33434-34457 {match} {ttl} counter name "a{number}_{ttl}"')
        lines += ["  chain prerouting {", "    type filter hook prerouting priority -300; policy accept;"]
        lines += rules + ["  }", "}"]
        self._nft("edge", "\n".join(lines) + "\n")
        self._udp_counted = list(addresses)

    def udp_probe_counts(self):
        """{(address, ttl): packets} of the counters `count_udp_probes` set up."""
        result = subprocess.run(["ip", "netns", "exec", self.ns("edge"), "nft", "-j", "list", "counters",
                                 "table", "inet", f"{TABLE}_udp"], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise LabError(f"nft list counters in edge failed: {result.stderr.strip()}")
        counts = {}
        for item in json.loads(result.stdout)["nftables"]:
            counter = item.get("counter")
            if counter:
                number, ttl = counter["name"][1:].split("_")
                counts[(self._udp_counted[int(number)], int(ttl))] = counter["packets"]
        return counts

    def __repr__(self):
        return f"<EcmpLab {self.prefix}{' closed' if self._closed else ''}>"
