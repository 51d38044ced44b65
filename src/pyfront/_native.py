"""The only importer of the compiled core (pyfront._pf).

PYFRONT_NATIVE_PATH points at another build (the AddressSanitizer one from
`make asan`) so the same tests can run against it.
"""
import importlib.util
import os
import sys


def _load():
    alt = os.environ.get("PYFRONT_NATIVE_PATH")
    if not alt:
        from pyfront import _pf
        return _pf
    import glob
    found = glob.glob(os.path.join(alt, "pyfront", "_pf*.so"))
    if not found:
        raise ImportError(f"PYFRONT_NATIVE_PATH={alt}: no pyfront/_pf*.so there (run `make asan`)")
    spec = importlib.util.spec_from_file_location("pyfront._pf", found[0])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pyfront._pf"] = mod
    spec.loader.exec_module(mod)
    return mod


_pf = _load()
ffi = _pf.ffi
lib = _pf.lib

if lib.pf_abi_version() != 1:
    raise ImportError("pyfront._pf ABI mismatch: rebuild with `make build`")
