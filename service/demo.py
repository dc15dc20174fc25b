"""Demo data for ``forum dev``: a few sections and threads with real-looking history,
including a 2011 thread that came back to the top when it got replies in 2018 and 2024."""

from __future__ import annotations

import msgspec

_THREADS = [
    ("history", "What really ended the Western Roman Empire?", [
        ("Gibbon", "2011-06-08T09:12:00Z", "Decline was long: [b]four centuries[/b] of it."),
        ("Pirenne", "2011-06-09T18:40:00Z",
         "[quote=Gibbon post=1]Decline was long[/quote]\nTrade kept going until the 7th "
         "century, though."),
        ("Ward-Perkins", "2018-02-14T11:03:00Z",
         "Pottery finds say otherwise: living standards fell fast after 400."),
        ("Gibbon", "2024-09-30T20:15:00Z", "Seven years on, still the best thread here."),
    ]),
    ("history", "Sources on the Hanseatic League", [
        ("Kate", "2019-04-02T08:00:00Z", "Looking for [i]primary[/i] sources in English."),
        ("Lars", "2019-04-02T10:30:00Z", "Try [url=https://en.wikipedia.org/]Wikipedia[/url] "
         "first, then its bibliography."),
    ]),
    ("science", "Why is the sky blue?", [
        ("Newt", "2023-01-10T12:00:00Z", "Rayleigh scattering, but why not violet?"),
    ]),
    ("off-topic", "Introduce yourself", [
        ("admin2", "2015-05-05T05:05:00Z", "Say hello!"),
        ("Kate", "2015-05-06T07:00:00Z", "Hello from Lübeck."),
        ("Newt", "2021-11-11T11:11:00Z", "Hi all <3"),
    ]),
]


def lines() -> list[bytes]:
    out = []
    for forum, title, posts in _THREADS:
        out.append(msgspec.json.encode({
            "forum": forum, "title": title,
            "posts": [{"author": a, "created_at": t, "body": b, "id": i}
                      for i, (a, t, b) in enumerate(posts, start=1)],
        }))
    return out
