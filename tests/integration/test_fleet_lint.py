"""ansible-lint on the collection (production profile): the playbooks, the
modules' documentation, the galaxy metadata."""

from __future__ import annotations

import os
import subprocess

from tests.support.fleet import REPO

LINT = REPO / ".venv" / "bin" / "ansible-lint"


def test_ansible_lint_passes_on_the_collection(tmp_path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path),
           "ANSIBLE_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    proc = subprocess.run([str(LINT), "--offline", "--profile", "production", "--nocolor"], cwd=REPO / "ansible",
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "Passed" in proc.stdout + proc.stderr
