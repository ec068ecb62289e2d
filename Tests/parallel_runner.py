"""Runs a unittest suite's tests in parallel worker processes and prints, as each finishes,
its verbose line and any failure, then the closing line `NAME: N passed, N failed, N skipped`.

The lab tests mostly wait: for a probe interval, a membership report, a stream to end. Run one
after the other they take ten minutes on a two-core machine that is idle most of the time;
run a few at once they take a third of that. Each test builds its own namespaces (named after
its process), listens on ephemeral ports and removes what it started, so tests do not see one
another. A test that cannot share the machine — it measures CPU-bound timing or loads every
core — says so with `@exclusive`, and runs alone after the others.

Workers are separate `python3` processes, not forks: each imports the tests itself, runs
its cleanups and exit handlers normally, and so leaves nothing behind in /tmp. A worker
reads test ids on stdin and answers each with one JSON line on a descriptor of its own; what
a test prints goes to stderr, where it cannot break the protocol.
"""
import json
import os
import selectors
import subprocess
import sys
import time
import unittest

from suite_runner import iterate, print_skip_reasons

EXCLUSIVE = "_netprobe_exclusive"


def exclusive(test_or_class):
    """Marks a test method or class to run alone, after the parallel ones."""
    setattr(test_or_class, EXCLUSIVE, True)
    return test_or_class


def is_exclusive(test):
    method = getattr(test, test._testMethodName, None)
    return bool(getattr(method, EXCLUSIVE, False) or getattr(type(test), EXCLUSIVE, False))


def default_jobs():
    """Three on a two-core machine: the tests wait far more than they compute."""
    return max(2, min(4, (os.cpu_count() or 2) + 1))


def worker_main(load_suite):
    """The worker's loop: `load_suite()` gives the suite whose tests are looked up by id."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    tests = {test.id(): test for test in iterate(load_suite())}
    for line in sys.stdin:
        test_id = line.strip()
        if not test_id:
            continue
        capture = _Capture()
        result = unittest.TextTestResult(unittest.runner._WritelnDecorator(capture), True, 2)
        started = time.monotonic()
        tests[test_id](result)
        result.printErrors()
        if result.failures or result.errors or result.unexpectedSuccesses:
            outcome = "failed"
        elif result.skipped:
            outcome = "skipped"
        else:
            outcome = "passed"
        protocol.write(json.dumps({
            "id": test_id, "outcome": outcome, "seconds": time.monotonic() - started,
            "skip": result.skipped[0][1] if result.skipped else None, "output": capture.text().rstrip("\n") + "\n",
        }) + "\n")


class _Capture:
    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def text(self):
        return "".join(self.parts)


class _Worker:
    def __init__(self, argv):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.current = None
        self.started = None

    def give(self, test_id):
        self.current = test_id
        self.started = time.monotonic()
        self.process.stdin.write(test_id + "\n")
        self.process.stdin.flush()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_parallel_and_exit(suite, name, worker_argv, pattern=None, jobs=None):
    """Runs the tests of `suite` (filtered by `pattern`) in `jobs` workers started with
    `worker_argv`, the parallel ones first and the `@exclusive` ones alone at the end."""
    tests = [t for t in iterate(suite) if not pattern or pattern in t.id()]
    jobs = jobs or default_jobs()
    parallel = [t.id() for t in tests if not is_exclusive(t)]
    alone = [t.id() for t in tests if is_exclusive(t)]
    started = time.monotonic()
    results = []
    _run_queue(parallel, jobs, worker_argv, results)
    _run_queue(alone, 1, worker_argv, results)
    counts = {outcome: sum(1 for r in results if r["outcome"] == outcome) for outcome in ("passed", "failed", "skipped")}
    failed = [r for r in results if r["outcome"] == "failed"]
    if failed:
        print("failed:")
        for r in failed:
            print(f"  {r['id']}")
    print_skip_reasons([(_Named(r["id"]), r["skip"]) for r in results if r["outcome"] == "skipped"])
    slowest = sorted(results, key=lambda r: -r["seconds"])[:5]
    print("slowest: " + ", ".join(f"{r['id'].rsplit('.', 1)[-1]} {r['seconds']:.0f}s" for r in slowest))
    print(f"{name} tests took {time.monotonic() - started:.1f}s ({jobs} at a time)")
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    sys.exit(1 if counts["failed"] or not results else 0)


class _Named:
    def __init__(self, test_id):
        self._id = test_id

    def id(self):
        return self._id


def _run_queue(queue, jobs, worker_argv, results):
    queue = list(queue)
    if not queue:
        return
    selector = selectors.DefaultSelector()
    workers = []

    def start_worker():
        worker = _Worker(worker_argv)
        selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
        workers.append(worker)
        return worker

    for _ in range(min(jobs, len(queue))):
        start_worker().give(queue.pop(0))
    busy = len(workers)
    while busy:
        for key, _ in selector.select():
            worker = key.data
            line = worker.process.stdout.readline()
            if line:
                result = json.loads(line)
            else:  # the worker died with the test: report it and replace the worker
                selector.unregister(worker.process.stdout)
                worker.process.wait()
                result = {"id": worker.current, "outcome": "failed", "seconds": time.monotonic() - worker.started,
                          "skip": None, "output": f"{worker.current}: the worker exited with {worker.process.returncode}\n"}
                workers.remove(worker)
                worker = start_worker() if queue else None
            results.append(result)
            sys.stdout.write(result["output"])
            sys.stdout.flush()
            if worker is not None and queue:
                worker.give(queue.pop(0))
            else:
                busy -= 1
                if worker is not None:
                    worker.current = None
    for worker in workers:
        selector.unregister(worker.process.stdout)
        worker.close()
