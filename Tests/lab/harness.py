"""Shared helpers for the end-to-end and lab tests: run the exporter and real Prometheus
tools as child processes, and always remove what a test started (by PID), even on failure."""
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests"))
from reachable import reachable_copy, reachable_directory  # noqa: E402
BINARY = os.environ.get("NETPROBE_BINARY", os.path.join(ROOT, ".build", "debug", "netprobe_exporter"))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, http.client.HTTPException) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def request(port, method, path, headers=None, body=None, timeout=10):
    """One request on a fresh connection: (status, headers, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Exporter:
    """The exporter binary as a child process, listening on an ephemeral loopback port."""

    def __init__(self, test, *args, config=None, env=None, wrapper=()):
        """`env`: variables added to the environment; `wrapper`: a command the exporter runs
        under (e.g. `unshare -m …`), which must exec it."""
        self.stderr = tempfile.TemporaryFile()
        command = [*wrapper, BINARY, "--web.listen-address=127.0.0.1:0", *args]
        if config:
            command.append(f"--config.file={config}")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                        env={**os.environ, **env} if env else None)
        test.addCleanup(self.kill)
        self.port = wait_for(self._listening_port, what="the exporter to listen")

    def _listening_port(self):
        if self.process.poll() is not None:
            raise AssertionError(f"exporter exited with {self.process.returncode}: {self.log()}")
        match = (re.search(r"msg=listening address=127\.0\.0\.1:(\d+)", self.log())
                 or re.search(r'"msg":"listening","address":"127\.0\.0\.1:(\d+)"', self.log()))
        return int(match.group(1)) if match else None

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def get(self, path, headers=None):
        return request(self.port, "GET", path, headers)

    def metrics(self):
        status, _, body = self.get("/metrics")
        assert status == 200, status
        return body.decode()

    def sample(self, name_and_labels):
        """The value of one series in the current exposition, or None."""
        return self.value(self.metrics(), name_and_labels)

    @staticmethod
    def value(metrics, name_and_labels):
        """The value of one series (`name{labels}` exactly as exposed) in `metrics`, or None."""
        for line in metrics.splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def signal(self, number):
        self.process.send_signal(number)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def require_tool(test, name):
    path = shutil.which(name)
    if not path:
        raise AssertionError(f"{name} is missing; `make test` installs it (scripts/install-deps.sh test)")
    return path


def start_process(test, command, **kwargs):
    """A helper process (prometheus, pushgateway, …) that the test's cleanup kills by PID."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    test.addCleanup(stop)
    return process


def temporary_directory(test):
    directory = tempfile.mkdtemp(prefix="netprobe-lab-")
    test.addCleanup(shutil.rmtree, directory, True)
    return directory


def gunzip(data):
    return gzip.decompress(data)


class LabExporter(Exporter):
    """The exporter inside a lab namespace (as `user` when given); scraped with curl run in
    the same namespace, since its 127.0.0.1 is the namespace's own.

    As another user it runs a copy of the binary that every user can reach (reachable_copy):
    the checkout may sit under a directory that only root may enter. Its config must be
    readable by that user too: write it with write_config()."""

    def __init__(self, test, lab, *args, config=None, user=None, namespace="agent"):
        self.lab = lab
        self.namespace = namespace
        self.stderr = tempfile.TemporaryFile()
        binary = BINARY if user is None else reachable_copy(BINARY)
        command = [binary, "--web.listen-address=127.0.0.1:0", *args]
        if config:
            command.append(f"--config.file={config}")
        self.process = lab.popen(namespace, command, user=user, stdout=subprocess.DEVNULL, stderr=self.stderr)
        test.addCleanup(self.kill)
        self.port = wait_for(self._listening_port, what="the exporter to listen")

    def get(self, path, headers=None):
        result = self.lab.run(self.namespace, ["curl", "-s", "-o", "-", "-w", "\n%{http_code}",
                                               f"http://127.0.0.1:{self.port}{path}"], timeout=30)
        body, _, status = result.stdout.rpartition("\n")
        return int(status or 0), {}, body.encode()

    def samples(self, family, metrics=None):
        """{labels text: value} of every series of one family (histogram parts excluded),
        from `metrics` (one scrape's text) or a new scrape."""
        values = {}
        for line in (metrics if metrics is not None else self.metrics()).splitlines():
            if line.startswith(family + "{"):
                labels, value = line[len(family):].rsplit(" ", 1)
                values[labels] = float(value)
        return values

    def target_value(self, family, target):
        """The value of `family` for the series whose target label is `target`."""
        for labels, value in self.samples(family).items():
            if f'target="{target}"' in labels:
                return value
        return None


def write_config(test, text):
    """A config file that any user can read (the lab runs the agent as nobody too), in a
    directory of its own under /tmp that the test removes when it ends."""
    directory = reachable_directory(prefix="netprobe-lab-")
    test.addCleanup(shutil.rmtree, directory, True)
    path = os.path.join(directory, "netprobe.yml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path
