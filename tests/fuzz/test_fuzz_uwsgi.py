"""Builds the uwsgi fuzz target (tests/fuzz/fuzz_uwsgi.c) with gcc + ASan/UBSan and the
mutation driver (tests/fuzz/driver.c), and runs it over the nginx-captured corpus."""
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ITERATIONS = int(os.environ.get("PYFRONT_FUZZ_ITERATIONS", "20000"))


def test_fuzz_uwsgi_target(tmp_path):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc not installed")
    exe = tmp_path / "fuzz_uwsgi"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    subprocess.run([gcc, "-std=gnu11", "-O1", "-g", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter", *san, "-I", os.path.join(ROOT, "src/c"),
                    os.path.join(ROOT, "src/c/uwsgi.c"), os.path.join(ROOT, "tests/fuzz/fuzz_uwsgi.c"),
                    os.path.join(ROOT, "tests/fuzz/driver.c"), "-o", str(exe)], check=True)
    seeds = sorted(glob.glob(os.path.join(ROOT, "tests/corpus/uwsgi/*.uwsgi")))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([str(exe), str(ITERATIONS), *seeds], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "no failures" in r.stdout
