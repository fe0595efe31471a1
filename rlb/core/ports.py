"""Port devargs and the kernel side of ports that sit on kernel interfaces (af_packet, af_xdp).

An af_packet socket sees a frame before the kernel's own stack does, but the stack
would still answer ARP and accept packets for kni addresses arriving on the raw
interface, duplicating what rlb passes through <port>.kni. An nftables netdev
ingress chain that drops everything runs after the packet taps, so the PMD keeps
seeing all traffic while the kernel sees none of it on that interface.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess

log = logging.getLogger("rlb.ports")

KERNEL_BACKED = ("net_af_packet", "net_af_xdp", "net_pcap")


def is_pci(devargs: str) -> bool:
    head = devargs.split(",")[0]
    return not head.startswith("net_") and ":" in head


def kernel_iface(devargs: str) -> str | None:
    """The kernel interface under an af_packet/af_xdp/pcap vdev, or None."""
    head, *opts = devargs.split(",")
    if not head.startswith(KERNEL_BACKED):
        return None
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "iface":
            return value
    return None


AF_PACKET_FRAMES = 2048     # per queue; DPDK's 512 fill in ~2.5 ms at 200k pps (bench)


def with_queues(devargs: str, workers: int) -> str:
    """Complete a vdev's arguments: one af_packet queue pair per worker and a ring deep
    enough to ride out a preempted worker; a pcap port on an interface uses that
    interface's MAC (pcap otherwise invents one)."""
    head = devargs.split(",")[0]
    if head.startswith("net_af_packet"):
        if "qpairs=" not in devargs:
            devargs = f"{devargs},qpairs={workers}"
        if "framecnt=" not in devargs:
            devargs = f"{devargs},framecnt={AF_PACKET_FRAMES}"
        return devargs
    if head.startswith("net_pcap") and ",iface=" in devargs and "phy_mac=" not in devargs:
        return f"{devargs},phy_mac=1"
    return devargs


class KernelIsolation:
    """Keeps the kernel's stack off the raw interfaces of kernel-backed ports."""

    def __init__(self, instance: str, ifaces: list[str]):
        self.table = f"rlb_{instance}".replace("-", "_")
        self.ifaces = [i for i in ifaces if i]
        self.active = False

    def _nft(self, script: str) -> bool:
        if not shutil.which("nft"):
            log.warning("nft not found: the kernel also sees traffic on %s", self.ifaces)
            return False
        r = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
        if r.returncode:
            log.warning("nft: %s", r.stderr.strip())
        return r.returncode == 0

    def apply(self) -> None:
        if not self.ifaces:
            return
        lines = [f"table netdev {self.table} {{"]
        for i, iface in enumerate(self.ifaces):
            lines.append(f"  chain in{i} {{ type filter hook ingress device \"{iface}\" "
                         "priority 0; policy drop; }")
        lines.append("}")
        self.remove(quiet=True)
        self.active = self._nft("\n".join(lines) + "\n")
        for iface in self.ifaces:
            _sysctl(f"/proc/sys/net/ipv6/conf/{iface}/disable_ipv6", "1")

    def remove(self, quiet: bool = False) -> None:
        if shutil.which("nft"):
            subprocess.run(["nft", "delete", "table", "netdev", self.table],
                           capture_output=True, text=True)
        self.active = False


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


def iface_rx_packets(iface: str) -> int | None:
    """Frames the kernel received on a port's interface (kernel-backed ports): those the
    port never saw were lost before it, e.g. an af_packet ring that was full."""
    try:
        with open(f"/sys/class/net/{iface}/statistics/rx_packets") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def kni_prepare(name: str, arp: bool = True, mtu: int | None = None) -> None:
    """The data plane speaks IPv4 only: keep the kernel from sending IPv6 on kni. A
    tunnel's kni has no neighbours to ask (arp=False): the kernel sends to it without
    ARP, and no more than the tunnel's MTU."""
    if os.path.isdir(f"/proc/sys/net/ipv6/conf/{name}"):
        _sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1")
    if not arp:
        _set_flag(name, IFF_NOARP)
    if mtu is not None:
        _set_mtu(name, mtu)


SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFMTU, IFF_NOARP = 0x8913, 0x8914, 0x8922, 0x80


def _set_mtu(name: str, mtu: int) -> None:
    import fcntl
    import socket
    import struct
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCSIFMTU, struct.pack("16si12x", name.encode(), mtu))
    except OSError as err:
        log.warning("%s: cannot set its MTU: %s", name, err)


def _set_flag(name: str, flag: int) -> None:
    """An interface flag on (`ip link set NAME arp off` is IFF_NOARP)."""
    import fcntl
    import socket
    import struct
    ifr = struct.Struct("16sH14x")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            _, flags = ifr.unpack(fcntl.ioctl(s, SIOCGIFFLAGS, ifr.pack(name.encode(), 0)))
            fcntl.ioctl(s, SIOCSIFFLAGS, ifr.pack(name.encode(), flags | flag))
    except OSError as err:
        log.warning("%s: cannot set its flags: %s", name, err)


def carrier(iface: str) -> bool | None:
    """Whether a kernel interface has its link (carrier), None if it cannot be read."""
    try:
        with open(f"/sys/class/net/{iface}/carrier") as f:
            return f.read().strip() == "1"
    except (OSError, ValueError):
        return None          # gone, or administratively down (EINVAL)


class LinkWatch:
    """The links of a bond's kernel-backed slaves: af_packet does not see its interface's
    carrier, so the bond would go on sending on a slave whose link is down. Each poll()
    gives the slaves whose link changed since the last one: [(devargs, up)]."""

    def __init__(self, slaves: list[str]):
        self.ifaces = {d: kernel_iface(d) for d in slaves if kernel_iface(d)}
        self.up = {d: True for d in self.ifaces}

    def poll(self) -> list[tuple[str, bool]]:
        changed = []
        for devargs, iface in self.ifaces.items():
            now = bool(carrier(iface))
            if now != self.up[devargs]:
                self.up[devargs] = now
                changed.append((devargs, now))
        return changed
