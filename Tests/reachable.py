"""Files for processes the tests run as another user (nobody, a setpriv'd unit's user).

The tests run as root, and root can read a checkout anywhere. Another user cannot when the
checkout lives under a directory only its owner may enter: /root on Debian is mode 0700, and
so is every `mktemp -d` (where .ci/run clones the repository). So nothing handed to another
user may be referred to by its place in the checkout: the binary and whatever else that user
must read (configs, fixtures, scripts) go into a directory of ours under /tmp, which every
user can traverse. /tmp, not $TMPDIR: a TMPDIR may be just as private as the checkout.

Shared by the lab (Tests/lab/harness.py) and the deploy checks (Tests/deploy/test_deploy.py).
"""
import atexit
import os
import shutil
import tempfile

_root = None    # this process's directory for copies, removed at exit
_copies = {}    # source path -> its copy


def reachable_directory(prefix="netprobe-test-", parent="/tmp"):
    """A new empty directory that every user can enter and read (mode 0755), under /tmp
    unless `parent` is given. The caller removes it (e.g. `test.addCleanup(shutil.rmtree, d)`)."""
    directory = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(directory, 0o755)
    return directory


def reachable_copy(path):
    """A copy of the file at `path` that every user can read and execute (mode 0755), with the
    same file name, in a directory of this process's own under /tmp that is removed at exit.
    Copied once per process: later calls with the same path return the same copy, so it is for
    files that do not change while the tests run (the binary, fixtures) — not for a config a
    test rewrites and reloads (write such a file into a reachable_directory() instead)."""
    global _root
    source = os.path.realpath(path)
    if source not in _copies:
        if _root is None:
            _root = reachable_directory(prefix="netprobe-shared-")
            atexit.register(shutil.rmtree, _root, True)
        # One subdirectory per copy, so that two files of the same name do not collide and
        # each copy keeps its name (a process's name is its binary's).
        copy = os.path.join(reachable_directory(parent=_root), os.path.basename(source))
        shutil.copyfile(source, copy)
        os.chmod(copy, 0o755)
        _copies[source] = copy
    return _copies[source]
