"""Shared memory between an app master and its workers (MAP_SHARED, made before fork).

One slot per worker process: state, pid, request count, a retire request; then one
record per thread ("core"): when its current request started (CLOCK_MONOTONIC, which is
system-wide on Linux) and the request line, so the master can enforce harakiri and say
which request was stuck. Only the worker writes its slot's counters; the master writes
state FREE/BOOTING when it (re)assigns a slot.
"""
from __future__ import annotations

import mmap
import struct

FREE, BOOTING, READY, STOPPING = 0, 1, 2, 3
RETIRE_NONE, RETIRE_MAX_REQUESTS, RETIRE_LIFETIME, RETIRE_RSS = 0, 1, 2, 3
RETIRE_REASONS = {RETIRE_MAX_REQUESTS: "max-requests reached", RETIRE_LIFETIME: "max-worker-lifetime reached",
                  RETIRE_RSS: "reload-on-rss reached"}

HEAD = struct.Struct("=iiQii8x")      # state, pid, requests, retire, generation
CORE = struct.Struct("=d120s")        # start (0 = idle), request line
URI_MAX = 120


def slots_for(processes: int) -> int:
    """Slots an app master needs: every worker plus its replacement during a reload."""
    return 2 * processes + 2


class Scoreboard:
    def __init__(self, nslots: int, threads: int):
        self.nslots, self.threads = nslots, threads
        self.slot_size = HEAD.size + threads * CORE.size
        self.mem = mmap.mmap(-1, max(1, nslots * self.slot_size))

    def off(self, slot: int) -> int:
        return slot * self.slot_size

    def core_off(self, slot: int, core: int) -> int:
        return slot * self.slot_size + HEAD.size + core * CORE.size

    def close(self) -> None:
        self.mem.close()

    def rows(self) -> list[dict]:
        """Every used slot, for status: pid, state, requests, busy, current request."""
        out = []
        for slot in range(self.nslots):
            state, pid, requests, _retire, generation = self.head(slot)
            if state == FREE or pid <= 0:
                continue
            current = ""
            busy = False
            for core in range(self.threads):
                start, uri = self.core(slot, core)
                if start:
                    busy, current = True, current or uri
            out.append({"slot": slot, "pid": pid, "state": state, "requests": requests, "busy": busy,
                        "current_request": current, "generation": generation})
        return out

    def reset(self, slot: int, state: int, generation: int) -> None:
        o = self.off(slot)
        self.mem[o:o + self.slot_size] = bytes(self.slot_size)
        HEAD.pack_into(self.mem, o, state, 0, 0, 0, generation)

    def head(self, slot: int) -> tuple[int, int, int, int, int]:
        return HEAD.unpack_from(self.mem, self.off(slot))

    def set_state(self, slot: int, state: int) -> None:
        struct.pack_into("=i", self.mem, self.off(slot), state)

    def set_pid(self, slot: int, pid: int) -> None:
        struct.pack_into("=i", self.mem, self.off(slot) + 4, pid)

    def set_requests(self, slot: int, n: int) -> None:
        struct.pack_into("=Q", self.mem, self.off(slot) + 8, n)

    def set_retire(self, slot: int, reason: int) -> None:
        struct.pack_into("=i", self.mem, self.off(slot) + 16, reason)

    def core(self, slot: int, core: int) -> tuple[float, str]:
        start, uri = CORE.unpack_from(self.mem, self.core_off(slot, core))
        return start, uri.rstrip(b"\0").decode("latin-1")
