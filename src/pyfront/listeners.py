"""Listen sockets owned by the master: opened before fork, kept across reloads.

A key names one socket: (address, slot). slot is -1 for the shared socket every worker
accepts on, or the worker index for `listen ... reuseport` (one SO_REUSEPORT socket per
worker, as nginx does, so the kernel spreads connections and a respawned worker gets its
predecessor's socket — and its queued connections — back).

Keeping the same socket object for an address across a reload is what makes a reload
refuse no connection: the kernel keeps queueing in the backlog while generations swap.
"""
from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass

# Linux's SOMAXCONN-era default nginx uses (NGX_LISTEN_BACKLOG = 511 on Linux).
DEFAULT_BACKLOG = 511


class ListenError(Exception):
    """nginx's wording: `bind() to 127.0.0.1:80 failed (98: Address already in use)`."""


@dataclass(frozen=True)
class ListenPlan:
    address: str              # normalised: "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock"
    reuseport: bool = False
    backlog: int = DEFAULT_BACKLOG
    default_server: bool = False
    ipv6only: bool = True     # nginx's default for [::] since 1.3.4


def parse_address(address: str) -> tuple[int, object]:
    """(family, sockaddr) for a normalised listen address."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ListenError(f'invalid listen address "{address}"')
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    if host in ("", "*"):
        host = "0.0.0.0"
    return socket.AF_INET, (host, int(port))


def _fail(call: str, address: str, e: OSError) -> ListenError:
    return ListenError(f"{call}() to {address} failed ({e.errno}: {e.strerror})")


def _clear_stale_unix(path: str, address: str) -> None:
    """Remove a unix socket left by a dead process; refuse if someone still listens on it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise _fail("stat", address, e) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(f"bind() to {address} failed (98: Address already in use) "
                          f"(the path exists and is not a socket; remove it or choose another)")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)   # ECONNREFUSED/ENOENT: nobody listens, a leftover from a crash
        return
    finally:
        probe.close()
    raise ListenError(f"bind() to {address} failed (98: Address already in use) "
                      f"(another process is listening on it)")


def open_listener(plan: ListenPlan) -> socket.socket:
    family, sockaddr = parse_address(plan.address)
    if family == socket.AF_UNIX:
        _clear_stale_unix(sockaddr, plan.address)
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        raise _fail("socket", plan.address, e) from None
    try:
        if family != socket.AF_UNIX:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if plan.reuseport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if plan.ipv6only else 0)
        try:
            s.bind(sockaddr)
        except OSError as e:
            raise _fail("bind", plan.address, e) from None
        try:
            s.listen(plan.backlog)
        except OSError as e:
            raise _fail("listen", plan.address, e) from None
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


Key = tuple[str, int]


class Listeners:
    """The master's table of open listen sockets."""

    def __init__(self) -> None:
        self.socks: dict[Key, socket.socket] = {}
        self.plans: dict[Key, ListenPlan] = {}

    @staticmethod
    def keys_for(listens: tuple[ListenPlan, ...], workers: int) -> list[Key]:
        keys: list[Key] = []
        for lp in listens:
            if lp.reuseport:
                keys.extend((lp.address, i) for i in range(workers))
            else:
                keys.append((lp.address, -1))
        return keys

    def ensure(self, listens: tuple[ListenPlan, ...], workers: int) -> list[Key]:
        """Open every socket the plan needs that is not open yet; all or nothing.

        Returns the keys opened now (so a failed reload can close exactly those).
        """
        by_addr = {lp.address: lp for lp in listens}
        opened: list[Key] = []
        try:
            for key in self.keys_for(listens, workers):
                lp = by_addr[key[0]]
                if key in self.socks:
                    old = self.plans[key]
                    if old.backlog != lp.backlog:
                        self.socks[key].listen(lp.backlog)   # Linux applies a new backlog in place
                    self.plans[key] = lp
                    continue
                self.socks[key] = open_listener(lp)
                self.plans[key] = lp
                opened.append(key)
        except BaseException:
            self.close(opened)
            raise
        return opened

    def close(self, keys) -> None:
        for key in list(keys):
            s = self.socks.pop(key, None)
            self.plans.pop(key, None)
            if s is None:
                continue
            path = key[0][5:] if key[0].startswith("unix:") else None
            still_used = path is not None and any(k[0] == key[0] for k in self.socks)
            s.close()
            if path and not still_used:
                try:
                    os.unlink(path)
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        pass  # not ours to fail on; the next bind reports it

    def close_except(self, keep: set[Key]) -> None:
        self.close([k for k in self.socks if k not in keep])

    def close_all(self) -> None:
        self.close(list(self.socks))

    def fds(self) -> set[int]:
        return {s.fileno() for s in self.socks.values()}
