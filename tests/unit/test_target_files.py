"""--netns means the namespace's own files (#13, item 6): which files a Target reads and writes.

Plain paths and a made-up root directory: no namespace, no command.
"""

from __future__ import annotations

from pathlib import Path

from ovsnet.apply.target import Target
from ovsnet.current import Link
from ovsnet.managers import detect


def test_a_real_host_uses_its_own_etc():
    t = Target()
    assert (t.etc, t.resolv_conf_path, t.files_root, t.shared_files) == ("/etc", "/etc/resolv.conf", "/", False)


def test_a_namespace_uses_the_iproute2_convention():
    t = Target(netns="lab-h1")
    assert t.resolv_conf_path == "/etc/netns/lab-h1/resolv.conf"
    assert t.etc == "/etc/netns/lab-h1"
    # Outside /etc nothing is the namespace's own: only its DHCP client is looked for there.
    assert t.files_root == "/" and t.shared_files


def test_root_and_resolv_conf_say_otherwise():
    assert Target(netns="lab-h1", root="/srv/h1").resolv_conf_path == "/srv/h1/etc/resolv.conf"
    assert Target(root="/srv/h1/").etc == "/srv/h1/etc"
    assert not Target(netns="lab-h1", root="/srv/h1").shared_files
    assert Target(netns="lab-h1", root="/srv/h1", resolv_conf="/tmp/r.conf").resolv_conf_path == "/tmp/r.conf"


def test_cli_where_passes_root_and_netns(tmp_path):
    from ovsnet.cli.options import Where
    from ovsnet.topology.load import parse

    seed = Path(__file__).resolve().parents[2] / "topologies" / "seed.toml"
    from ovsnet.topology import check

    c = check(parse(seed.read_text(), str(seed)))
    t = Where(netns="lab-h1").target(c, "node1")
    assert t.resolv_conf_path == "/etc/netns/lab-h1/resolv.conf"
    t = Where(netns="lab-h1", root=str(tmp_path)).target(c, "node1")
    assert t.resolv_conf_path == f"{tmp_path}/etc/resolv.conf"


def _networkd_root(tmp_path: Path) -> Path:
    """A machine whose systemd-networkd manages link index 2 (say, its eth1)."""
    links = tmp_path / "run" / "systemd" / "netif" / "links"
    links.mkdir(parents=True)
    (links / "2").write_text("ADMIN_STATE=configured\nNETWORK_FILE=/etc/systemd/network/10-eth1.network\n")
    (tmp_path / "etc" / "systemd" / "network").mkdir(parents=True)
    (tmp_path / "etc" / "systemd" / "network" / "10-eth1.network").write_text("[Match]\nName=eth1\n[Network]\nDHCP=yes\n")
    return tmp_path


def test_the_machines_network_manager_is_never_taken_for_a_namespaces(tmp_path):
    root = _networkd_root(tmp_path)
    nic = {"eth1": Link("eth1", 2, up=True)}
    # On the machine itself (or a root of the host's own files) networkd claims the link ...
    assert detect(root, nic)["eth1"].manager == "networkd"
    # ... but a namespace's eth1 with the same index is not the machine's link.
    assert detect(root, nic, netns="lab-h1", shared=True) == {}
