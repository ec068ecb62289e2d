#!/usr/bin/env python3
"""Runs the end-to-end and lab tests (Tests/lab/test_*.py) against a built exporter, a few at
a time (Tests/parallel_runner.py), and prints one closing line,
`lab: N passed, N failed, N skipped`. Exit status 1 on failure.

    python3 Tests/lab/run.py [--binary PATH] [-k PATTERN] [--jobs N]

`--jobs 1` runs one test at a time, as when chasing a flaky test.
"""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


def load_suite():
    return unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", help="the netprobe_exporter binary to test")
    parser.add_argument("-k", dest="pattern", help="run only tests whose id contains this text")
    parser.add_argument("--jobs", type=int, help="tests run at once (default: cores + 1, 2 to 4)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.binary:
        os.environ["NETPROBE_BINARY"] = os.path.abspath(args.binary)
    from parallel_runner import run_parallel_and_exit, worker_main
    if args.worker:
        worker_main(load_suite)
        return
    run_parallel_and_exit(load_suite(), "lab", [sys.executable, os.path.abspath(__file__), "--worker"],
                          pattern=args.pattern, jobs=args.jobs)


if __name__ == "__main__":
    main()
