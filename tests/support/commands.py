"""Running ip and ovs-vsctl: the independent tools that set up and check a host.

Results are read with these rather than through ovsnet's own readers, so a
bug in ovsnet cannot hide itself.
"""

from __future__ import annotations

import json
import subprocess


def sh(*argv: str, check: bool = True, input: str | None = None, timeout: float | None = 120) -> str:
    """Run argv (never through a shell) and return its stdout.

    A failure raises AssertionError so that pytest shows the command and its
    stderr; the argument list is cut short because a benchmark's ovs-vsctl
    transaction can have thousands of arguments.
    """
    p = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and p.returncode != 0:
        shown = " ".join(argv[:8]) + (" ..." if len(argv) > 8 else "")
        raise AssertionError(f"{shown} failed ({p.returncode}): {p.stderr.strip()[:1000]}")
    return p.stdout


def ns_json(ns: str, *argv: str):
    """`ip -n NS -j ARGV...`, parsed; an empty answer is an empty list."""
    return json.loads(sh("ip", "-n", ns, "-j", *argv) or "[]")


def vsctl(remote: str, *args: str, timeout: float = 30, wait: bool = True) -> str:
    """ovs-vsctl against one private OVS; `wait=False` does not wait for ovs-vswitchd."""
    return sh("ovs-vsctl", f"--db={remote}", f"--timeout={timeout:g}", *([] if wait else ["--no-wait"]), *args,
              timeout=timeout + 30)
