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
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    if args.pattern:
        suite = unittest.TestSuite(t for t in iterate(suite) if args.pattern in t.id())
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"lab tests took {time.monotonic() - started:.1f}s")
    print(f"lab: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed or result.testsRun == 0 else 0)


def iterate(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iterate(item)
        else:
            yield item


if __name__ == "__main__":
    main()
