# cffi out-of-line API mode: the extension pyfront._pf is built from src/c/*.c
# by src/pyfront/_build/ffi_build.py, which reads its cdef from src/c/pf.h.
from setuptools import setup

setup(cffi_modules=["src/pyfront/_build/ffi_build.py:ffibuilder"])
