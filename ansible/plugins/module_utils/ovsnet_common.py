# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""What the ovsnet modules share: where the host's objects live, and ovsnet's
errors as clean module failures.

The modules import the ovsnet library on the target (ovsnet.api); they run
with the Python of the venv the rollout playbook installs ovsnet into
(ansible_python_interpreter). Nothing here starts a process.
"""

from __future__ import annotations

import traceback

# ovsnet's exit codes (ovsnet/errors.py), named for a failure's `reason`.
REASONS = {
    1: "drift or verify mismatch",
    2: "bad input",
    3: "backend error",
    4: "rolled back",
    5: "refused",
    6: "locked",
    70: "internal error",
}

# Where the host's objects live; every one defaults to the host's own (a real
# host needs none of them; the lab points them at a simulated host).
TARGET_ARGS = dict(
    topology=dict(type="path", required=True),
    host=dict(type="str", required=True),
    db=dict(type="str"),
    netns=dict(type="str"),
    state_dir=dict(type="path"),
    resolv_conf=dict(type="path"),
    docker_host=dict(type="str"),
    datapath=dict(type="str", choices=["system", "netdev"]),
    gateway_timeout=dict(type="float"),
    ovs_timeout=dict(type="float"),
    docker_timeout=dict(type="float"),
)

_IMPORT_ERROR = None
try:
    from ovsnet import api
    from ovsnet.errors import OvsnetError
except ImportError:  # reported by require_ovsnet, with the interpreter that lacks it
    api = None
    OvsnetError = Exception
    _IMPORT_ERROR = traceback.format_exc()


def require_ovsnet(module):
    if api is None:
        import sys

        module.fail_json(
            msg=f"ovsnet is not installed for {sys.executable}: run the rollout playbook's install step, "
                "or point ansible_python_interpreter at the venv that has it",
            exception=_IMPORT_ERROR, exit_code=2, reason="bad input",
        )


def load(module):
    """The checked topology and the host's target, or a module failure with ovsnet's message."""
    require_ovsnet(module)
    p = module.params
    try:
        checked = api.load(p["topology"])
        where = api.target(
            checked, p["host"], db=p["db"], netns=p["netns"], state_dir=p["state_dir"], resolv_conf=p["resolv_conf"],
            gateway_timeout=p["gateway_timeout"], docker_host=p["docker_host"], datapath=p["datapath"],
            ovs_timeout=p["ovs_timeout"], docker_timeout=p["docker_timeout"],
        )
    except OvsnetError as exc:
        fail(module, exc)
    return checked, where


def fail(module, exc, **result):
    """ovsnet's own message, its exit code and what that code means; never a traceback."""
    code = getattr(exc, "exit_code", 70)
    reason = REASONS.get(code, "error")
    module.fail_json(msg=f"ovsnet {reason} (exit {code}): {exc}", exit_code=code, reason=reason,
                     error=type(exc).__name__, **result)


def plan_diff(plan, verb="up"):
    """The plan as Ansible's before/after: one line per resource it touches, in plan order."""
    before, after = [], []
    for c in plan.changes:
        before.append(f"{c.resource}: {c.before if c.before is not None else '(absent)'}")
        after.append(f"{c.resource}: {c.after if c.after is not None else '(absent)'}  # {c.action.value}, {c.reason}")
    return {
        "before_header": f"{plan.host}: now",
        "after_header": f"{plan.host}: after ovsnet {verb}",
        "before": "\n".join(before) + ("\n" if before else ""),
        "after": "\n".join(after) + ("\n" if after else ""),
    }
