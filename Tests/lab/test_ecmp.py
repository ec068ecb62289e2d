"""ECMP behind a Linux router that hashes the 5-tuple (fib_multipath_hash_policy=1, IPv4 and
IPv6), in the ECMP lab (ecmplab.py): UDP probes with vary_flow find both branches at hop 2
within 10 rounds; UDP probes of one flow keep one branch, with no path change over 20
rounds; ICMP probes still trace the path (through one branch: ICMP has no ports to hash).
All targets run in one exporter, as nobody: UDP probes need no privilege."""
import sys
import time
import unittest

from ecmplab import EcmpLab
from harness import LabExporter, wait_for, write_config

TRACE = "interval: 1s, max_hops: 5, probes_per_hop: 3, confirm_rounds: 2"


def ecmp_config(targets):
    """targets: [(name, address, extra trace settings)]."""
    lines = ["defaults: {interval: 1s, timeout: 500ms}", "targets:"]
    for name, address, extra in targets:
        lines += [f"  - name: {name}", f"    host: \"{address}\"", f"    trace: {{{TRACE}, {extra}}}"]
    return "\n".join(lines) + "\n"


class EcmpLabTest(unittest.TestCase):
    @staticmethod
    def hops(exporter, metrics, target):
        """{hop number: sorted responders} of `target`'s confirmed path."""
        hops = {}
        for labels in exporter.samples("netprobe_path_hop_info", metrics):
            if f'target="{target}"' not in labels:
                continue
            hop = int(labels.split('hop="')[1].split('"')[0])
            hops.setdefault(hop, []).append(labels.split('responder="')[1].split('"')[0])
        return {hop: sorted(responders) for hop, responders in hops.items()}

    @staticmethod
    def value(exporter, metrics, family, target):
        for labels, value in exporter.samples(family, metrics).items():
            if f'target="{target}"' in labels:
                return value
        return None

    def test_udp_finds_both_branches_and_one_flow_keeps_one(self):
        lab = EcmpLab.for_test(self, targets=3)
        lab.allow_unprivileged_ping()
        families = {4: lab.target_v4, 6: lab.target_v6}
        targets = []
        for family, address in families.items():
            targets += [(f"varied{family}", address(0), "protocol: udp, vary_flow: true"),
                        (f"fixed{family}", address(1), "protocol: udp, vary_flow: false"),
                        (f"icmp{family}", address(2), "protocol: icmp, vary_flow: true")]
        fixed_addresses = {family: address(1) for family, address in families.items()}
        lab.count_udp_probes(list(fixed_addresses.values()), ttls=range(1, 4))
        exporter = LabExporter(self, lab, config=write_config(self, ecmp_config(targets)), user=65534)
        branches = {4: sorted(address for address, _ in EcmpLab.BRANCHES.values()),
                    6: sorted(address for _, address in EcmpLab.BRANCHES.values())}
        edge = dict(zip((4, 6), EcmpLab.EDGE))

        # vary_flow: both branches at hop 2 within 10 rounds (read from the same scrape).
        found = {}

        def both_branches():
            metrics = exporter.metrics()
            for family in families:
                name = f"varied{family}"
                if name in found:
                    continue
                if self.hops(exporter, metrics, name).get(2) == branches[family]:
                    found[name] = self.value(exporter, metrics, "netprobe_path_rounds_total", name)
            return len(found) == len(families)

        started = time.monotonic()
        wait_for(both_branches, timeout=25, what="both ECMP branches at hop 2 with vary_flow")
        for name, rounds in found.items():
            self.assertLessEqual(rounds, 10, f"{name}: both branches only after {rounds} rounds")

        # One flow: 20 rounds, one branch, no change.
        wait_for(lambda: all((exporter.target_value("netprobe_path_rounds_total", f"fixed{family}") or 0) >= 20
                             for family in families), timeout=40, what="20 rounds of the fixed flows")
        before = {family: exporter.target_value("netprobe_path_rounds_total", f"fixed{family}") for family in families}
        wire = lab.udp_probe_counts()
        metrics = exporter.metrics()
        # Every probe the rounds counted left: 3 per TTL per completed round (the round in
        # progress at the reading, 0 or 3) — no answer's pending error swallowed a send.
        for family, address in fixed_addresses.items():
            after = self.value(exporter, metrics, "netprobe_path_rounds_total", f"fixed{family}")
            for ttl in (1, 2, 3):
                packets = wire[(address, ttl)]
                self.assertGreaterEqual(packets, 3 * before[family], f"IPv{family} TTL {ttl}: {packets} for {before[family]} rounds")
                self.assertLessEqual(packets, 3 * (after + 1), f"IPv{family} TTL {ttl}: {packets} for {after} rounds")
        for family, address in families.items():
            varied, fixed, icmp = (f"{kind}{family}" for kind in ("varied", "fixed", "icmp"))
            self.assertEqual(self.hops(exporter, metrics, varied), {1: [edge[family]], 2: branches[family], 3: [address(0)]})
            fixed_hops = self.hops(exporter, metrics, fixed)
            self.assertEqual(fixed_hops[1], [edge[family]])
            self.assertEqual(len(fixed_hops[2]), 1, f"{fixed}: {fixed_hops}")
            self.assertIn(fixed_hops[2][0], branches[family])
            self.assertEqual(fixed_hops[3], [address(1)])
            self.assertEqual(self.value(exporter, metrics, "netprobe_path_changes_total", fixed), 0)
            self.assertEqual(self.value(exporter, metrics, "netprobe_path_hop_loss_ratio", fixed), 0)
            for name in (varied, fixed, icmp):
                self.assertEqual(self.value(exporter, metrics, "netprobe_path_destination_reached", name), 1, name)
            # ICMP still traces this path; a 5-tuple hasher sends all its probes one way.
            icmp_hops = self.hops(exporter, metrics, icmp)
            self.assertEqual(icmp_hops[1], [edge[family]])
            self.assertEqual(len(icmp_hops[2]), 1, f"{icmp}: {icmp_hops}")
            self.assertEqual(icmp_hops[3], [address(2)])
            self.assertEqual(self.value(exporter, metrics, "netprobe_path_changes_total", icmp), 0)
        # Every answer named its probe: none ignored as forged, garbled or ambiguous.
        unexpected = exporter.samples("netprobe_path_packets_unexpected_total", metrics)
        self.assertEqual(len(unexpected), 2 * 5, unexpected)
        self.assertEqual(sum(unexpected.values()), 0, unexpected)
        self.assertEqual(exporter.samples("netprobe_path_send_errors_total", metrics), {})
        print(f"\n  ECMP: both branches after {found} rounds; 20 rounds of one flow in"
              f" {time.monotonic() - started:.1f} s, one branch, 0 changes; UDP probes per (address, TTL)"
              f" on the wire {wire} for {before} rounds", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
