"""Where an instance keeps its control socket and files."""
import os

RUN_DIR = os.environ.get("RLB_RUN_DIR", "/run/rlb")
DEFAULT_INSTANCE = "rlb"


def socket_path(instance: str) -> str:
    return os.path.join(RUN_DIR, f"{instance}.sock")


def valid_instance(name: str) -> bool:
    return 0 < len(name) <= 32 and name.replace("-", "").replace("_", "").isalnum()
