"""Runs a unittest suite and prints one closing line, `NAME: N passed, N failed, N skipped`,
the line `make test` and CI readers look for; exits 1 on a failure or when nothing ran.
Shared by the lab (Tests/lab/run.py) and deploy (Tests/deploy/test_deploy.py) runners."""
import sys
import time
import unittest


def iterate(suite):
    """Every test case of a (nested) suite, in order."""
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iterate(item)
        else:
            yield item


def print_skip_reasons(skipped):
    """The skipped tests grouped by their reason, so that what this machine lacks is read in
    one place rather than searched for in the verbose log."""
    if not skipped:
        return
    by_reason = {}
    for test, reason in skipped:
        by_reason.setdefault(reason, []).append(test.id().rsplit(".", 1)[-1])
    print("skipped, and why:")
    for reason, names in by_reason.items():
        print(f"  {reason}: {len(names)} test{'s' if len(names) > 1 else ''} ({', '.join(names)})")


def run_and_exit(suite, name, pattern=None):
    tests = [t for t in iterate(suite) if not pattern or pattern in t.id()]
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(unittest.TestSuite(tests))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print_skip_reasons(result.skipped)
    print(f"{name} tests took {time.monotonic() - started:.1f}s")
    print(f"{name}: {result.testsRun - failed - skipped} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed or result.testsRun == 0 else 0)
