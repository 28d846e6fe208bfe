"""Bad topology files: every one is refused with exit 2, a clear error, no traceback, nothing changed.

Inputs:
* tests/hardening/corpus/*.toml - hand-written broken files (syntax, duplicate
  keys, wrong types, out-of-range VLANs/MTUs/addresses, names too long or with
  '/', ':', whitespace, shell metacharacters, non-ASCII, control characters,
  unknown keys, dangling references), each a one-defect edit of a valid
  one-host topology whose host is node1. Beside each, NAME.expect states every
  error the file must produce, in the order printed, one a line:

      LINE:COLUMN: KEY PATH: MESSAGE

  LINE:COLUMN is where the error is reported in NAME.toml (1-based; `LINE`
  alone leaves the column unchecked; `-` for an error with no line), KEY PATH
  is the finding's path (`-` for none: a syntax error, a file-level problem),
  MESSAGE a piece of the message (the hint after it is not compared). Lines
  starting with '#' are comments. The CLI's stderr is parsed back into its
  errors and compared with that list (count, order, line, column, path,
  message), so a file refused for a reason other than the one it was made for
  fails. Warnings are not compared;
* generated at test time (not committed): a file over the 4 MiB limit, deep
  nesting (arrays, inline tables, dotted keys), UTF-16, a UTF-8 BOM, NUL
  bytes, random bytes, Latin-1 text;
* a hypothesis fuzzer of mutations of topologies/seed.toml.

For each: `ovsnet validate FILE` and `ovsnet up FILE --host node1` pointed at a
lab host exit 2 (with the stated errors, for the corpus); the host (links, addresses, routes, resolv.conf, OVSDB) is
compared with a full dump before and after. The bulk runs the CLI in-process
(typer's CliRunner: the same `app`, the same error handling and exit codes);
a sample - every input with OVSNET_LONG=1 - runs as real subprocesses.
"""

from __future__ import annotations

import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hardening_kit import LONG, ROOT, assert_same, host_snapshot, ovsnet_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ovsnet.cli import app

HERE = Path(__file__).resolve().parent
CORPUS = sorted((HERE / "corpus").glob("*.toml"))
SEED = (ROOT / "topologies" / "seed.toml").read_text()

# Interface names the kernel would take but ovsnet refuses (shell metacharacters,
# non-ASCII): accepted until 8f4fc8a (validate.py checked only the kernel's rules).
SHELL_OR_NON_ASCII_NAMES = {
    "non-ascii-bridge", "non-ascii-nic-cyrillic", "non-ascii-rtl-override-bridge",
    "shell-ampersand-ovs-bridge", "shell-backtick-port", "shell-dollar-paren-bridge",
    "shell-pipe-bridge", "shell-semicolon-nic",
}


def generated_inputs() -> dict[str, bytes]:
    """Broken files made at test time (too big or too odd to commit)."""
    base = (HERE / "corpus" / "unknown-top-level-key.toml").read_text().split("\n", 2)[2]  # a valid body after 2 lines
    pad = "# padding\n" * ((4 * 1024 * 1024) // 10 + 1)
    return {
        "gen-enormous-over-4MiB": (base + pad).encode(),
        "gen-deep-arrays-100000": b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "gen-deep-arrays-1000": b"a = " + b"[" * 1000 + b"]" * 1000 + b"\n",
        "gen-deep-inline-tables-5000": b"a = " + b"{b=" * 5000 + b"1" + b"}" * 5000 + b"\n",
        "gen-deep-dotted-table-20000": b"[" + b".".join([b"a"] * 20_000) + b"]\n" + base.encode(),
        "gen-deep-hosts-key": base.replace("[hosts.node1]", "[hosts.node1" + ".x" * 3000 + "]", 1).encode(),
        "gen-utf16": base.encode("utf-16"),
        "gen-utf8-bom": b"\xef\xbb\xbf" + base.encode(),
        "gen-nul-bytes": base.encode().replace(b"\n", b"\n\x00", 3),
        "gen-random-bytes": random.Random(7).randbytes(20_000),
        "gen-latin1": base.replace('name = "corpus"', 'name = "corpus-\u00e9t\u00e9"').encode("latin-1"),
        "gen-only-whitespace": b" \n\t\n\r\n" * 1000,
        "gen-crlf-broken": base.replace("\n", "\r", 5).encode(),
    }


# What each generated input must be refused with, in the .expect form (written beside it).
GENERATED_EXPECT = {
    "gen-enormous-over-4MiB": "-: -: bytes; the limit is 4194304",
    "gen-deep-arrays-100000": "-: -: nesting is too deep",
    "gen-deep-arrays-1000": "-: -: nesting is too deep",
    "gen-deep-inline-tables-5000": "-: -: nesting is too deep",
    "gen-deep-dotted-table-20000": "1:1: a: unknown key 'a'",
    "gen-deep-hosts-key": "11:1: hosts.node1.x: unknown key 'x'",
    "gen-utf16": "1:1: -: the file is UTF-16 (it starts with a UTF-16 byte-order mark)",
    "gen-utf8-bom": "1:1: -: the file starts with a UTF-8 byte-order mark (BOM)",
    "gen-nul-bytes": "2:1: -: TOML syntax: Invalid statement",
    "gen-random-bytes": "-: -: not UTF-8 text (byte 1)",
    "gen-latin1": "-: -: not UTF-8 text (byte 15)",
    "gen-only-whitespace": "-: hosts: the topology has no hosts",
    "gen-crlf-broken": "1:16: -: TOML syntax: Expected newline or end of document after a statement",
}


def all_inputs(tmp: Path) -> list[Path]:
    paths = list(CORPUS)
    for name, data in generated_inputs().items():
        p = tmp / f"{name}.toml"
        p.write_bytes(data)
        p.with_suffix(".expect").write_text(GENERATED_EXPECT[name] + "\n")
        paths.append(p)
    return paths


_runner = CliRunner()


def cli_in_process(*args: str) -> tuple[int, str, str]:
    result = _runner.invoke(app, list(args), catch_exceptions=True)
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{args}: {type(exc).__name__}: {exc}"
    return result.exit_code, result.stdout, result.stderr


def check_refused(path: Path, code: int, out: str, err: str, verb: str) -> None:
    what = f"{verb} {path.name}"
    assert code == 2, (what, code, out[-500:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out, what
    assert str(path) in err, (what, err[-500:])
    assert "error" in err and "nothing was changed" in err, (what, err[-500:])
    assert out == "", (what, out[-500:])
    stated = expected_errors(path)
    if stated is not None:
        compare_errors(stated, reported_errors(str(path), err), what)


# --- what each corpus file states, and what the CLI printed ---------------------------


@dataclass(frozen=True)
class Reported:
    """One finding as the CLI printed it: FILE[:LINE[:COLUMN]]: [PATH: ]SEVERITY: MESSAGE (HINT)."""

    line: int | None
    column: int | None
    path: str
    severity: str
    text: str  # the message and its hint


@dataclass(frozen=True)
class Stated:
    """One line of a .expect file."""

    line: int | None
    column: int | None  # None: not compared
    path: str
    message: str
    column_stated: bool

    def matches(self, r: Reported) -> bool:
        return (self.line == r.line and (not self.column_stated or self.column == r.column)
                and self.path == r.path and self.message in r.text)

    def __str__(self) -> str:
        where = "-" if self.line is None else f"{self.line}:{self.column}" if self.column_stated else f"{self.line}"
        return f"{where}: {self.path or '-'}: {self.message}"


_STATED_RE = re.compile(r"^(?:-|(?P<line>\d+)(?::(?P<column>\d+))?): (?P<path>.+?): (?P<message>.+)$")


def expected_errors(path: Path) -> list[Stated] | None:
    """The errors NAME.expect states for NAME.toml; None when there is no such file."""
    expect = path.with_suffix(".expect")
    if not expect.exists():
        return None
    stated = []
    for n, raw in enumerate(expect.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        m = _STATED_RE.match(raw)
        assert m, f"{expect}:{n}: not LINE:COLUMN: PATH: MESSAGE: {raw!r}"
        line, column = m.group("line"), m.group("column")
        path_ = "" if m.group("path") == "-" else m.group("path")
        stated.append(Stated(int(line) if line else None, int(column) if column else None, path_, m.group("message"), column is not None))
    assert stated, f"{expect} states no error"
    return stated


def reported_errors(source: str, err: str) -> list[Reported]:
    """The findings in the CLI's stderr (a message may run over several lines)."""
    head = re.compile(rf"^{re.escape(source)}(?::(\d+))?(?::(\d+))?: (?:(.*?): )?(error|warning): ", re.M)
    summary = re.compile(rf"^{re.escape(source)}: \d+ error\(s\); nothing was changed$", re.M)
    cut = summary.search(err)
    err = err[: cut.start()] if cut else err
    heads = list(head.finditer(err))
    out = []
    for m, nxt in zip(heads, heads[1:] + [None]):
        text = err[m.end(): nxt.start() if nxt else len(err)].rstrip("\n")
        line, column = m.group(1), m.group(2)
        out.append(Reported(int(line) if line else None, int(column) if column else None, m.group(3) or "", m.group(4), text))
    return [r for r in out if r.severity == "error"]


def compare_errors(stated: list[Stated], reported: list[Reported], what: str) -> None:
    shown = "\n".join(f"  {r.line}:{r.column}: {r.path or '-'}: {r.text[:200]!r}" for r in reported)
    assert len(stated) == len(reported), f"{what}: {len(stated)} error(s) stated, {len(reported)} reported:\n{shown}"
    for i, (s, r) in enumerate(zip(stated, reported)):
        assert s.matches(r), f"{what}: error {i + 1} stated as\n  {s}\nreported as\n  {r.line}:{r.column}: {r.path or '-'}: {r.text[:300]!r}"


def test_each_generated_input_is_refused_with_the_error_it_states(tmp_path):
    inputs = all_inputs(tmp_path)[len(CORPUS):]
    assert {p.stem for p in inputs} == set(GENERATED_EXPECT)
    for p in inputs:
        check_refused(p, *cli_in_process("validate", str(p)), "validate")


def test_every_corpus_file_states_its_errors():
    tomls = {p.stem for p in CORPUS}
    expects = {p.stem for p in (HERE / "corpus").glob("*.expect")}
    assert tomls == expects, {"no .expect": sorted(tomls - expects), "no .toml": sorted(expects - tomls)}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_each_corpus_file_is_refused_with_the_errors_it_states(path):
    """`ovsnet validate` in-process; the root tests below check `up` and the real CLI the same way."""
    check_refused(path, *cli_in_process("validate", str(path)), "validate")


def test_a_file_refused_for_another_reason_fails_the_comparison(tmp_path):
    """The comparison can fail: vlan-id-0 with a second defect, and with its own defect moved."""
    text = (HERE / "corpus" / "vlan-id-0.toml").read_text()
    cases = {
        "extra-defect": text.replace('gateway = "192.168.10.1"', 'gateway = "192.168.10.300"'),
        "other-line": text.replace("id = 0\n", "\nid = 0\n"),
        "other-defect": text.replace("id = 0\n", "id = 100\nmtu = 0\n"),
    }
    for name, broken in cases.items():
        p = tmp_path / f"{name}.toml"
        p.write_text(broken)
        p.with_suffix(".expect").write_text((HERE / "corpus" / "vlan-id-0.expect").read_text())
        with pytest.raises(AssertionError, match="stated"):
            check_refused(p, *cli_in_process("validate", str(p)), "validate")
    # and the unchanged file passes through the same copy-and-compare
    p = tmp_path / "same.toml"
    p.write_text(text)
    p.with_suffix(".expect").write_text((HERE / "corpus" / "vlan-id-0.expect").read_text())
    check_refused(p, *cli_in_process("validate", str(p)), "validate")


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 70, len(CORPUS)
    kinds = {p.stem.split("-")[0] for p in CORPUS}
    assert {"syntax", "duplicate", "type", "vlan", "name", "shell", "non", "address"} <= kinds, kinds


@pytest.mark.root
def test_every_bad_input_is_refused_in_process_and_the_host_is_unchanged(host, tmp_path):
    h = host
    before = host_snapshot(h)
    inputs = all_inputs(tmp_path)
    for p in inputs:
        check_refused(p, *cli_in_process("validate", str(p)), "validate")
        check_refused(p, *cli_in_process("up", str(p), *h.where), "up")
    assert_same(before, host_snapshot(h), "after every bad input")
    assert h.state_files() == []
    print(f"\nbad inputs refused in-process (validate + up): {len(inputs)}")


@pytest.mark.root
def test_bad_inputs_refused_by_the_real_cli(host, tmp_path):
    """Real subprocesses: exit status and stderr as a shell user sees them."""
    h = host
    before = host_snapshot(h)
    inputs = all_inputs(tmp_path)
    if not LONG:
        sample = {"gen-enormous-over-4MiB", "gen-deep-arrays-100000", "gen-utf16", "gen-random-bytes",
                  "syntax-unclosed-table-header", "duplicate-key", "vlan-id-4095", "shell-dollar-paren-bridge"}
        inputs = [p for p in inputs if p.stem in sample]
        assert len(inputs) == len(sample)

    def both(p: Path):
        return p, ovsnet_cli("validate", str(p)), ovsnet_cli("up", str(p), *h.where)

    with ThreadPoolExecutor(max_workers=3) as pool:
        for p, v, u in pool.map(both, inputs):
            check_refused(p, v.returncode, v.stdout, v.stderr, "validate")
            check_refused(p, u.returncode, u.stdout, u.stderr, "up")
    assert_same(before, host_snapshot(h), "after the CLI runs")
    assert h.state_files() == []
    print(f"\nbad inputs refused by the real CLI (validate + up): {len(inputs)}")


@pytest.mark.parametrize("name", sorted(SHELL_OR_NON_ASCII_NAMES))
def test_interface_names_with_shell_metacharacters_or_non_ascii_are_refused(name):
    p = HERE / "corpus" / f"{name}.toml"
    code, out, err = cli_in_process("validate", str(p))
    check_refused(p, code, out, err, "validate")
    assert "interface name" in err, err


def test_error_output_stays_small_for_a_huge_value(tmp_path):
    text = (HERE / "corpus" / "name-too-long-bridge.toml").read_text().replace("br-web-far-too-long-name", "b" * 1_000_000)
    p = tmp_path / "huge-name.toml"
    p.write_text(text)
    code, out, err = cli_in_process("validate", str(p))
    assert code == 2
    assert len(err) < 64 * 1024, len(err)


def test_a_valid_file_is_accepted_so_the_corpus_tests_mean_something():
    base = (HERE / "corpus" / "unknown-top-level-key.toml").read_text().split("\n", 2)[2]
    assert cli_in_process("validate", "-")[0] == 2  # not a file: still a clean exit 2
    p = Path(ROOT / "topologies" / "seed.toml")
    assert cli_in_process("validate", str(p))[0] == 0
    from ovsnet.topology import check
    from ovsnet.topology.load import parse

    check(parse(base, "base.toml"))  # the body every corpus file breaks is itself valid


# --- the fuzzer -----------------------------------------------------------------------------

VALUE_RE = re.compile(r"^(\s*[\w.\"-]+\s*=\s*)(.+)$", re.M)
HOSTILE = ["$(reboot)", "`reboot`", ";reboot", "a|b", "a&b", ">x", "../../etc/passwd", "br/x", "a b", "\t", "\n",
           "\u00fc", "\u0435th1", "\u202e", "\x00", "\x7f", "\U0001f310", "x" * 16, "x" * 300, "", "-", ".", "..",
           "192.168.10.300/24", "::1/129", "10.0.0.0/33", "1.2.3.4; reboot"]
SCALARS = ["0", "-1", "4095", "4094", "1", "65536", "99999999999999999999999", "-0", "1e400", "nan", "inf", "true",
           "[]", "{}", "[[]]", '["mgmt", "mgmt"]', "1979-05-27", "07:32:00", "0x10", "0o7", "0b1"]


@st.composite
def mutations(draw):
    text = SEED
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["value", "value", "hostile", "dup-line", "drop-line", "swap-lines", "insert", "truncate", "key"]))
        lines = text.splitlines(keepends=True)
        spans = [m.span(2) for m in VALUE_RE.finditer(text)]
        if kind in ("value", "hostile") and spans:
            a, b = spans[draw(st.integers(0, len(spans) - 1))]
            if kind == "value":
                new = draw(st.one_of(st.sampled_from(SCALARS), st.integers(-(2**70), 2**70).map(str)))
            else:
                new = json.dumps(draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20))))
            text = text[:a] + new + text[b:]
        elif kind == "dup-line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
        elif kind == "drop-line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:i] + lines[i + 1:])
        elif kind == "swap-lines" and len(lines) > 1:
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == "insert":
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(list('"[]{}=.,#\\\n \t\'') + HOSTILE)) + text[i:]
        elif kind == "truncate" and text:
            text = text[: draw(st.integers(0, len(text) - 1))]
        elif kind == "key" and spans:
            m = list(VALUE_RE.finditer(text))[draw(st.integers(0, len(spans) - 1))]
            key_end = m.group(1).index("=")
            new_key = draw(st.sampled_from(["id", "vlans", "bridge", "nic", "x y", '"$(reboot)"', "name", "a.b.c", "hosts"]))
            text = text[: m.start(1)] + new_key + " " + text[m.start(1) + key_end:]
    return text


@pytest.mark.root
def test_fuzzed_seed_mutations_are_refused_or_valid_never_a_crash(host, tmp_path):
    h = host
    before = host_snapshot(h)
    counts = {"tried": 0, "refused": 0, "valid": 0}
    f = tmp_path / "fuzz.toml"

    @settings(max_examples=3000 if LONG else 300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
    @given(mutations())
    def one(text):
        f.write_text(text, encoding="utf-8", errors="surrogatepass")
        counts["tried"] += 1
        code, out, err = cli_in_process("validate", str(f))
        assert code in (0, 2), (code, err[-1000:])
        if code == 0:
            counts["valid"] += 1  # a mutation that kept the file valid (a changed value, say): not applied here
            return
        counts["refused"] += 1
        check_refused(f, code, out, err, "validate")
        check_refused(f, *cli_in_process("up", str(f), *h.where), "up")

    one()
    assert_same(before, host_snapshot(h), "after the fuzzer")
    assert h.state_files() == []
    assert counts["refused"] > counts["tried"] // 3, counts
    print(f"\nfuzzer: {counts}")

