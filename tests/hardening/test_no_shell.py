"""No user-supplied string ever reaches a shell, or a process at all, on the apply path.

Statically: ruff's bandit rules (S602, S604, S605, S606, S609: a shell asked
for, os.system/popen, exec through a shell, wildcards) run over ovsnet/ and
find nothing; they replace a hand-written AST scan, and a test shows they
catch the mistakes that scan was for.

At run time: `up`, `status` and `down` run under a Python audit hook
(sys.addaudithook) that records every process the run or a child of it
starts (subprocess.Popen, os.system, os.exec*, os.spawn*, os.posix_spawn):
there must be none, so no string from the topology can be an argument of
anything. The topology's names are ones validation accepts and a careless
`subprocess.run(["ip", "link", "add", name, ...])` would misread: a bridge
called `-rf` and a patch end called `--help` (option injection), and dots;
they must reach the kernel verbatim. Names full of shell metacharacters are
refused by validation before anything runs (test_bad_input.py), and here too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hardening_kit import OVSNET, ROOT, assert_nothing_of_ours, assert_same, host_snapshot

RUFF = [sys.executable, "-m", "ruff"]
SHELL_RULES = "S602,S604,S605,S606,S609"
PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.forkpty", "pty.spawn")

# Runs the real CLI with an audit hook; every process-starting event goes to
# the file named by argv[1] (children of the run, which inherit the hook, too).
DRIVER = """
import json, os, sys
log = sys.argv[1]
events = {events!r}
def hook(event, args):
    if event.startswith(events):
        with open(log, "a") as f:
            f.write(json.dumps([os.getpid(), event, [repr(a) for a in args]]) + "\\n")
sys.addaudithook(hook)
sys.argv = ["ovsnet", *sys.argv[2:]]
from ovsnet.cli import main
main()
"""


def _ruff(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUFF, "check", "--no-cache", "--isolated", "--select", SHELL_RULES, "--output-format", "concise", *paths],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_no_shell_anywhere_in_the_product_code():
    r = _ruff("ovsnet")
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_catches_what_the_rules_are_for(tmp_path):
    """A shell asked for, a string command through os, exec via a shell: each one is a finding."""
    bad = {
        "a.py": "import subprocess\ndef f(x):\n    subprocess.run('ip link del ' + x, shell=True)\n",
        "b.py": "import subprocess\ndef f(x):\n    subprocess.Popen(f'ip link del {x}', shell=True)\n",
        "c.py": "import os\ndef f(x):\n    os.system('ip link del ' + x)\n",
        "d.py": "import os\ndef f(x):\n    os.popen('ovs-vsctl del-br ' + x)\n",
        "e.py": "import os\ndef f(x):\n    os.execl('/bin/sh', 'sh', '-c', x)\n",
        "f.py": "import subprocess\ndef f():\n    subprocess.run('rm -rf /tmp/ovsnet-*', shell=True)\n",
    }
    for name, src in bad.items():
        (tmp_path / name).write_text(src)
    r = _ruff(str(tmp_path))
    flagged = {line.split(":", 1)[0].rsplit("/", 1)[-1] for line in r.stdout.splitlines() if ".py:" in line}
    assert flagged == set(bad), r.stdout
    (tmp_path / "good.py").write_text("import subprocess\ndef f(x: list[str]):\n    subprocess.run(['ip', 'netns', 'exec', 'n', *x])\n")
    for name in bad:
        (tmp_path / name).unlink()
    assert _ruff(str(tmp_path)).returncode == 0


def _cli_audited(workdir: Path, log: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OVSNET_TEST_CRASH_AFTER", "OVSNET_STATE_DIR")}
    out = subprocess.run([sys.executable, "-c", DRIVER.format(events=PROCESS_EVENTS), str(log), *args],
                         capture_output=True, text=True, timeout=180, cwd=workdir, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def _events(log: Path) -> list:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.root
def test_up_status_down_start_no_process_whatever_the_names(host, tmp_path):
    h = host
    before = host_snapshot(h)
    # Names validation accepts, that an argv-built command would read as options.
    odd = h.text() + '[[hosts.node1.docker]]\nbridge = "-rf"\nvlan = "db"\npatch_ovs = "--help"\npatch_bridge = "..x"\n'
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    f = tmp_path / "odd-names.toml"
    f.write_text(odd)
    log = tmp_path / "events.jsonl"
    up = _cli_audited(workdir, log, "up", str(f), *h.where)
    assert up.returncode == 0, up.stderr
    assert _events(log) == [], _events(log)
    # The names reached the kernel and OVSDB verbatim.
    links = {link["ifname"] for link in json.loads(h.ip("-j", "link"))}
    assert {"-rf", "--help", "..x"} <= links, links
    assert "--help" in h.vsctl("list-ports", "br-ovs").split()
    for verb in ("status", "down"):
        r = _cli_audited(workdir, log, verb, str(f), *h.where)
        assert r.returncode == 0, (verb, r.stderr)
    assert _events(log) == [], _events(log)
    assert_same(before, host_snapshot(h), "odd names up/down")
    assert_nothing_of_ours(h)


def test_the_audit_hook_sees_a_process(tmp_path):
    """The hook above would see one: a run that starts `true` is recorded."""
    log = tmp_path / "events.jsonl"
    code = DRIVER.format(events=PROCESS_EVENTS).replace("from ovsnet.cli import main\nmain()", "import subprocess\nsubprocess.run([sys.argv[1]])")
    subprocess.run([sys.executable, "-c", code, str(log), shutil.which("true") or "/bin/true"], check=True, timeout=60)
    assert [e[1] for e in _events(log)] == ["subprocess.Popen"]


@pytest.mark.root
def test_shell_metacharacters_are_refused_before_anything_runs(host, tmp_path):
    h = host
    names = ["br;id>pw1", "$(id>pw2)", "`id>pw3`", "b|tee>pw4"]
    text = h.text()
    for n in names:
        text += f'[[hosts.node1.docker]]\nbridge = "{n}"\nvlan = "db"\npatch_ovs = "o{len(n)}"\npatch_bridge = "l{len(n)}"\n'
    f = tmp_path / "hostile-names.toml"
    f.write_text(text)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    before = host_snapshot(h)
    v = subprocess.run([OVSNET, "validate", str(f)], capture_output=True, text=True, timeout=120, cwd=workdir)
    assert v.returncode == 2 and all(repr(c) in v.stderr for c in ";$`|"), v.stderr
    u = subprocess.run([OVSNET, "up", str(f), *h.where], capture_output=True, text=True, timeout=120, cwd=workdir)
    assert u.returncode == 2, u.stderr
    assert [p.name for p in workdir.iterdir()] == []
    assert_same(before, host_snapshot(h), "hostile names refused")
