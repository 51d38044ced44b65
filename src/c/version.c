#include "pf.h"

const char *pf_version(void) { return "pyfront-core/" "1"; }
int pf_abi_version(void) { return PF_ABI_VERSION; }
