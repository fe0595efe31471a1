"""SNAT match services (ipvsadm -H): `proto=tcp,src-range=A-B,dst-range=A-B:P1-P2,iif=DEV,oif=DEV`
as DPVS writes them, parsed into ranges the data plane compares (svc_t.match)."""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from rlb.model.model import CommandError

PROTOS = {"tcp": 6, "udp": 17, "icmp": 1}
KEYS = ("proto", "src-range", "dst-range", "iif", "oif")
ANY = (IPv4Address(0), IPv4Address(0xFFFFFFFF), 0, 65535)


@dataclass(frozen=True)
class Match:
    proto: int = 0                       # 0: TCP, UDP and ICMP echo
    src: tuple = ANY                     # (lo, hi, port lo, port hi)
    dst: tuple = ANY
    iif: str | None = None
    oif: str | None = None

    def __str__(self) -> str:
        """The canonical text: one spelling per match, so it can key the service."""
        parts = []
        if self.proto:
            parts.append(f"proto={next(k for k, v in PROTOS.items() if v == self.proto)}")
        for key, rng in (("src-range", self.src), ("dst-range", self.dst)):
            if rng != ANY:
                text = f"{rng[0]}-{rng[1]}"
                if rng[2:] != (0, 65535):
                    text += f":{rng[2]}-{rng[3]}"
                parts.append(f"{key}={text}")
        parts += [f"{k}={v}" for k, v in (("iif", self.iif), ("oif", self.oif)) if v]
        return ",".join(parts)

    def engine_dict(self, port_index) -> dict:
        return {"src_lo": int(self.src[0]), "src_hi": int(self.src[1]),
                "dst_lo": int(self.dst[0]), "dst_hi": int(self.dst[1]),
                "sport_lo": self.src[2], "sport_hi": self.src[3],
                "dport_lo": self.dst[2], "dport_hi": self.dst[3], "proto": self.proto,
                "iif": port_index(self.iif) + 1 if self.iif else 0,
                "oif": port_index(self.oif) + 1 if self.oif else 0}


def _range(key: str, text: str) -> tuple:
    """A-B[:P1-P2], A[:P], or 0.0.0.0:P1-P2 (DPVS)."""
    addrs, _, ports = text.partition(":")
    lo, _, hi = addrs.partition("-")
    try:
        lo_ip = IPv4Address(lo)
        hi_ip = IPv4Address(hi) if hi else lo_ip
        if ports:
            plo, _, phi = ports.partition("-")
            p = (int(plo), int(phi) if phi else int(plo))
        else:
            p = (0, 65535)
    except ValueError:
        raise CommandError(f"bad {key} {text!r}: expected A.B.C.D-A.B.C.D[:PORT-PORT]") from None
    if lo_ip == hi_ip == IPv4Address(0):
        lo_ip, hi_ip = ANY[0], ANY[1]           # 0.0.0.0 means any address (DPVS)
    if lo_ip > hi_ip or not 0 <= p[0] <= p[1] <= 65535:
        raise CommandError(f"bad {key} {text!r}: empty range")
    return (lo_ip, hi_ip, p[0], p[1])


def parse_match(text: str, ports=None) -> Match:
    """Parse and check a match; `ports` (names) checks iif/oif when given."""
    fields = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in KEYS:
            raise CommandError(f"bad match item {item!r}: use {', '.join(KEYS)} as key=value")
        if key in fields:
            raise CommandError(f"match gives {key} twice")
        fields[key] = value
    if not fields:
        raise CommandError("an empty match would take every packet: give at least one item")
    proto = 0
    key = KEYS[0]                       # proto
    if key in fields:
        proto = PROTOS.get(fields[key].lower())
        if proto is None:
            raise CommandError(f"bad {key} {fields[key]!r}: tcp, udp or icmp")
    src = _range("src-range", fields["src-range"]) if "src-range" in fields else ANY
    dst = _range("dst-range", fields["dst-range"]) if "dst-range" in fields else ANY
    for key in ("iif", "oif"):
        if key in fields and ports is not None and fields[key] not in ports:
            raise CommandError(f"{key}: no such port {fields[key]!r}")
    return Match(proto, src, dst, fields.get("iif"), fields.get("oif"))
