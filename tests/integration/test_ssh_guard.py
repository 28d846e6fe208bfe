"""The SSH guard against a real sshd, a real SSH client and sudo.

The guard reads sshd's established connections from the kernel
(sock_diag), not SSH_CONNECTION: it must hold when that variable is gone
(sudo's env_reset), and protect sessions of which the running process knows
nothing (another user's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.backends.sessions import ssh_sessions
from ovsnet.errors import RefusedError
from ovsnet.topology import check
from ovsnet.topology.load import parse
from tests.support.sshd import missing, sshd_in
from tests.support.topologies import MGMT_GATEWAY, NODE1_ADDRESS, node1

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
HOST_IP = NODE1_ADDRESS.split("/")[0]


@pytest.fixture
def server(lab_host, tmp_path):
    assert not missing(), f"the SSH tests need {', '.join(missing())}: .ci/setup installs openssh-server and sudo"
    with sshd_in(lab_host.ns, HOST_IP, tmp_path / "ssh") as s:
        yield s


def _topology(h, tmp_path):
    text = node1(f"t{h.tag}")
    f = tmp_path / "t.toml"
    f.write_text(text)
    return f, check(parse(text, str(f)))


def test_another_users_session_is_seen_from_the_kernel(lab_host, server, tmp_path):
    """A session this process knows nothing of (no SSH_CONNECTION here) blocks the move."""
    h = lab_host
    _, checked = _topology(h, tmp_path)
    assert "SSH_CONNECTION" not in os.environ
    session = subprocess.Popen(server.argv(h.gw, "sleep", "60"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline_ok = False
        for _ in range(100):
            found = ssh_sessions(h.ns)
            if found:
                deadline_ok = True
                break
            subprocess.run(["sleep", "0.1"])
        assert deadline_ok, "the session never showed in sock_diag"
        (s,) = found
        assert (s.remote, s.local, s.local_port) == (MGMT_GATEWAY, HOST_IP, 22)
        before = h.vsctl("show")
        with pytest.raises(RefusedError, match=f"an SSH session from {MGMT_GATEWAY} .* runs over eth1, the NIC this plan moves"):
            apply.up(checked, "node1", h.target)
        assert h.vsctl("show") == before  # refused before anything changed
    finally:
        session.terminate()
        session.wait(timeout=10)
    # No session: the same up goes ahead.
    assert ssh_sessions(h.ns) == []
    apply.up(checked, "node1", h.target)
    apply.down(checked, "node1", h.target)


def test_sudo_over_ssh_is_refused_and_allowed_only_when_told(lab_host, server, tmp_path):
    """`sudo ovsnet up` typed in an SSH session: sudo drops SSH_CONNECTION, the guard still holds."""
    h = lab_host
    f, _ = _topology(h, tmp_path)
    # The command runs inside the host's namespace (sshd lives there): no --netns.
    where = ["--host", "node1", "--db", h.ovs.remote, "--state-dir", h.target.state_dir, "--resolv-conf", str(h.resolv)]
    ovsnet = [sys.executable, "-m", "ovsnet"]
    env_check = subprocess.run(server.argv(h.gw, "sudo", "env"), capture_output=True, text=True, timeout=60)
    assert env_check.returncode == 0, env_check.stderr
    assert "SSH_CONNECTION=" not in env_check.stdout  # what makes an environment-based guard useless
    refused = subprocess.run(server.argv(h.gw, "sudo", "env", f"PYTHONPATH={ROOT}", *ovsnet, "up", str(f), *where),
                             capture_output=True, text=True, timeout=180)
    assert refused.returncode == 5, (refused.returncode, refused.stderr)
    assert f"an SSH session from {MGMT_GATEWAY}" in refused.stderr and "--allow-uplink-move" in refused.stderr
    allowed = subprocess.run(server.argv(h.gw, "sudo", "env", f"PYTHONPATH={ROOT}", *ovsnet, "up", str(f), *where, "--allow-uplink-move"),
                             capture_output=True, text=True, timeout=180)
    # The session that ran the move survived it: ssh would exit 255 had the connection dropped.
    assert allowed.returncode == 0, (allowed.returncode, allowed.stderr)
    assert h.vsctl("get", "Port", "eth1", "trunks") != "[]"
    down = subprocess.run(server.argv(h.gw, "sudo", "env", f"PYTHONPATH={ROOT}", *ovsnet, "down", str(f), *where),
                          capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stderr
