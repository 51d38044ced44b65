"""`make bench`: run every benchmark suite (or the ones named) in one session."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = ["static", "app", "stack", "supervise"]

if __name__ == "__main__":
    names = sys.argv[1:] or SUITES
    rc = 0
    for name in names:
        rc |= subprocess.call([sys.executable, os.path.join(HERE, f"{name}.py")])
    sys.exit(rc)
