"""`ovsnet up --gateway-timeout SECONDS` through the real command on the simulated node1.

A gateway that answers: the move succeeds with a short timeout. A silent
gateway with `--gateway-timeout 1`: the move is rolled back about one second
after the check starts (not after the default 5 s), exit 4, host as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ovsnet.apply import record
from tests.support.commands import ns_json, sh
from tests.support.topologies import node1

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
WAITING = "waiting for gateway"


def snapshot(h) -> dict:
    return {
        "links": sorted((l["ifname"], l.get("master"), l.get("mtu")) for l in ns_json(h.ns, "-d", "link")),
        "addrs": sorted((a["ifname"], i["local"]) for a in ns_json(h.ns, "addr") for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in ns_json(h.ns, "route")),
        "bridges": sh("ovs-vsctl", f"--db={h.ovs.remote}", "list-br").split(),
    }


def ovsnet_timed(*args: str, timeout: float = 180) -> tuple[int, str, list[tuple[float, str]], float]:
    """Run the real command; stderr lines with the time each arrived, and when the process ended."""
    proc = subprocess.Popen([sys.executable, "-m", "ovsnet", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:  # Python's stderr is line-buffered even into a pipe
            lines.append((time.monotonic(), line))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        ended = time.monotonic()
        reader.join()
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()  # type: ignore[union-attr]
    return code, out, lines, ended


def where(h) -> list[str]:
    return ["--host", "node1", "--db", h.ovs.remote, "--netns", h.ns, "--state-dir", h.target.state_dir, "--resolv-conf", str(h.resolv)]


def test_gateway_that_answers_passes_with_a_short_timeout(lab_host, tmp_path):
    h = lab_host
    f = tmp_path / "t.toml"
    f.write_text(node1(f"t{h.tag}"))
    before = snapshot(h)
    code, out, lines, _ = ovsnet_timed("up", str(f), *where(h), "--gateway-timeout", "3")
    err = "".join(text for _, text in lines)
    assert code == 0, err
    assert any(WAITING in text for _, text in lines), err
    assert "changes applied and verified" in out
    down, _, lines, _ = ovsnet_timed("down", str(f), *where(h))
    assert down == 0, "".join(text for _, text in lines)
    assert snapshot(h) == before


def test_silent_gateway_rolls_back_after_about_the_timeout(lab_host, tmp_path):
    h = lab_host
    # The gateway the file names does not exist: after the move nobody answers.
    sh("ip", "-n", h.ns, "route", "replace", "default", "via", "192.168.10.99", "dev", "eth1")
    f = tmp_path / "t.toml"
    f.write_text(node1(f"t{h.tag}", gateway="192.168.10.99"))
    before = snapshot(h)

    code, out, lines, ended = ovsnet_timed("up", str(f), *where(h), "--gateway-timeout", "1")
    err = "".join(text for _, text in lines)
    assert code == 4, err
    assert "did not answer on mgmt0 within 1 s" in err and "--gateway-timeout" in err
    assert "rolled back" in err and "Traceback" not in err and out == ""
    started = next(t for t, text in lines if WAITING in text)
    waited = ended - started
    # The probe itself takes the full second; the rest is the rollback and the
    # process exiting. Loose, for a busy machine, but well under the default 5 s.
    print(f"gateway check to exit: {waited:.2f} s")
    assert 0.9 <= waited < 4.5, f"{waited:.2f} s from the gateway check to the end"
    assert snapshot(h) == before
    assert record.read(h.target.state_dir, f"t{h.tag}", "node1") is None


def test_down_with_a_silent_gateway_rolls_back_unless_told_not_to_check(lab_host, tmp_path):
    """The gateway stops answering ARP after up: down rolls itself back (the host keeps its
    working path through mgmt0); `down --no-gateway-check` (a host reached out of band) restores
    the NIC exactly and says that nothing proved the gateway answers."""
    h = lab_host
    f = tmp_path / "t.toml"
    f.write_text(node1(f"t{h.tag}"))
    before = snapshot(h)
    code, _, lines, _ = ovsnet_timed("up", str(f), *where(h))
    assert code == 0, "".join(text for _, text in lines)
    configured = snapshot(h)
    sh("ip", "-n", h.gw, "link", "set", "gw0", "arp", "off")

    code, out, lines, _ = ovsnet_timed("down", str(f), *where(h), "--gateway-timeout", "1")
    err = "".join(text for _, text in lines)
    assert code == 4, err
    assert "did not answer on eth1 within 1 s" in err and "rolled back" in err and "Traceback" not in err
    assert snapshot(h) == configured
    assert record.read(h.target.state_dir, f"t{h.tag}", "node1") is not None, "the record survives a rolled-back down"

    code, out, lines, _ = ovsnet_timed("down", str(f), *where(h), "--no-gateway-check")
    err = "".join(text for _, text in lines)
    assert code == 0, err
    assert "gateway check skipped as told (192.168.10.1 on eth1)" in out + err
    assert WAITING not in err
    assert snapshot(h) == before
    assert record.read(h.target.state_dir, f"t{h.tag}", "node1") is None
