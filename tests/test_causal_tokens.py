"""Pure token arithmetic (no services needed)."""

import pytest

from breakwater.database import causal


def test_parse_merge_and_cover():
    assert causal.parse("0-1-42,1-3-7") == {0: (1, 42), 1: (3, 7)}
    assert causal.merge("0-1-42", "0-1-40,1-2-5", None, "") == "0-1-42,1-2-5"
    assert causal.covers("0-1-42,1-2-9", "0-1-42,1-2-5")
    assert not causal.covers("0-1-41", "0-1-42")
    assert not causal.covers("0-1-50", "1-2-1")  # a domain the replica has never seen
    assert causal.covers("", "")


@pytest.mark.parametrize("bad", ["x", "0-1", "0-1-2-3", "0-1-a", "-1-1-1", "0-1-1;DROP", "0-1-1," * 200])
def test_malformed_tokens_are_rejected(bad):
    with pytest.raises(causal.InvalidToken):
        causal.parse(bad)
