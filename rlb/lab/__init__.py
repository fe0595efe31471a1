"""Network-namespace labs: the tutorial's scenarios as topologies (`rlb lab ...`)."""

from rlb.lab.manage import down, exec_node, start_lb, status, stop_lb, up
from rlb.lab.state import LabError

__all__ = ["LabError", "down", "exec_node", "start_lb", "status", "stop_lb", "up"]
