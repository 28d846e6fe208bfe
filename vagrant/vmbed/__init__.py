"""vmbed: the ovsnet test bed on plain QEMU (software emulation is enough).

VMs of build-box.sh's image, joined by cables (socket netdevs over UDP), driven
through the QEMU guest agent (commands with timeouts, reboots) and QMP (links
down and up), reachable over SSH from this machine. See bed.py for a scenario's
shape and vagrant/README.md, "Writing a VM scenario".
"""

from .agent import Agent, Result
from .bed import Bed, Cable, find_image, free_port
from .capture import Capture, parse_capture
from .log import Checks, HarnessError, log
from .machine import Nic, Vm
from .qmp import Qmp
from .tree import GUEST_SRC, REPO

__all__ = ["Agent", "Bed", "Cable", "Capture", "Checks", "GUEST_SRC", "HarnessError", "Nic", "Qmp", "REPO", "Result", "Vm",
           "find_image", "free_port", "log", "parse_capture"]
