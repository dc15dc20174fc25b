"""The transaction's wire format is the Redis protocol, byte for byte as hiredis packs it."""

from __future__ import annotations

import hiredis
from hypothesis import given
from hypothesis import strategies as st

from workers.resp import pack

args = st.one_of(st.text(max_size=40), st.binary(max_size=40),
                 st.text(min_size=1020, max_size=1100))  # sizes past the made headers
commands = st.lists(st.lists(args, min_size=1, max_size=5).map(tuple), max_size=5)


@given(commands)
def test_pack_is_what_hiredis_packs(cmds: list[tuple[str | bytes, ...]]) -> None:
    assert pack(cmds) == b"".join(hiredis.pack_command(c) for c in cmds)


def test_a_command_of_many_arguments() -> None:
    command = ("RPUSH", "k", *(str(n) for n in range(1500)))
    assert pack([command]) == hiredis.pack_command(command)
