"""A raw socket that sees 802.1Q tags: the kernel takes a received frame's VLAN tag off
(into the packet's metadata) before any packet socket sees it, in a namespace without
8021q too; tcpdump puts it back from PACKET_AUXDATA, and so does TaggedWire."""
from __future__ import annotations

import select
import socket
import struct
import time

from support.netns import Wire

SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
AUXDATA = struct.Struct("IIIHHHH")   # struct tpacket_auxdata (linux/if_packet.h)
ETH_P_8021Q = 0x8100


class TaggedWire(Wire):
    """Wire whose recv() gives frames as they were on the wire, VLAN tag included."""

    def __init__(self, ns, iface):
        super().__init__(ns, iface)
        self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)

    def _read(self):
        data, anc, _flags, addr = self.sock.recvmsg(65535, socket.CMSG_SPACE(AUXDATA.size))
        for level, kind, raw in anc:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= AUXDATA.size:
                status, _len, _snap, _mac, _net, tci, tpid = AUXDATA.unpack_from(raw)
                if status & TP_STATUS_VLAN_VALID:
                    if not status & TP_STATUS_VLAN_TPID_VALID:
                        tpid = ETH_P_8021Q
                    data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
        return data, addr

    def recv(self, match=lambda f: True, timeout=2.0):
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            data, addr = self._read()
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if match(data):
                return data
        return None
