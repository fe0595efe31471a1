"""A user-space IP-in-IP decapsulator for tunnel-mode real servers on kernels without ipip.

Run inside a real server's namespace. It reads protocol-4 packets with a raw socket (the
kernel hands raw sockets the outer header too), strips the outer header (RFC 2003) and
writes the inner packet into a TUN device named like the kernel's fallback tunnel
(tunl0), so the kernel receives it exactly as if the ipip module had decapsulated it.
A kernel that has ipip (/sys/module/ipip) needs none of this: its own tunl0 is used.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys
from pathlib import Path

IPPROTO_IPIP = 4
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1
IFNAMSIZ = 16
TUN_NAME = "tunl0"            # the tutorial's device (`ifconfig tunl0 VIP ... up`)
# The tutorial's RS settings for its tunnel device: no ARP on it, and no strict source
# validation (the inner source, the client, is not routed via the tunnel). The tutorial's
# loose mode (2) is not enough here: the lab puts the VIP on lo, so tunl0 has no IPv4
# address, and Linux then drops on any rp_filter (fib_validate_source, "last_resort").
TUN_SYSCTLS = {"arp_ignore": "1", "rp_filter": "0"}
MAX_PACKET = 65535


def kernel_ipip() -> bool:
    """The ipip module is loaded: namespaces get the kernel's own tunl0 (unless
    net.core.fb_tunnels_only_for_init_net says otherwise: kernel_tunl0 checks)."""
    return Path("/sys/module/ipip").exists()


def kernel_tunl0() -> bool:
    """This namespace has the kernel's fallback IPIP device (sysfs of the namespace:
    `ip netns exec` mounts it)."""
    return kernel_ipip() and Path(f"/sys/class/net/{TUN_NAME}").exists()


def _ifreq(name: str, flags: int = 0) -> bytes:
    return struct.pack(f"{IFNAMSIZ}sH", name.encode(), flags).ljust(40, b"\0")


def set_up(name: str) -> None:
    """Bring an interface up (SIOCSIFFLAGS), as `ip link set NAME up` would."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s, SIOCGIFFLAGS, _ifreq(name))
        flags = struct.unpack_from("H", got, IFNAMSIZ)[0]
        fcntl.ioctl(s, SIOCSIFFLAGS, _ifreq(name, flags | IFF_UP))


def configure(name: str) -> None:
    """The tutorial's sysctls for the tunnel device, and the device up."""
    for key, value in TUN_SYSCTLS.items():
        Path(f"/proc/sys/net/ipv4/conf/{name}/{key}").write_text(value)
    set_up(name)


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def inner_packet(outer: bytes) -> bytes | None:
    """The encapsulated datagram of an IPIP packet, or None if it is not a sound one."""
    if len(outer) < 20 or outer[0] >> 4 != 4 or outer[9] != IPPROTO_IPIP:
        return None
    hl = (outer[0] & 0xF) * 4
    total = struct.unpack_from("!H", outer, 2)[0]
    if hl < 20 or total > len(outer) or total < hl + 20:
        return None
    inner = outer[hl:total]
    if inner[0] >> 4 != 4 or struct.unpack_from("!H", inner, 2)[0] != len(inner):
        return None
    return inner


def serve(name: str, log=sys.stdout) -> dict:
    """Decapsulate until SIGTERM/SIGINT; return the counts."""
    counts = {"received": 0, "delivered": 0, "malformed": 0}
    stop_r, stop_w = os.pipe()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os.write(stop_w, b"x"))
    tun = open_tun(name)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    try:
        configure(name)
        print(f"ready: IPIP -> {name}", file=log, flush=True)
        while True:
            ready = select.select([raw, stop_r], [], [])[0]
            if stop_r in ready:
                break
            packet = raw.recv(MAX_PACKET)
            counts["received"] += 1
            inner = inner_packet(packet)
            if inner is None:
                counts["malformed"] += 1
                continue
            os.write(tun, inner)
            counts["delivered"] += 1
    finally:
        raw.close()
        os.close(tun)
        os.close(stop_r)
        os.close(stop_w)
    print(" ".join(f"{k} {v}" for k, v in counts.items()), file=log, flush=True)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="rlb-decap", description=__doc__.split("\n\n")[0])
    p.add_argument("--tun", default=TUN_NAME, help="TUN device to create (default tunl0)")
    args = p.parse_args(argv)
    if kernel_tunl0():
        # the kernel decapsulates into its own tunl0: configure it and leave
        configure(TUN_NAME)
        print(f"ready: kernel ipip, {TUN_NAME}", flush=True)
        return 0
    serve(args.tun)
    return 0


if __name__ == "__main__":
    sys.exit(main())
