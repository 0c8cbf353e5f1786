"""The TCP sockets a process tree listens on, read from /proc (Linux)."""

from __future__ import annotations

import os
import socket
import struct

from modelambda.local.procfs import descendants


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_address: str, family: int) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if family == socket.AF_INET:
        packed = struct.pack("<I", struct.unpack(">I", raw)[0])
    else:  # four little-endian 32-bit words
        packed = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0])
                          for i in range(0, 16, 4))
    return socket.inet_ntop(family, packed), int(port, 16)


def listening(pid: int | None = None) -> list[tuple[str, int, int]]:
    """(address, port, owning pid) of every listening TCP socket of ``pid``'s process tree
    (default: this process)."""
    owners: dict[int, int] = {}
    for member in descendants(pid or os.getpid()):
        for inode in _socket_inodes(member):
            owners[inode] = member
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            inode = int(fields[9])
            if inode in owners:
                host, port = _address(fields[1], family)
                found.append((host, port, owners[inode]))
    return found
