"""Every key a read script touches is one it was given in KEYS (so a script can be sent
where its keys live, e.g. to a Redis Cluster node): no key is built in Lua."""

from __future__ import annotations

import re

import pytest

from workers.readmodels import scripts

SOURCES = {name: getattr(scripts, name) for name in dir(scripts)
           if name.isupper() and not name.startswith("_")}
CALL = re.compile(r"redis\.call\('(\w+)',\s*([^,)]+)")


def test_there_are_scripts_to_check():
    assert {"THREAD_PAGE", "POST", "LISTING", "FORUMS", "ARCHIVE_YEARS", "USER",
            "HELD"} <= set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_key_a_script_touches_comes_from_keys(name: str):
    calls = CALL.findall(SOURCES[name])
    assert calls
    for command, key in calls:
        assert re.fullmatch(r"KEYS\[[^\]]+\]|key|summary|posts|likes|unpack\(KEYS",
                            key.strip()), (name, command, key)
    # ``key`` is only the counters helper's parameter, the others the whole helper's,
    # themselves called with KEYS[...]
    for argument in re.findall(r"counters\(([^)]*)\)", SOURCES[name]):
        assert argument in ("key",) or argument.startswith("KEYS["), (name, argument)
    for arguments in re.findall(r"whole\(([^)]*)\)", SOURCES[name]):
        given = [a.strip() for a in arguments.split(",")]
        assert given == ["summary", "posts", "likes"] or all(
            a.startswith("KEYS[") for a in given), (name, arguments)
