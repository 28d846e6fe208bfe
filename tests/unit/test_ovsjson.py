"""The fast OVSDB JSON parser agrees with python-ovs's own, however the text is chunked."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ovsnet.backends.ovsdb.ovsjson import FastParser

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def feed_in_chunks(parser, text: str, size: int) -> int:
    used = 0
    while used < len(text) and not parser.is_done():
        used += parser.feed(text[used:used + size])
    return used


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.integers(1, 17), st.sampled_from(["", " ", '{"next": 1}']))
def test_same_value_and_same_boundary_as_python_ovs(value, chunk, trailer):
    text = json.dumps(value, ensure_ascii=bool(chunk % 2)) + trailer
    fast = FastParser()
    used = feed_in_chunks(fast, text, chunk)
    assert fast.is_done()
    assert fast.finish() == value
    # Exactly one message is taken; what follows stays for the next one.
    assert text[used:] == trailer


def test_escaped_quotes_and_backslashes_split_anywhere():
    value = {"a": 'x\\"}]{[\\\\', "b": ["\\", '"']}
    text = json.dumps(value)
    for size in range(1, len(text) + 1):
        p = FastParser()
        assert feed_in_chunks(p, text, size) == len(text)
        assert p.finish() == value


def test_incomplete_input_is_not_done():
    p = FastParser()
    p.feed('{"a": [1, 2')
    assert not p.is_done()


def test_syntax_error_is_reported_as_a_string_like_python_ovs():
    p = FastParser()
    p.feed('{"a": tru}')
    assert p.is_done()
    assert isinstance(p.finish(), str)


def test_a_real_message_parses_to_the_expected_value():
    # python-ovs's own parser cannot be built once FastParser is installed (its
    # __new__ names the module's Parser), so the expected value is written out.
    text = '{"id":1,"result":[{"rows":[{"name":"br-ovs","tag":["set",[]]},"\\u00e9\\n"]}],"error":null}'
    p = FastParser()
    assert p.feed(text) == len(text)
    assert p.finish() == {"id": 1, "result": [{"rows": [{"name": "br-ovs", "tag": ["set", []]}, "\u00e9\n"]}], "error": None}
