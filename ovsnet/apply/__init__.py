"""Applying a plan to a host: up and down (run.py), the executor, its backends, the record, the lock."""

from ovsnet.apply.run import (
    GATEWAY_TIMEOUT_MAX,
    ApplyFailed,
    Result,
    UpOptions,
    check_gateway_timeout,
    down,
    drift,
    host_of,
    plan_live,
    up,
)
from ovsnet.apply.target import Target

__all__ = ["GATEWAY_TIMEOUT_MAX", "ApplyFailed", "Result", "Target", "UpOptions", "check_gateway_timeout", "down", "drift", "host_of", "plan_live", "up"]
