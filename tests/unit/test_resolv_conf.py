"""resolv.conf's nameserver lines: written by up, put back by down, the rest of the file kept byte for byte."""

from __future__ import annotations

import pytest

from ovsnet.backends.files import read_nameservers, write_nameservers


@pytest.mark.parametrize("text", ["", "nameserver 9.9.9.9", "nameserver 9.9.9.9\n", "search example.test\nnameserver 9.9.9.9\noptions ndots:2\n",
                                  "# nothing here\n"])
def test_servers_written_then_put_back_give_the_file_back_byte_for_byte(tmp_path, text):
    """An empty resolv.conf came back as one newline after up and down (the VM rollout's teardown found it)."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(text)
    before = read_nameservers(str(resolv))
    write_nameservers(str(resolv), ("192.168.10.1", "fd00:10::1"))
    assert read_nameservers(str(resolv)) == ("192.168.10.1", "fd00:10::1")
    write_nameservers(str(resolv), before)
    assert resolv.read_text() == text


def test_servers_written_to_an_empty_file_end_with_a_newline(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("")
    write_nameservers(str(resolv), ("192.168.10.1",))
    assert resolv.read_text() == "nameserver 192.168.10.1\n"
