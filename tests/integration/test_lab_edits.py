"""Day-2 changes rehearsed in the lab (#13): one lab, edited step by step, converged in place.

Each step edits the topology file, checks that `lab plan` shows exactly the
expected changes, that `lab up` makes only those (counted, and with
ovs-vsctl and ip: every other OVSDB row keeps its UUID and every other
link its ifindex), that verify passes with real traffic, and that the plan
is empty afterwards. The steps share one lab (with a Docker engine in each
host) and run in order: each starts from where the previous one left it.

What the edits cover: a VLAN added to trunks (a container keeps pinging
across hosts throughout), a Docker bridge added, the router joining a VLAN,
a Docker bridge retagged, Docker networks resized, an access port, a new
NIC re-plugged from no cable to the switch, a VLAN taken off one trunk, a
switch port broken by hand (drift, an unexpected flip, repaired by lab up),
a failure in the middle of one host, a host removed, a host added.
"""

from __future__ import annotations

import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsnet.errors import BackendError
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import netns, run, teardown
from ovsnet.lab.converge import HostFailed
from ovsnet.lab.ledger import load_lab
from ovsnet.lab.names import Lab, default_lab_dir
from ovsnet.lab.review import LabReview, review
from ovsnet.render.verify import to_json
from ovsnet.topology import load_checked
from ovsnet.verify import baseline
from ovsnet.verify.lab import verify_lab
from tests.support.commands import sh
from tests.support.day2 import Edits, docker_networks, identities, same_except
from tests.support.dockerlab import missing_for_engine

pytestmark = pytest.mark.root

OVSNET = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ovsnet")


@dataclass
class Day2:
    file: Edits
    prefix: str
    lab_dir: Path
    saved: dict

    def checked(self):
        return load_checked(self.file.path)

    def lab(self) -> Lab:
        return load_lab(self.checked().topology, self.prefix, self.lab_dir)

    def review(self) -> LabReview:
        return review(self.checked(), self.prefix, self.lab_dir)

    def up(self, **kw):
        return run.lab_up(self.checked(), self.prefix, self.lab_dir, **kw).converged

    def ids(self) -> dict[str, str]:
        lab = self.lab()
        nodes = {**{h: lab.names.host_ns(h) for h in lab.topology.hosts if lab.names.host_ns(h) in lab.ovs},
                 "switch": lab.names.switch_ns, "router": lab.names.router_ns}
        return identities({n: lab.ovs[ns].remote for n, ns in nodes.items() if ns in lab.ovs}, nodes)

    def verify(self, probes: bool = False):
        report = verify_lab(self.checked(), self.lab(), probes=probes)
        assert report.ok, [f"{p.src}->{p.dst}" for p in report.mismatches] + [f.text() for f in report.findings]
        return report

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([OVSNET, "lab", *args, str(self.file.path), "--prefix", self.prefix],
                              capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def d2(tmp_path_factory):
    missing = missing_for_engine()
    if missing:
        pytest.fail(f"the day-2 lab needs a real engine and busybox: {missing}")
    where = tmp_path_factory.mktemp("d2")
    prefix = netns.unique_prefix("od2")
    lab_dir = default_lab_dir(prefix)  # where the CLI finds it too
    file = Edits(where / "day2.toml")
    try:
        try:
            run.lab_up(load_checked(file.path), prefix, lab_dir, docker=True)
        except BackendError as exc:
            pytest.fail(f"the day-2 lab could not be built:\n{exc}")
        yield Day2(file, prefix, lab_dir, {})
    finally:
        teardown.destroy(prefix, lab_dir)
        assert not netns.listed(f"{prefix}-")


def host_lines(r: LabReview) -> dict[str, list[str]]:
    return {h.host: [c.line() for c in h.plan.changes] for h in r.hosts}


def lab_lines(r: LabReview) -> list[str]:
    return [c.line() for c in r.lab.changes]


def applied(done) -> dict[str, int]:
    return {h.host: h.applied for h in done.hosts}


def converged_and_in_sync(d2: Day2, r: LabReview):
    """lab up makes exactly the reviewed changes, and nothing is left to do."""
    done = d2.up()
    assert [c.line() for c in done.plan.changes] == lab_lines(r)
    assert applied(done) == {h.host: len(h.plan.changes) for h in r.hosts}
    after = d2.review()
    assert after.in_sync, host_lines(after) | {"lab": lab_lines(after)}
    return done


def test_a_built_lab_has_nothing_to_do(d2):
    r = d2.review()
    assert r.in_sync and lab_lines(r) == [] and all(not h.pending for h in r.hosts)
    before = d2.ids()
    done = d2.up()
    assert applied(done) == {"node1": 0, "node2": 0, "node3": 0} and done.plan.changes == ()
    same_except(before, d2.ids())
    # The CLI's exit codes: in sync.
    assert d2.cli("plan", "--detailed-exitcode", "-q").returncode == 0
    assert d2.cli("status", "-q").returncode == 0


def test_a_vlan_added_to_two_trunks_while_a_container_pings_across(d2):
    lab = d2.lab()
    sock = lab_docker.docker_host(lab, "node1")
    import docker

    with closing(docker.DockerClient(base_url=sock, timeout=60)) as client:
        c = client.containers.run(lab_docker.IMAGE, ["sleep", "600"], name=f"{d2.prefix}-pinger", network="web", detach=True)
        try:
            started = client.api.inspect_container(c.id)["State"]["StartedAt"]
            nets_before = {h: docker_networks(lab_docker.docker_host(lab, h)) for h in ("node1", "node2")}
            d2.file.edit('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "db", "app"]', 2)
            r = d2.review()
            assert lab_lines(r) == [
                "modify  lab:switch-port:h1-eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged",
                "modify  lab:switch-port:h2-eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged",
            ]
            trunk = "modify  port:br-ovs/eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged"
            assert host_lines(r) == {"node1": [trunk], "node2": [trunk], "node3": []}
            before = d2.ids()
            # 200 pings, 50 ms apart, from a container on node1 to web2 on node2, across the converge.
            pinger = subprocess.Popen(["docker", "-H", sock, "exec", c.id, "ping", "-c", "200", "-i", "0.05", "10.100.0.12"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1.0)
            converged_and_in_sync(d2, r)
            out, _ = pinger.communicate(timeout=120)
            assert "200 packets transmitted, 200 packets received" in out, out[-300:]
            # The container never restarted, and no Docker network was recreated.
            assert client.api.inspect_container(c.id)["State"]["StartedAt"] == started
            assert {h: docker_networks(lab_docker.docker_host(lab, h)) for h in ("node1", "node2")} == nets_before
            same_except(before, d2.ids())
        finally:
            c.remove(force=True)
    d2.verify()


def test_a_docker_bridge_added(d2):
    d2.file.edit('[[hosts.node1.docker]]\nbridge = "br-db"', '[[hosts.node1.docker]]\nbridge = "br-app"\nvlan = "app"\nnetwork = "app"\n\n[[hosts.node1.docker]]\nbridge = "br-db"')
    d2.file.edit("[[endpoints]]\nname = \"web3\"", '[[endpoints]]\nname = "app1"\nhost = "node1"\nvlan = "app"\naddress = "10.30.0.11/24"\n\n[[endpoints]]\nname = "web3"')
    r = d2.review()
    assert lab_lines(r) == ["create  lab:endpoint:app1  node1, VLAN 300, 10.30.0.11/24, bridge br-app"]
    node1 = host_lines(r)["node1"]
    assert [line.split()[1] for line in node1] == ["link:br-app", "veth:ovs-br-app/lnx-br-app", "link:lnx-br-app",
                                                  "port:br-ovs/ovs-br-app", "docker-network:app"]
    assert host_lines(r)["node2"] == [] and host_lines(r)["node3"] == []
    before = d2.ids()
    converged_and_in_sync(d2, r)
    link = d2.lab().names.endpoint_link("app1")
    same_except(before, d2.ids(), new={"node1 link br-app", "node1 link ovs-br-app", "node1 link lnx-br-app", f"node1 link {link}",
                                       "node1 Port ovs-br-app", "node1 Interface ovs-br-app"})
    d2.saved["before router"] = to_json(d2.verify(probes=True))


def test_the_router_joins_a_vlan_and_what_it_opens_is_expected(d2):
    d2.file.edit('[router]\nvlans = ["mgmt", "web"]', '[router]\nvlans = ["mgmt", "web", "app"]')
    r = d2.review()
    assert lab_lines(r) == ["create  lab:router-leg:v300  VLAN 300, 10.30.0.1/24, mtu 1500",
                            "create  lab:switch-port:r300  access tag 300"]
    assert all(lines == [] for lines in host_lines(r).values())
    before = d2.ids()
    converged_and_in_sync(d2, r)
    same_except(before, d2.ids(), new={"switch Port r300", "switch Interface r300", "switch link r300", "router link v300"})
    report = d2.verify(probes=True)
    flips = baseline.compare(baseline.parse(d2.saved["before router"]), report)
    assert flips.ok and flips.flips and all(f.expected and f.opened for f in flips.flips)
    opened = {(f.src, f.dst) for f in flips.flips}
    # app's stations now reach the routed ones (web, the hosts) and back; db stays closed.
    assert {("app1", "web1"), ("web2", "app1"), ("app1", "node3"), ("app@node1", "web@node2")} <= opened
    assert not any("db" in a or "db" in b for a, b in opened)
    d2.saved["before retag"] = to_json(report)


def test_a_docker_bridge_retagged_and_its_endpoint_moved(d2):
    d2.file.edit('[[hosts.node2.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"', '[[hosts.node2.docker]]\nbridge = "br-db"\nvlan = "app"\nnetwork = "app"')
    d2.file.edit('name = "db2"\nhost = "node2"\nvlan = "db"\naddress = "10.200.0.12/24"', 'name = "db2"\nhost = "node2"\nvlan = "app"\naddress = "10.30.0.12/24"')
    r = d2.review()
    assert lab_lines(r) == ["modify  lab:endpoint:db2  node2, VLAN 200, 10.200.0.12/24, bridge br-db -> node2, VLAN 300, 10.30.0.12/24, bridge br-db"]
    assert [line.split()[:2] for line in host_lines(r)["node2"]] == [
        ["modify", "port:br-ovs/ovs-br-db"], ["delete", "docker-network:db"], ["create", "docker-network:app"]]
    before = d2.ids()
    converged_and_in_sync(d2, r)
    # The endpoint's cable is plugged again: its host end is a new link; nothing else is.
    link = d2.lab().names.endpoint_link("db2")
    after = d2.ids()
    assert after[f"node2 link {link}"] != before[f"node2 link {link}"]
    same_except({k: v for k, v in before.items() if k != f"node2 link {link}"}, {k: v for k, v in after.items() if k != f"node2 link {link}"})
    flips = baseline.compare(baseline.parse(d2.saved["before retag"]), d2.verify(probes=True))
    assert flips.ok
    assert {(f.src, f.dst, f.opened) for f in flips.flips} >= {("db1", "db2", False), ("db2", "web1", True), ("app1", "db2", True)}
    assert ("db@node2" in flips.removed) and ("app@node2" in flips.added)


def test_docker_networks_resized(d2):
    lab = d2.lab()
    nets = {h: docker_networks(lab_docker.docker_host(lab, h)) for h in ("node1", "node2")}
    d2.file.edit('router = "10.100.0.1"\nhost_slice = 26', 'router = "10.100.0.1"\nhost_slice = 27')
    r = d2.review()
    assert lab_lines(r) == []
    for host in ("node1", "node2"):
        (line,) = host_lines(r)[host]
        assert line.startswith("modify  docker-network:web  subnet 10.100.0.0/24") and "/27 on br-web" in line
    before = d2.ids()
    converged_and_in_sync(d2, r)
    same_except(before, d2.ids())
    for host in ("node1", "node2"):
        now = docker_networks(lab_docker.docker_host(lab, host))
        assert now["web"] != nets[host]["web"]
        assert {n: i for n, i in now.items() if n != "web"} == {n: i for n, i in nets[host].items() if n != "web"}
    # The probes get their addresses from the new, smaller slices (verify checks each is inside its host's).
    report = d2.verify(probes=True)
    web = [p for p in report.probes if p.network == "web"]
    assert len(web) == 2 and all(p.in_slice and p.slice and p.slice.endswith("/27") for p in web)


def test_an_access_port_added(d2):
    d2.file.edit("[hosts.node1.management]", '[[hosts.node1.access_ports]]\ninterface = "eth3"\nvlan = "web"\n\n[hosts.node1.management]')
    r = d2.review()
    assert lab_lines(r) == ["create  lab:cable:node1:eth3  no cable, mtu 1500"]
    assert host_lines(r)["node1"] == ["create  port:br-ovs/eth3  access tag 100"]
    before = d2.ids()
    converged_and_in_sync(d2, r)
    same_except(before, d2.ids(), new={"node1 link eth3", "node1 Port eth3", "node1 Interface eth3"})


def test_a_new_nic_then_its_cable_to_the_switch(d2):
    d2.file.edit('[vlans.app]', '[vlans.stor]\nid = 400\nsubnet = "10.40.0.0/24"\n\n[vlans.app]')
    d2.file.edit("[hosts.node1.management]", '[[hosts.node1.uplinks]]\nnic = "eth2"\nvlans = ["stor"]\n\n[hosts.node1.management]')
    r = d2.review()
    assert lab_lines(r) == ["create  lab:cable:node1:eth2  no cable, mtu 1500"]
    assert host_lines(r)["node1"] == ["create  port:br-ovs/eth2  trunk 400"]
    converged_and_in_sync(d2, r)
    # Cabled now: the far end moves from nowhere to a new switch port; the host's NIC and its OVS port stay.
    d2.file.edit("[[lab.cables]]\nends = [\"node1:eth1\", \"switch\"]", '[[lab.cables]]\nends = ["node1:eth2", "switch"]\n\n[[lab.cables]]\nends = ["node1:eth1", "switch"]')
    r = d2.review()
    assert lab_lines(r) == ["move    lab:cable:node1:eth2  no cable, mtu 1500 -> switch:h1-eth2, mtu 1500",
                            "create  lab:switch-port:h1-eth2  trunk 400"]
    assert all(lines == [] for lines in host_lines(r).values())
    before = d2.ids()
    converged_and_in_sync(d2, r)
    same_except(before, d2.ids(), new={"switch Port h1-eth2", "switch Interface h1-eth2", "switch link h1-eth2"})
    # Frames of VLAN 400 leave node1 by eth2 and arrive, tagged, at the switch port.
    sw = d2.lab().names.switch_ns
    cap = subprocess.Popen(["ip", "netns", "exec", sw, "tcpdump", "-c", "1", "-nei", "h1-eth2", "vlan 400"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    node1 = d2.lab().names.host_ns("node1")
    sh("ovs-vsctl", f"--db={d2.lab().ovs_of('node1').remote}", "add-port", "br-ovs", "st0", "tag=400", "--", "set", "Interface", "st0", "type=internal")
    try:
        sh("ip", "-n", node1, "addr", "add", "10.40.0.11/24", "dev", "st0")
        sh("ip", "-n", node1, "link", "set", "st0", "up")
        subprocess.run(["ip", "netns", "exec", node1, "ping", "-c", "3", "-W", "1", "10.40.0.99"], capture_output=True)
        out, _ = cap.communicate(timeout=20)
        assert "vlan 400" in out, out
    finally:
        cap.kill()
        sh("ovs-vsctl", f"--db={d2.lab().ovs_of('node1').remote}", "del-port", "br-ovs", "st0")


def test_a_vlan_taken_off_one_trunk_closes_exactly_the_pairs_behind_it(d2):
    base = to_json(d2.verify())
    # node2 keeps web on its cable to node3 only: web2 and web3 are cut off from the switch's side.
    d2.file.edit('vlans = ["mgmt", "web", "db", "app"]\nnative_vlan = "mgmt"\n[[hosts.node2.uplinks]]',
                 'vlans = ["mgmt", "db", "app"]\nnative_vlan = "mgmt"\n[[hosts.node2.uplinks]]')
    r = d2.review()
    assert lab_lines(r) == ["modify  lab:switch-port:h2-eth1  trunk 10,100,200,300, native 10 untagged -> trunk 10,200,300, native 10 untagged"]
    assert host_lines(r) == {"node1": [], "node3": [], "node2": [
        "modify  port:br-ovs/eth1  trunk 10,100,200,300, native 10 untagged -> trunk 10,200,300, native 10 untagged"]}
    converged_and_in_sync(d2, r)
    cut = d2.verify()
    flips = baseline.compare(baseline.parse(base), cut)
    assert flips.ok and flips.missed == () and all(not f.opened and f.expected for f in flips.flips)
    behind, beyond = {"web2", "web3"}, {"web1", "app1", "db2", "node1", "node2", "node3"}
    # Exactly the pairs between the cut-off web stations and every station they reached through the switch.
    assert {(f.src, f.dst) for f in flips.flips} == {(a, b) for a in behind for b in beyond} | {(b, a) for a in behind for b in beyond}
    # Put back: the same pairs open again, as the edit expects.
    d2.file.edit('vlans = ["mgmt", "db", "app"]\nnative_vlan = "mgmt"\n[[hosts.node2.uplinks]]',
                 'vlans = ["mgmt", "web", "db", "app"]\nnative_vlan = "mgmt"\n[[hosts.node2.uplinks]]')
    converged_and_in_sync(d2, d2.review())
    back = baseline.compare(baseline.parse(to_json(cut)), d2.verify())
    assert back.ok and {(f.src, f.dst) for f in back.flips} == {(f.src, f.dst) for f in flips.flips}
    assert all(f.opened and f.expected for f in back.flips)


def test_a_switch_port_broken_by_hand_is_drift_an_unexpected_flip_and_repaired(d2):
    base = to_json(d2.verify())
    lab = d2.lab()
    sh("ovs-vsctl", f"--db={lab.ovs[lab.names.switch_ns].remote}", "set", "Port", "h1-eth1", "trunks=10,200,300")
    report = verify_lab(d2.checked(), d2.lab())
    flips = baseline.compare(baseline.parse(base), report)
    assert not flips.ok and not report.ok
    assert {(f.src, f.dst) for f in flips.unexpected} >= {("web1", "web2"), ("web2", "web1"), ("web1", "node2")}
    assert all(not f.expected and not f.opened for f in flips.flips)
    status = d2.cli("status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert ("modify  lab:switch-port:h1-eth1  trunk 10,200,300, native 10 untagged -> "
            "trunk 10,100,200,300, native 10 untagged") in status.stdout
    plan = d2.cli("plan", "--detailed-exitcode", "--json")
    assert plan.returncode == 1
    up = d2.cli("up", "-q")
    assert up.returncode == 0, up.stderr
    assert d2.cli("status", "-q").returncode == 0
    assert baseline.compare(baseline.parse(base), d2.verify()).ok


def test_a_failure_in_the_middle_of_one_host_rolls_it_back_and_lab_up_finishes_the_job(d2):
    d2.file.edit('[[hosts.node2.docker]]\nbridge = "br-web"', '[[hosts.node2.docker]]\nbridge = "br-extra"\nvlan = "db"\nnetwork = "extra"\n\n[[hosts.node2.docker]]\nbridge = "br-web"')
    d2.file.edit('dns = ["192.168.10.1"]', 'dns = ["192.168.10.1", "192.168.10.2"]', 1)  # node1's
    r = d2.review()
    assert host_lines(r)["node1"] == ["modify  dns:nameservers  192.168.10.1 -> 192.168.10.1, 192.168.10.2"]
    assert len(host_lines(r)["node2"]) == 5
    before = d2.ids()
    seen: list[str] = []

    def fault(host, change):
        seen.append(f"{host} {change.resource}")
        if host == "node2" and len([s for s in seen if s.startswith("node2")]) == 3:
            raise RuntimeError("injected fault")

    with pytest.raises(HostFailed) as failed:
        d2.up(after_change=fault)
    assert failed.value.host == "node2" and failed.value.exit_code == 3
    assert "converged before it: node1" in str(failed.value) and "not touched: node3" in str(failed.value)
    assert "rolled back 3 changes" in str(failed.value)
    # node2 is as it was (nothing of br-extra is left), node1 has its change, node3 was not touched.
    same_except(before, d2.ids())
    now = d2.review()
    assert host_lines(now)["node1"] == [] and len(host_lines(now)["node2"]) == 5 and host_lines(now)["node3"] == []
    # The lab is usable meanwhile, and lab up again finishes the job.
    d2.verify()
    converged_and_in_sync(d2, now)
    d2.verify()


def test_a_host_removed(d2):
    web3 = d2.lab().names.endpoint_ns("web3")
    d2.file.edit('[hosts.node3]\nbridge = { name = "br-ovs", datapath = "netdev" }\n[[hosts.node3.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web"]\nnative_vlan = "mgmt"\n'
                 '[hosts.node3.management]\naddresses = ["192.168.10.13/24"]\ngateway = "192.168.10.1"\ndns = ["192.168.10.1"]\n', "")
    d2.file.edit('[[hosts.node2.uplinks]]\nnic = "eth2"\nvlans = ["mgmt", "web"]\nnative_vlan = "mgmt"\n', "")
    d2.file.edit('[[endpoints]]\nname = "web3"\nhost = "node3"\nvlan = "web"\naddress = "10.100.0.13/24"\nattach = "ovs"\n', "")
    d2.file.edit('\n[[lab.cables]]\nends = ["node2:eth2", "node3:eth1"]\n', "\n")
    r = d2.review()
    names = d2.lab().names
    assert lab_lines(r) == [
        "delete  lab:endpoint:web3  node3, VLAN 100, 10.100.0.13/24, access port of br-ovs",
        "delete  lab:cable:node2:eth2  node3:eth1, mtu 1500",
        f"delete  lab:host:node3  namespace {names.prefix}-h3 and everything in it",
    ]
    assert r.removed == ("node3",)
    assert host_lines(r) == {"node1": [], "node2": ["delete  port:br-ovs/eth2  trunk 10,100, native 10 untagged"]}
    before = d2.ids()
    converged_and_in_sync(d2, r)
    gone = {k for k in before if k.startswith("node3 ")} | {"node2 link eth2", "node2 Port eth2", "node2 Interface eth2"}
    same_except(before, d2.ids(), gone=gone)
    assert not netns.exists(f"{d2.prefix}-h3") and not netns.exists(web3)
    d2.verify()


def test_a_host_added_gets_a_new_number_and_everything_it_needs(d2):
    d2.file.edit("[[endpoints]]\nname = \"web1\"", '''[hosts.node4]
bridge = { name = "br-ovs", datapath = "netdev" }
[[hosts.node4.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web"]
native_vlan = "mgmt"
[hosts.node4.management]
addresses = ["192.168.10.14/24"]
gateway = "192.168.10.1"
dns = ["192.168.10.1"]
[[hosts.node4.docker]]
bridge = "br-web"
vlan = "web"
network = "web"

[[endpoints]]
name = "web4"
host = "node4"
vlan = "web"
address = "10.100.0.14/24"

[[endpoints]]
name = "web1"''')
    d2.file.edit('[[lab.cables]]\nends = ["node2:eth1", "switch"]', '[[lab.cables]]\nends = ["node2:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node4:eth1", "switch"]')
    r = d2.review()
    ns = f"{d2.prefix}-h4"  # node3's number is not taken again
    assert lab_lines(r) == [
        f"create  lab:host:node4  namespace {ns}, its own Open vSwitch",
        "create  lab:cable:node4:eth1  switch:h4-eth1, mtu 1500",
        "create  lab:switch-port:h4-eth1  trunk 10,100, native 10 untagged",
        "create  lab:dockerd:node4  a private dockerd",
        "create  lab:endpoint:web4  node4, VLAN 100, 10.100.0.14/24, bridge br-web",
    ]
    (new,) = [h for h in r.hosts if h.new]
    assert new.host == "node4" and "create  bridge:br-ovs  OVS bridge, datapath netdev" in [c.line() for c in new.plan.changes]
    before = d2.ids()
    done = d2.up()
    assert applied(done)["node4"] > 0 and {h: n for h, n in applied(done).items() if h != "node4"} == {"node1": 0, "node2": 0}
    assert d2.review().in_sync
    after = d2.ids()
    same_except(before, {k: v for k, v in after.items() if not k.startswith("node4 ")},
                new={"switch Port h4-eth1", "switch Interface h4-eth1", "switch link h4-eth1"})
    report = d2.verify(probes=True)
    assert {"web4", "node4", "web@node4"} <= {s.name for s in report.stations}


def test_what_cannot_change_in_place_is_refused_before_anything_changes(d2):
    text = d2.file.text
    d2.file.edit('switch = "switch"', 'switch = "core"')
    d2.file.edit('"switch"]', '"core"]', d2.file.text.count('"switch"]'))
    before = d2.ids()
    up = d2.cli("up")
    assert up.returncode == 5, up.stderr
    assert "cannot be converged in place; nothing was changed:\n  the lab's switch: switch -> core\n      do: rebuild the lab: `ovsnet lab down" in up.stderr
    plan = d2.cli("plan", "--detailed-exitcode")
    assert plan.returncode == 1 and "CANNOT CHANGE IN PLACE" in plan.stdout
    same_except(before, d2.ids())
    d2.file.text = text
    d2.file.path.write_text(text)
    assert d2.review().in_sync


def test_lab_plan_and_status_exit_codes(d2, tmp_path):
    d2.file.edit('dns = ["192.168.10.1", "192.168.10.2"]', 'dns = ["192.168.10.1"]')
    plan = d2.cli("plan", "--detailed-exitcode", "--json")
    assert plan.returncode == 1
    import json

    body = json.loads(plan.stdout)
    assert body["pending"] and not body["in_sync"]
    assert [c["resource"] for c in body["hosts"]["node1"]["changes"]] == ["dns:nameservers"]
    assert d2.cli("plan").returncode == 0  # without --detailed-exitcode: 0 when the plan was made
    status = d2.cli("status")
    assert status.returncode == 1 and "drift on host node1 (1 differences)" in status.stdout
    assert d2.cli("up", "-q").returncode == 0
    assert d2.cli("plan", "--detailed-exitcode", "-q").returncode == 0
    # No such lab: exit 2 from both.
    other = subprocess.run([OVSNET, "lab", "plan", str(d2.file.path), "--prefix", "od2none", "--detailed-exitcode"],
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "no lab od2none" in other.stderr
    other = subprocess.run([OVSNET, "lab", "status", str(d2.file.path), "--prefix", "od2none"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "absent" in other.stdout
