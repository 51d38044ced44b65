"""Build pyfront._pf (cffi out-of-line API mode) from src/c/*.c.

The cdef is the PF_CDEF region of src/c/pf.h, so the header is the single
description of the C <-> Python boundary.

PYFRONT_SANITIZE=1 builds with AddressSanitizer + UBSan (see Makefile `asan`).
"""
import glob
import os
import re

from cffi import FFI

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CDIR = os.path.join(ROOT, "src", "c")


def read_cdef(header_path: str) -> str:
    text = open(header_path, encoding="utf-8").read()
    m = re.search(r"/\* PF_CDEF_BEGIN \*/(.*)/\* PF_CDEF_END \*/", text, re.S)
    if not m:
        raise SystemExit(f"{header_path}: no PF_CDEF_BEGIN/END region")
    return m.group(1)


def compile_args() -> tuple[list[str], list[str]]:
    cflags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
              "-fvisibility=hidden", "-D_GNU_SOURCE"]
    ldflags: list[str] = []
    if os.environ.get("PYFRONT_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        cflags = [f for f in cflags if f != "-O2"] + ["-O1", "-g"] + san
        ldflags += san
    return cflags, ldflags


ffibuilder = FFI()
ffibuilder.cdef(read_cdef(os.path.join(CDIR, "pf.h")))
_cflags, _ldflags = compile_args()
ffibuilder.set_source(
    "pyfront._pf",
    '#include "pf.h"',
    sources=sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(CDIR, "*.c"))),
    include_dirs=[CDIR],
    libraries=["z"],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
