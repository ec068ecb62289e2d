#!/usr/bin/env python3
"""Runs the end-to-end and lab tests (Tests/lab/test_*.py) against a built exporter and
prints one closing line, `lab: N passed, N failed, N skipped`. Exit status 1 on failure.

    python3 Tests/lab/run.py [--binary PATH] [-k PATTERN]
"""
import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", help="the netprobe_exporter binary to test")
    parser.add_argument("-k", dest="pattern", help="run only tests whose id contains this text")
    args = parser.parse_args()
    if args.binary:
        os.environ["NETPROBE_BINARY"] = os.path.abspath(args.binary)
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.dirname(HERE))
    from suite_runner import run_and_exit
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    run_and_exit(suite, "lab", args.pattern)


if __name__ == "__main__":
    main()
