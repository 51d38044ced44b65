"""Builds tests/fuzz/fuzz_front.c (path normalisation + route-table loader) with gcc +
ASan/UBSan and the shared mutation driver; seeds: URIs and real compiled blobs."""
import os
import shutil
import subprocess

import pytest

from pyfront.config.compile import ConfPlan, LocationPlan, ServerPlan, build_blob

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ITERATIONS = int(os.environ.get("PYFRONT_FUZZ_ITERATIONS", "20000"))

URIS = [b"/", b"/a/b/../c", b"/%2e%2e/x", b"/static..%2fsecret", b"//a//b/./c/", b"/a%00b", b"/%zz",
        b"/a/%2E%2E%2F%2e%2e/b", b"/..", b"/a/b/c/d/e/../../../../..", b"/x?y", b"/%41%42%43"]


def blobs():
    C = ConfPlan(try_files=("$uri", "/index.html"), error_pages=((404, -1, "/404.html"),),
                 add_headers=(("X", "$host", False),), access_logs=(("/tmp/a.log", "combined"),))
    L = LocationPlan
    locs = (L("=", "/", C), L("", "/a/", C, (L("", "/a/b/", C), L("~", r"\.txt$", C))), L("^~", "/s/", C),
            L("~*", r"\.(png|jpg)$", C), L("@", "@f", C))
    yield build_blob([ServerPlan(listen=(("127.0.0.1:80", True),), names=("example.com", "*.x.org", "~^a[0-9]$"),
                                 conf=C, locations=locs),
                      ServerPlan(listen=(("127.0.0.1:80", False), ("[::1]:81", True)), names=(".d.test",), conf=C)])
    yield build_blob([ServerPlan(listen=(("a:1", False),), names=(), conf=ConfPlan())])


def test_fuzz_front_target(tmp_path):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc not installed")
    exe = tmp_path / "fuzz_front"
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    subprocess.run([gcc, "-std=gnu11", "-O1", "-g", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                    "-Wno-unused-parameter", *san, "-I", os.path.join(ROOT, "src/c"),
                    os.path.join(ROOT, "src/c/path.c"), os.path.join(ROOT, "src/c/router.c"),
                    os.path.join(ROOT, "src/c/proxy_conf.c"),   # router.c checks the proxy sections with it
                    os.path.join(ROOT, "tests/fuzz/fuzz_front.c"), os.path.join(ROOT, "tests/fuzz/driver.c"),
                    "-o", str(exe)], check=True)
    seeds = []
    for i, u in enumerate(URIS):
        p = tmp_path / f"path{i}"
        p.write_bytes(b"\0" + u)
        seeds.append(str(p))
    for i, b in enumerate(blobs()):
        p = tmp_path / f"blob{i}"
        p.write_bytes(b"\1" + b)
        seeds.append(str(p))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([str(exe), str(ITERATIONS), *seeds], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "no failures" in r.stdout
