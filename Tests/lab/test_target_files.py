"""Targets from file_sd files (issue 15), end to end on loopback (127.0.0.x only): files
written, edited in place, swapped as Kubernetes swaps a ConfigMap, broken and deleted,
while an unchanged target's counters run on untouched."""
import json
import os
import re
import subprocess
import threading
import time
import unittest

from harness import BINARY, Exporter, temporary_directory, wait_for

SENT = "netprobe_ping_packets_sent_total"


def write_atomically(path, text):
    """As a generator should: a temporary name the pattern does not match, then rename."""
    temporary = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def groups(*entries):
    """file_sd JSON: entries are (targets, labels)."""
    return json.dumps([{"targets": list(targets), "labels": labels} for targets, labels in entries])


def config(directory, pattern, refresh="1h", extra=""):
    path = os.path.join(directory, "netprobe.yml")
    with open(path, "w") as f:
        f.write("defaults:\n  interval: 100ms\n  timeout: 500ms\n"
                "targets:\n  - {name: main, host: 127.0.0.1}\n"
                f"target_files:\n  - files: ['{pattern}']\n    refresh_interval: {refresh}\n{extra}")
    return path


def sent_by_target(metrics):
    """{target: packets sent} of every target in one scrape, with the labels of each."""
    values = {}
    for line in metrics.splitlines():
        if line.startswith(SENT + "{"):
            labels, value = line[len(SENT):].rsplit(" ", 1)
            target = re.search(r'target="([^"]*)"', labels).group(1)
            values[target] = (float(value), labels)
    return values


class Sampler:
    """Scrapes every 50 ms on a thread and keeps (time, packets sent) of one target, to see
    that its counter never goes back and never pauses across file changes."""

    def __init__(self, exporter, target):
        self.exporter = exporter
        self.target = target
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            entry = sent_by_target(self.exporter.metrics()).get(self.target)
            if entry:
                self.samples.append((time.monotonic(), entry[0]))
            time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        return self.samples


class TargetFilesTest(unittest.TestCase):
    def wait_targets(self, exporter, wanted, timeout=2.0):
        """Waits until the targets from files are exactly `wanted` (main aside), each probed."""
        def ready():
            current = sent_by_target(exporter.metrics())
            current.pop("main", None)
            # In a list, so that no target at all is an answer too.
            return set(current) == set(wanted) and all(value >= 1 for value, _ in current.values()) and [current]
        start = time.monotonic()
        result = wait_for(ready, timeout=timeout, interval=0.02, what=f"targets {sorted(wanted)} from files")
        return result[0], time.monotonic() - start

    def assert_never_went_back_or_paused(self, samples, what):
        self.assertGreater(len(samples), 20, what)
        last_increase = samples[0][0]
        for (t0, v0), (t1, v1) in zip(samples, samples[1:]):
            self.assertGreaterEqual(v1, v0, f"{what}: the counter went back from {v0} to {v1}")
            if v1 > v0:
                last_increase = t1
            # At 100 ms per probe, 600 ms without one is a pause.
            self.assertLess(t1 - last_increase, 0.6, f"{what}: no probe for {t1 - last_increase:.2f}s at {v1}")
        elapsed = samples[-1][0] - samples[0][0]
        sent = samples[-1][1] - samples[0][1]
        self.assertGreater(sent, elapsed / 0.1 * 0.8, f"{what}: {sent} probes in {elapsed:.1f}s at 100ms")

    def test_targets_appear_change_and_keep_counters(self):
        directory = temporary_directory(self)
        os.mkdir(os.path.join(directory, "targets"))
        path = os.path.join(directory, "targets", "lab.json")
        exporter = Exporter(self, config=config(directory, os.path.join(directory, "targets", "*.json")))
        write_atomically(path, groups((["127.0.0.2", "127.0.0.3"], {"role": "a"}), (["127.0.0.4"], {"role": "a"})))
        _, took = self.wait_targets(exporter, {"127.0.0.2", "127.0.0.3", "127.0.0.4"})
        self.assertLess(took, 2.0)
        wait_for(lambda: sent_by_target(exporter.metrics())["127.0.0.4"][0] >= 10, what="probes of 127.0.0.4")
        sampler = Sampler(exporter, "127.0.0.2")
        main_before = sent_by_target(exporter.metrics())["main"][0]
        time.sleep(1.0)
        relabelled_before = sent_by_target(exporter.metrics())["127.0.0.4"][0]
        # Edited in place (truncate, write, close): one added, one removed, one relabelled.
        with open(path, "w") as f:
            f.write(groups((["127.0.0.2"], {"role": "a"}), (["127.0.0.4"], {"role": "b"}), (["127.0.0.5"], {"role": "a"})))
        current, took = self.wait_targets(exporter, {"127.0.0.2", "127.0.0.4", "127.0.0.5"})
        self.assertLess(took, 2.0)
        wait_for(lambda: 'role="b"' in sent_by_target(exporter.metrics())["127.0.0.4"][1], timeout=2, what="the new label")
        relabelled = sent_by_target(exporter.metrics())["127.0.0.4"]
        self.assertGreaterEqual(relabelled[0], relabelled_before, "a relabelled target keeps its counters")
        time.sleep(1.5)
        samples = sampler.stop()
        self.assert_never_went_back_or_paused(samples, "127.0.0.2, unchanged")
        self.assertGreater(sent_by_target(exporter.metrics())["main"][0], main_before, "the configuration's target runs on")
        metrics = exporter.metrics()
        self.assertEqual(Exporter.value(metrics, f'netprobe_target_file_targets{{file="{path}"}}'), 3)
        self.assertEqual(Exporter.value(metrics, f'netprobe_target_file_errors_total{{file="{path}"}}'), 0)
        self.assertIsNotNone(Exporter.value(metrics, f'netprobe_target_file_last_read_timestamp_seconds{{file="{path}"}}'))
        self.assertNotIn("configuration reloaded", exporter.log(), "a file change reloads nothing")

    def test_kubernetes_configmap_symlink_swap(self):
        directory = temporary_directory(self)
        volume = os.path.join(directory, "volume")
        os.mkdir(volume)

        def publish(version, text):
            # What the kubelet does: a timestamped directory, a ..data_tmp symlink to it
            # renamed over ..data, the files themselves symlinks through ..data.
            data = os.path.join(volume, f"..2026_12_05_{version}")
            os.mkdir(data)
            with open(os.path.join(data, "targets.yml"), "w") as f:
                f.write(text)
            os.symlink(os.path.basename(data), os.path.join(volume, "..data_tmp"))
            os.replace(os.path.join(volume, "..data_tmp"), os.path.join(volume, "..data"))
            if not os.path.lexists(os.path.join(volume, "targets.yml")):
                os.symlink("..data/targets.yml", os.path.join(volume, "targets.yml"))
            for name in os.listdir(volume):
                if name.startswith("..2026") and name != os.path.basename(data):
                    subprocess.run(["rm", "-rf", os.path.join(volume, name)], check=True)

        publish("v1", "- targets: [127.0.0.2, 127.0.0.3]\n")
        exporter = Exporter(self, config=config(directory, os.path.join(volume, "*.yml")))
        self.wait_targets(exporter, {"127.0.0.2", "127.0.0.3"})
        before = sent_by_target(exporter.metrics())["127.0.0.2"][0]
        publish("v2", "- targets: [127.0.0.2, 127.0.0.6]\n")
        _, took = self.wait_targets(exporter, {"127.0.0.2", "127.0.0.6"})
        self.assertLess(took, 2.0)
        self.assertGreaterEqual(sent_by_target(exporter.metrics())["127.0.0.2"][0], before)

    def test_broken_file_keeps_its_targets_and_a_deleted_one_takes_them(self):
        directory = temporary_directory(self)
        path = os.path.join(directory, "lab.json")
        write_atomically(path, groups((["127.0.0.2"], {}), (["127.0.0.3"], {})))
        # Re-read every second: the broken file must still be logged and counted once.
        exporter = Exporter(self, config=config(directory, os.path.join(directory, "*.json"), refresh="1s",
                                                extra="    name_label: __name\n"))
        self.wait_targets(exporter, {"127.0.0.2", "127.0.0.3"})
        write_atomically(path, '[{"targets": ["127.0.0.2", "127.0.0.4"],}]')
        wait_for(lambda: exporter.sample(f'netprobe_target_file_errors_total{{file="{path}"}}') == 1, timeout=2, what="the error counted")
        time.sleep(2.5)
        self.assertEqual(exporter.sample(f'netprobe_target_file_errors_total{{file="{path}"}}'), 1, "once per change")
        self.assertEqual(set(sent_by_target(exporter.metrics())) - {"main"}, {"127.0.0.2", "127.0.0.3"}, "the previous targets stay")
        self.assertEqual(exporter.log().count(f"{path}:1:41: trailing comma before '}}'"), 1, exporter.log())
        # A duplicate of the configuration's own target (by name) is refused too.
        write_atomically(path, groups((["127.0.0.7"], {"__name": "main"})))
        wait_for(lambda: exporter.sample(f'netprobe_target_file_errors_total{{file="{path}"}}') == 2, timeout=2, what="the duplicate counted")
        self.assertIn(f"{path}:1:15: target 'main' is already defined in {directory}/netprobe.yml:5:5", exporter.log())
        os.remove(path)
        self.wait_targets(exporter, set())
        self.assertNotIn(f'file="{path}"', exporter.metrics())

    def test_check_config_reads_the_files(self):
        directory = temporary_directory(self)
        write_atomically(os.path.join(directory, "a.json"), groups((["127.0.0.2", "127.0.0.3"], {})))
        path = config(directory, os.path.join(directory, "*.json"))
        result = subprocess.run([BINARY, "--check-config", f"--config.file={path}"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"{directory}/a.json: 2 targets", result.stdout)
        write_atomically(os.path.join(directory, "b.json"), '[{"targets": ["not a host"]}]')
        result = subprocess.run([BINARY, "--check-config", f"--config.file={path}"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn(f"{directory}/b.json:1:15: 'not a host' is not a host", result.stderr)


if __name__ == "__main__":
    unittest.main()
