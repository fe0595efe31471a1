"""The data plane's enums and limits for the Python side, taken from types.pxd when built.

The control plane imports these instead of copying numbers: a value changed in
types.pxd reaches the model, the shell and the tests with the next build. Names are
given here only where C has none (an enum's words for `show`); each such list is checked
against the enum's count when the module loads.
"""
from rlb.core cimport types as T
from rlb.core cimport capture as C
from rlb.core.xmit cimport LPORT_MAX, LPORT_MIN

# Route scopes (`ip route ... scope NAME`), their words and codes (enum RouteScope)
GLOBAL, LINK, HOST, KNI_HOST = "global", "link", "host", "kni_host"
SCOPE_CODE = {GLOBAL: T.SCOPE_GLOBAL, LINK: T.SCOPE_LINK, HOST: T.SCOPE_HOST,
              KNI_HOST: T.SCOPE_KNI_HOST}
SCOPES = tuple(sorted(SCOPE_CODE, key=SCOPE_CODE.get))
assert list(SCOPE_CODE.values()) == list(range(T.SCOPE_COUNT)), "a RouteScope without a name"

# LVS connection states (`ipvsadm -lnc`), indexed by enum ConnState.
_STATE_NAME = {T.CS_NONE: "NONE", T.CS_ESTABLISHED: "ESTABLISHED", T.CS_SYN_SENT: "SYN_SENT",
               T.CS_SYN_RECV: "SYN_RECV", T.CS_FIN_WAIT: "FIN_WAIT", T.CS_TIME_WAIT: "TIME_WAIT",
               T.CS_CLOSE: "CLOSE", T.CS_CLOSE_WAIT: "CLOSE_WAIT", T.CS_LAST_ACK: "LAST_ACK",
               T.CS_LISTEN: "LISTEN", T.CS_SYNACK: "SYNACK", T.CS_UDP: "UDP"}
CONN_STATES = tuple(_STATE_NAME[i] for i in range(T.CS_MAX))
# Seconds per state, DPVS's defaults (LVS's are longer: ESTABLISHED 900, TIME_WAIT 120);
# `ipvsadm --set tcp tcpfin udp` changes ESTABLISHED, FIN_WAIT and UDP, as in LVS
DEFAULT_TIMEOUTS = {"NONE": 2, "ESTABLISHED": 90, "SYN_SENT": 3, "SYN_RECV": 30,
                    "FIN_WAIT": 7, "TIME_WAIT": 7, "CLOSE": 3, "CLOSE_WAIT": 7,
                    "LAST_ACK": 7, "LISTEN": 120, "SYNACK": 30, "UDP": 300}
assert tuple(DEFAULT_TIMEOUTS) == CONN_STATES
TIMEOUT_NAMES = {"tcp": "ESTABLISHED", "tcpfin": "FIN_WAIT", "udp": "UDP"}
TICKS_PER_SEC = T.TICKS_PER_SEC

# Neighbour states as `dpip neigh show` names them (NONE: an empty slot).
NEIGH_STATES = {T.NEIGH_INCOMPLETE: "INCOMPLETE", T.NEIGH_REACHABLE: "REACHABLE",
                T.NEIGH_STATIC: "PERMANENT"}

# svc_t.flags the control plane sets (svc_set's flags=)
SVC_F_PERSISTENT = T.SVC_F_PERSISTENT
SVC_F_MATCH = T.SVC_F_MATCH
SVC_F_CLIENT_OWNER = T.SVC_F_CLIENT_OWNER

# Sizes fixed at build time, and the Engine's default table sizes
MAX_PORTS = T.MAX_PORTS
MAX_WORKERS = T.MAX_WORKERS
MAX_MODES = T.MAX_MODES
MAX_SCHEDS = T.MAX_SCHEDS
MAX_DESTS_PER_SVC = T.MAX_DESTS_PER_SVC
MAX_LADDRS_PER_SVC = T.MAX_LADDRS_PER_SVC
MAX_MATCH_SVCS = T.MAX_MATCH_SVCS
DEFAULT_SVC_CAP = T.DEFAULT_SVC_CAP
DEFAULT_DEST_CAP = T.DEFAULT_DEST_CAP
# The local ports FNAT/SNAT take per local address (xmit.pxd's local-port formula)
LPORT_RANGE = (LPORT_MIN, LPORT_MAX)
# Health probes' local ports: PROBE_PORT_MIN + a real server's dest slot (rlb.health.path)
PROBE_PORT_MIN = T.PROBE_PORT_MIN
PROBE_PORTS = T.PROBE_PORTS
# Packet capture (capture.pxd): bytes kept of a frame, records between workers and daemon
CAPTURE_SNAP = C.CAP_SNAP
CAPTURE_RING = C.CAP_RING
