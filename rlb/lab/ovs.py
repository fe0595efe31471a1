"""Open vSwitch as a lab peer: one OVS, userspace (`netdev`) datapath, in one namespace.

The labs where the LB has an LACP bond, a VLAN trunk or a GRE tunnel need, at the other
end of each link, something that speaks 802.3ad, 802.1Q and GRE; this kernel has none
of the bonding, 8021q, gre or openvswitch modules. OVS's userspace datapath needs none
of them: it reads and writes its ports with packet sockets, its internal ports are tap
devices, and it does LACP, VLANs and GRE itself (Debian 12's openvswitch-switch 3.1).

One `Ovs` is one ovsdb-server and one ovs-vswitchd, started inside the namespace
(`ip netns exec`) with every file in the directory it is given: database, sockets
(db.sock, db.ctl, vs.ctl, BRIDGE.mgmt), pid files and logs. OVS_RUNDIR, OVS_LOGDIR and
OVS_DBDIR point there too, or the tools would look under /var/run/openvswitch; nothing
of the host's own OVS (if any) is touched or seen. Both daemons `--detach`: the command
returns once the daemon is up (ovs-vswitchd once it has read the database); start() then
checks that each answers on its control socket. Start-up takes about 0.2 s. stop()
signals only the PIDs its pid files hold, and only when /proc says that process is the
daemon of this very directory (a PID reused by another process is never signalled).

What OVS needs of the namespace, as measured here:

- Members (bond slaves, trunk and access veths, a tunnel's underlay) are kernel devices
  OVS reads with packet sockets; the namespace's kernel still sees them too. With
  arp_ignore at 0 it answers ARP for the namespace's addresses (those of the internal
  ports) on a member, with the member's MAC: the peer then sends to a MAC no OVS port
  has and nothing gets through. `attach()` sets arp_ignore=8 (never answer) and
  disables IPv6 on a member, sets the lab's `ethtool -K tx off gro off` and brings it up.
- Internal ports of a netdev bridge (and a bridge's own port) are tap devices, created
  down: they need `ip link set up` (and an address). Their tx checksum offload is off
  already; `internal()` turns gro off too, as on every lab veth, and IPv6 off unless
  asked (no DAD/MLD noise on trunks and tunnels).
- GRE (userspace tunnelling): the tunnel's local IP must be on the internal port of
  the bridge that holds the underlay device ("br-phy"), so that OVS's own route table
  (`ovs/route/show`, learnt from the namespace's kernel routes) sends the encapsulated
  packets there and the packets to that IP are popped (`tnl_pop`). The GRE port and the
  internal port of the "host behind the tunnel" are on a second bridge ("br-int"). OVS
  learns the underlay neighbour by snooping ARP on br-phy (`tnl/arp/show`); when it
  knows none it ARPs itself and drops the packet that needed it.
  `type=gre` alone is Ethernet over GRE (protocol 0x6558); a Linux-style (and DPVS's
  `dpip tunnel ... mode gre`) tunnel carries IP (0x0800): that is
  `options:packet_type=legacy_l3`, and then a bridge's NORMAL action cannot deliver to
  an Ethernet port, so `gre_tunnel()` installs two flows (GRE -> internal port with its
  MAC as destination, internal port -> GRE, OVS popping the Ethernet header) and turns
  ARP off on the internal port (no neighbour to resolve across an L3 tunnel).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rlb.lab import state
from rlb.lab.netns import ip_batch, run, sysctl
from rlb.lab.state import LabError

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovs-ofctl")
DAEMONS = ("ovs-vswitchd", "ovsdb-server")     # stop order: the switch first
START_WAIT = 10.0       # seconds for a daemon to answer on its control socket
STOP_WAIT = 5.0         # ... to exit after SIGTERM
CALL_TIMEOUT = 15.0     # one ovs-vsctl (it waits for ovs-vswitchd to apply), ovs-appctl
BOND_MODES = ("balance-tcp", "balance-slb", "active-backup")
ARP_IGNORE_ALL = "8"    # net.ipv4.conf.DEV.arp_ignore: never answer ARP on DEV
L3_FLOW_PRIORITY = 100  # gre_tunnel(layer3=True)'s flows, above the bridge's NORMAL


def installed() -> list[str]:
    """The OVS tools (and schema) missing on this machine; [] when OVS is usable."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not SCHEMA.is_file():
        missing.append(str(SCHEMA))
    return missing


@dataclass
class Ovs:
    """The OVS of one namespace `netns`, every file of it in `rundir` (created by start(),
    removed by stop()). `procs` holds, once started, a record per daemon as the lab's
    state file keeps them ({"pid", "start", "kind", "node"}: rlb.lab.state.terminate
    stops them by PID and start time)."""
    netns: str
    rundir: Path
    procs: dict[str, dict] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.rundir = Path(self.rundir).resolve()

    # --- files ------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.rundir / name

    @property
    def db(self) -> str:
        """The database's socket, as OVS's tools name it."""
        return f"unix:{self.path('db.sock')}"

    def _pidfile(self, daemon: str) -> Path:
        return self.path("vs.pid" if daemon == "ovs-vswitchd" else "db.pid")

    def _log(self, daemon: str) -> Path:
        return self.path("vs.log" if daemon == "ovs-vswitchd" else "db.log")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of both daemons' logs, for an error message."""
        out = []
        for daemon in DAEMONS:
            with contextlib.suppress(OSError):
                text = self._log(daemon).read_text(errors="replace").splitlines()
                out.append(f"--- {daemon} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    # --- commands in the namespace ---------------------------------------------------

    def exec(self, *args: str, timeout: float = CALL_TIMEOUT) -> str:
        """Run a command in the namespace with OVS's directories pointing at ours."""
        d = str(self.rundir)
        return run("ip", "netns", "exec", self.netns, "env", f"OVS_RUNDIR={d}",
                   f"OVS_LOGDIR={d}", f"OVS_DBDIR={d}", *args, timeout=timeout)

    def vsctl(self, *args: str, timeout: float = CALL_TIMEOUT) -> str:
        """ovs-vsctl on our database; it returns once ovs-vswitchd has applied the change."""
        return self.exec("ovs-vsctl", f"--db={self.db}", f"--timeout={int(timeout)}",
                         *args, timeout=timeout + 5)

    def appctl(self, *args: str, timeout: float = CALL_TIMEOUT) -> str:
        """ovs-appctl to our ovs-vswitchd (lacp/show, bond/show, ovs/route/show ...)."""
        return self.exec("ovs-appctl", "-t", str(self.path("vs.ctl")),
                         f"--timeout={int(timeout)}", *args, timeout=timeout + 5)

    def ofctl(self, command: str, bridge: str, *args: str) -> str:
        """ovs-ofctl COMMAND on one bridge (its management socket BRIDGE.mgmt is ours)."""
        return self.exec("ovs-ofctl", command, f"unix:{self.path(bridge + '.mgmt')}", *args)

    def ip(self, *lines: str) -> None:
        """`ip` commands in the namespace (one process for all of them)."""
        ip_batch(self.netns, list(lines))

    # --- the daemons ---------------------------------------------------------------

    def start(self, timeout: float = START_WAIT) -> Ovs:
        """A fresh database and both daemons; returns once each answers. On failure
        whatever started is stopped again and the error carries the logs."""
        if missing := installed():
            raise LabError(f"Open vSwitch is missing ({', '.join(missing)}): "
                           "apt-get install openvswitch-switch")
        if self.running():
            raise LabError(f"an OVS already runs from {self.rundir}")
        self.rundir.mkdir(parents=True, exist_ok=True)
        for name in ("conf.db", "db.sock", "db.ctl", "vs.ctl", "db.pid", "vs.pid"):
            self.path(name).unlink(missing_ok=True)
        try:
            self.exec("ovsdb-tool", "create", str(self.path("conf.db")), str(SCHEMA))
            self._daemon("ovsdb-server", [str(self.path("conf.db")),
                                          f"--remote=punix:{self.path('db.sock')}",
                                          f"--unixctl={self.path('db.ctl')}"], timeout)
            self.vsctl("--no-wait", "init")
            self._daemon("ovs-vswitchd", [self.db, f"--unixctl={self.path('vs.ctl')}"],
                         timeout)
        except LabError as e:
            self.stop(remove=False)
            raise LabError(f"OVS in {self.netns}: {e}\n{self.log_tail()}") from None
        return self

    def _daemon(self, daemon: str, args: list[str], timeout: float) -> None:
        # --detach returns once the daemon is up (and chdirs it to /: every path here
        # is absolute); -vconsole:off, or its first messages ("opened log file") would
        # still reach our stderr.
        self.exec(daemon, *args, f"--pidfile={self._pidfile(daemon)}", "--detach",
                  f"--log-file={self._log(daemon)}", "-vconsole:off", timeout=timeout)
        ctl = self.path("vs.ctl" if daemon == "ovs-vswitchd" else "db.ctl")
        deadline = time.monotonic() + timeout
        while True:
            pid = self.pid(daemon)
            if pid is not None:
                self.procs[daemon] = {**state.record(pid), "kind": daemon, "node": self.netns}
                try:
                    self.exec("ovs-appctl", "-t", str(ctl), "--timeout=2", "version",
                              timeout=5)
                    return
                except LabError:
                    pass
            if time.monotonic() >= deadline:
                raise LabError(f"{daemon} did not answer on {ctl} in {timeout:.0f}s")
            time.sleep(0.05)

    def pid(self, daemon: str) -> int | None:
        """The PID in the daemon's pid file when that process is alive and is the daemon
        of this directory (its command line names our pid file); else None."""
        pidfile = self._pidfile(daemon)
        try:
            pid = int(pidfile.read_text().split()[0])
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        if os.path.basename(argv[0]).decode(errors="replace") != daemon:
            return None
        if f"--pidfile={pidfile}".encode() not in argv:
            return None
        return pid if state.proc_start(pid) is not None else None

    def running(self) -> bool:
        return any(self.pid(d) is not None for d in DAEMONS)

    def stop(self, timeout: float = STOP_WAIT, remove: bool = True) -> None:
        """SIGTERM (then SIGKILL) the daemons by the PIDs of their pid files, the switch
        first; then remove the directory (remove=False keeps it, logs included)."""
        for daemon in DAEMONS:
            pid = self.pid(daemon)
            rec = self.procs.pop(daemon, None)
            if pid is not None:
                state.terminate([state.record(pid)], timeout)
            elif rec is not None and state.alive(rec):
                # Its pid file is gone (removed by hand?): the PID recorded at start,
                # with its start time, is still this very process.
                state.terminate([rec], timeout)
        if remove:
            shutil.rmtree(self.rundir, ignore_errors=True)

    # --- ports -------------------------------------------------------------------------

    def bridge(self, name: str = "br0") -> str:
        """A bridge of the userspace datapath (NORMAL switching, no STP)."""
        self.vsctl("--may-exist", "add-br", name, "--", "set", "bridge", name,
                   "datapath_type=netdev")
        return name

    def attach(self, *devs: str) -> None:
        """Make kernel devices of the namespace ready to be OVS members: the lab's
        offloads off, the kernel's ARP answers and IPv6 off on them, up."""
        for dev in devs:
            self.exec("ethtool", "-K", dev, "tx", "off", "gro", "off")
        sysctl(self.netns, [(f"net/ipv4/conf/{dev}/arp_ignore", ARP_IGNORE_ALL)
                            for dev in devs]
               + [(f"net/ipv6/conf/{dev}/disable_ipv6", "1") for dev in devs])
        self.ip(*(f"link set dev {dev} up" for dev in devs))

    def port(self, bridge: str, dev: str, *settings: str) -> str:
        """A kernel device (a veth end) as a port: `port(br, "eth1", "tag=100")` an
        access port, `port(br, "eth1", "trunks=100,200")` a trunk (see trunk())."""
        self.attach(dev)
        self.vsctl("add-port", bridge, dev, *settings)
        return dev

    def trunk(self, bridge: str, dev: str, vlans: tuple[int, ...] | list[int]) -> str:
        """A VLAN trunk port carrying `vlans` (tagged; untagged frames are dropped)."""
        return self.port(bridge, dev, "vlan_mode=trunk",
                         "trunks=" + ",".join(str(v) for v in vlans))

    def internal(self, bridge: str, name: str, address: str | None = None,
                 tag: int | None = None, ipv6: bool = False) -> str:
        """An internal port (a tap the namespace's kernel sees), up, with an address
        (CIDR) if given; with `tag` an access port of that VLAN."""
        settings = [f"tag={tag}"] if tag is not None else []
        self.vsctl("add-port", bridge, name, *settings, "--", "set", "interface", name,
                   "type=internal")
        self.exec("ethtool", "-K", name, "tx", "off", "gro", "off")
        if not ipv6:
            sysctl(self.netns, [(f"net/ipv6/conf/{name}/disable_ipv6", "1")])
        lines = [f"addr add {address} dev {name}"] if address else []
        self.ip(*lines, f"link set dev {name} up")
        return name

    def address(self, dev: str, cidr: str) -> None:
        """An address on a bridge's own port (also a tap), which goes up."""
        self.ip(f"addr add {cidr} dev {dev}", f"link set dev {dev} up")

    def mac(self, dev: str) -> str:
        """A device's MAC address (`ip netns exec` shows the namespace's /sys)."""
        return self.exec("cat", f"/sys/class/net/{dev}/address").strip()

    def bond(self, bridge: str, name: str, members: tuple[str, ...] | list[str],
             mode: str = "balance-tcp", lacp: str = "active", fast: bool = True,
             settings: tuple[str, ...] = ()) -> str:
        """An LACP (802.3ad) bond of kernel devices: `lacp` active/passive/off, `mode`
        balance-tcp, balance-slb or active-backup, `fast` the 1 s LACPDU rate (a member
        expires after 3 s without one), `settings` more column=value pairs of the port
        (other_config:lacp-fallback-ab=true ...). Two members at least (OVS's rule)."""
        if mode not in BOND_MODES:
            raise LabError(f"bond mode {mode!r}: one of {', '.join(BOND_MODES)}")
        if len(members) < 2:
            raise LabError("a bond needs two members at least (add-port for one)")
        self.attach(*members)
        self.vsctl("add-bond", bridge, name, *members, f"lacp={lacp}", f"bond_mode={mode}",
                   f"other_config:lacp-time={'fast' if fast else 'slow'}", *settings)
        return name

    def gre(self, bridge: str, name: str, remote_ip: str, local_ip: str | None = None,
            key: int | None = None, layer3: bool = False) -> str:
        """A GRE port (needs an underlay: see gre_tunnel()). layer3: IP over GRE
        (protocol 0x0800, as Linux's and DPVS's gre) instead of Ethernet (0x6558)."""
        opts = [f"options:remote_ip={remote_ip}"]
        if local_ip:
            opts.append(f"options:local_ip={local_ip}")
        if key is not None:
            opts.append(f"options:key={key}")
        if layer3:
            opts.append("options:packet_type=legacy_l3")
        self.vsctl("add-port", bridge, name, "--", "set", "interface", name, "type=gre",
                   *opts)
        return name

    def gre_tunnel(self, underlay: str, local: str, remote_ip: str, inner: str,
                   name: str = "gre0", host: str = "gre-host", key: int | None = None,
                   layer3: bool = True, phy: str = "br-phy", integ: str = "br-int") -> str:
        """A GRE tunnel to `remote_ip` over the kernel device `underlay`, `local` (CIDR)
        the tunnel's own address on the underlay; the far end of the tunnel is the
        internal port `host` with address `inner` (CIDR). Returns `host`.

            underlay --[phy, its own port holding `local`]   (OVS routes and pops here)
            name (gre) --[integ]-- host (`inner`)            (the host behind the tunnel)
        """
        local_ip = str(ipaddress.ip_interface(local).ip)
        self.bridge(phy)
        self.port(phy, underlay)
        self.exec("ethtool", "-K", phy, "tx", "off", "gro", "off")
        sysctl(self.netns, [(f"net/ipv6/conf/{phy}/disable_ipv6", "1")])
        self.address(phy, local)
        self.bridge(integ)
        self.gre(integ, name, remote_ip, local_ip, key, layer3)
        self.internal(integ, host, inner)
        if layer3:
            self.ip(f"link set dev {host} arp off")
            mac = self.mac(host)
            prio = f"priority={L3_FLOW_PRIORITY}"
            self.ofctl("add-flow", integ, f"{prio},in_port={name},"
                                          f"actions=mod_dl_dst:{mac},output:{host}")
            self.ofctl("add-flow", integ, f"{prio},in_port={host},ip,actions=output:{name}")
        self.wait_route(remote_ip)
        return host

    def wait_route(self, ip: str, timeout: float = 5.0) -> str:
        """The device OVS's own route table sends `ip` to, once it has one (OVS learns
        the namespace's routes from netlink, a moment after `ip addr add`)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(LabError):
                out = self.appctl("ovs/route/lookup", ip)
                if m := re.search(r"^dev (\S+)", out, re.M):
                    return m.group(1)
            if time.monotonic() >= deadline:
                raise LabError(f"OVS in {self.netns} has no route to {ip}:\n"
                               + self.appctl("ovs/route/show"))
            time.sleep(0.05)

    # --- state -------------------------------------------------------------------------

    def tnl_neighbors(self) -> dict[str, tuple[str, str]]:
        """OVS's tunnel neighbour cache (`tnl/arp/show`): IP -> (MAC, bridge)."""
        out = {}
        for line in self.appctl("tnl/arp/show").splitlines():
            f = line.split()
            if len(f) == 3 and re.fullmatch(r"[0-9a-f:]{17}", f[1]):
                out[f[0]] = (f[1], f[2])
        return out

    def lacp_status(self, bond: str) -> dict:
        """`lacp/show BOND` as data (parse_lacp_show)."""
        return parse_lacp_show(self.appctl("lacp/show", bond))

    def bond_status(self, bond: str) -> dict:
        """`bond/show BOND` as data (parse_bond_show)."""
        return parse_bond_show(self.appctl("bond/show", bond))


# --- ovs-appctl's texts ------------------------------------------------------------------


def _fields(lines: list[str]) -> dict[str, str]:
    """`  key: value` lines (keys may hold spaces: "partner sys_id")."""
    out = {}
    for line in lines:
        key, sep, value = line.strip().partition(": ")
        if sep:
            out[key] = value.strip()
        elif line.strip().endswith(":"):
            out[line.strip()[:-1]] = ""
    return out


def parse_lacp_show(text: str) -> dict:
    """OVS 3.1's `lacp/show BOND`:

        {"active": True, "negotiated": True, "sys_id": "3a:..", "lacp_time": "fast", ...,
         "members": {"b0": {"status": "current" | "expired" | "defaulted",
                            "attached": True, "partner_sys_id": "42:..",
                            "actor_state": [...], "partner_state": [...], ...}}}

    A member is in the aggregate when it is "current" and attached; "defaulted" means
    no LACPDU from a partner (its partner sys_id is then 00:00:00:00:00:00)."""
    blocks = re.split(r"^member: ", text, flags=re.M)
    head = _fields(blocks[0].splitlines()[1:])
    words = head.get("status", "").split()
    out: dict = {k.replace(" ", "_"): v for k, v in head.items() if k != "status"}
    out.update(active="active" in words, negotiated="negotiated" in words, members={})
    for block in blocks[1:]:
        first, *rest = block.splitlines()
        name, _, status = first.rpartition(": ")
        st = status.split()
        f = {k.replace(" ", "_"): v for k, v in _fields(rest).items()}
        for k in ("actor_state", "partner_state"):
            f[k] = f.get(k, "").split()
        out["members"][name] = {**f, "status": st[0] if st else "",
                                "attached": "attached" in st}
    return out


def parse_bond_show(text: str) -> dict:
    """OVS 3.1's `bond/show BOND`:

        {"bond_mode": "balance-tcp", "lacp_status": "negotiated" | "configured" | "off",
         "active_member": "b1" | None, ...,
         "members": {"b0": {"enabled": True, "active": False, "may_enable": True}}}"""
    blocks = re.split(r"^member ", text, flags=re.M)
    head = _fields(blocks[0].splitlines()[1:])
    out: dict = {k.replace(" ", "_").replace("-", "_"): v for k, v in head.items()}
    m = re.search(r"\((\S+)\)$", head.get("active member mac", ""))
    out["active_member"] = m.group(1) if m and m.group(1) != "none" else None
    out["members"] = {}
    for block in blocks[1:]:
        first, *rest = block.splitlines()
        name, _, status = first.rpartition(": ")
        f = _fields(rest)
        out["members"][name] = {"enabled": status.strip() == "enabled",
                                "active": any(r.strip() == "active member" for r in rest),
                                "may_enable": f.get("may_enable") == "true"}
    return out
