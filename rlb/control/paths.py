"""Where an instance keeps its control socket and files."""
import os

RUN_DIR = os.environ.get("RLB_RUN_DIR", "/run/rlb")
STATE_DIR = "/var/lib/rlb"
DEFAULT_INSTANCE = "rlb"
COMMITS = "commits"                 # the history's directory in the state directory


def socket_path(instance: str) -> str:
    return os.path.join(RUN_DIR, f"{instance}.sock")


def valid_instance(name: str) -> bool:
    return 0 < len(name) <= 32 and name.replace("-", "").replace("_", "").isalnum()


def state_dir(instance: str, base: str | None = None) -> str:
    """/var/lib/rlb/INSTANCE (RLB_STATE_DIR instead of /var/lib/rlb), private to root:
    the ssh host key, the commits kept for rollback."""
    path = os.path.join(base or os.environ.get("RLB_STATE_DIR", STATE_DIR), instance)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def commits_dir(instance: str, base: str | None = None) -> str:
    """Where the instance's commit history lives (rlb.control.commit.Store)."""
    return os.path.join(state_dir(instance, base), COMMITS)


def frr_dir(instance: str) -> str:
    """Where the instance's FRR daemons keep their files (rlb.routing.router): under the
    run directory, which the daemons (user frr) may walk into."""
    return os.path.join(RUN_DIR, f"{instance}-frr")


def ha_dir(instance: str) -> str:
    """Where the instance's keepalived keeps its files (rlb.ha.keepalived)."""
    return os.path.join(RUN_DIR, f"{instance}-ha")


def bgp_dir(instance: str) -> str:
    """Where the instance's exabgp keeps its files (rlb.routing.exabgp)."""
    return os.path.join(RUN_DIR, f"{instance}-bgp")


def tools_dir(instance: str) -> str:
    """Where the instance's `dpip` and `ipvsadm` commands are, for the commands rlb runs
    (quorum-up, quorum-down): the tutorial's tools, aimed at this instance."""
    return os.path.join(RUN_DIR, f"{instance}-bin")
