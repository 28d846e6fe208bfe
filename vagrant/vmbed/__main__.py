"""The two test-bed VMs by hand: boot them, set up SSH, provision if asked, print
how to reach them, and keep them until Ctrl-C (or --hold seconds).

    cd vagrant && sudo python3 -m vmbed [--provision node2,node1] [--install node1] [--image-dir DIR]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from .bed import Bed, Cable, find_image
from .log import HarnessError, log


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m vmbed", description=__doc__.split("\n")[0])
    ap.add_argument("--image-dir", help="image from build-box.sh (default: build or reuse it)")
    ap.add_argument("--work", help="work directory (default: a new temporary one; kept)")
    ap.add_argument("--provision", default="", help="hosts to provision fully (provision.sh), comma-separated")
    ap.add_argument("--install", default="", help="hosts to provision with OVSNET_PROVISION=install")
    ap.add_argument("--hold", type=float, default=0, help="stop the VMs after this many seconds (default: at Ctrl-C)")
    args = ap.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ovsnet-vm-hand."))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        bed = Bed(find_image(args.image_dir), work, ("node2", "node1"),
                  (Cable("trunk", "node2", "node1"), Cable("trunk2", "node2", "node1")))
        with bed:
            bed.boot()
            bed.setup_ssh()
            hosts = {h: {} for h in args.provision.split(",") if h}
            hosts.update({h: {"OVSNET_PROVISION": "install"} for h in args.install.split(",") if h})
            if hosts:
                bed.provision(hosts)
            for name in bed.vms:
                log(f"{name}: {' '.join(bed.ssh_argv(name, 'root'))}")
            log(f"or: ssh -F {work / 'ssh_config'} node1; timings: {bed.timing_line()}")
            log("Ctrl-C stops the VMs" if not args.hold else f"stopping the VMs in {args.hold:.0f} s")
            deadline = time.monotonic() + args.hold if args.hold else float("inf")
            while time.monotonic() < deadline:
                for vm in bed.vms.values():
                    vm.check_alive()
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    except HarnessError as exc:
        log(f"error: {exc}")
        return 1
    log(f"VMs stopped; work directory {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
