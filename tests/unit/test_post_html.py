"""A post's HTML (service/web/posts.py) is byte for byte what the thread page's template
made of the same post when it rendered every post in Jinja (the loop kept here as the
reference)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote as urlquote

from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Environment

from common.bbcode import render
from service.web.posts import post_html
from service.web.times import day, stamp
from workers.projections.thread_page import post_prefix
from workers.readmodels import stored_posts
from workers.readmodels.values import PostEntry

# The thread page's loop over its posts before service/web/posts.py (service/web/templates/
# thread.html.j2 at 4150c02), with what came later: the author's reputation, and the
# history link of an edited post.
REFERENCE = """{% for p in view.posts %}
  <article class="post{% if p.author.op %} by-op{% endif %}" id="p{{ p.id }}">
    <aside class="author">
      <div class="name">{% if p.author.op %}<span class="op" title="started this thread">OP</span> {% endif %}<a href="/users/{{ p.author.name|urlquote }}">{{ p.author.name }}</a></div>
      <div class="role">{{ "guest" if p.author.guest else "member" }}</div>
      <div class="counters" title="threads started | posts written">{{ p.author.threads }} | {{ p.author.posts }}</div>
      <div class="reputation" title="likes received">reputation {{ p.author.reputation }}</div>
    </aside>
    <div class="content">
      <div class="post-head">
        <time datetime="{{ p.created_at }}" title="{{ p.created_at|stamp }}">{{ p.created_at|day }}</time>
        <a class="number" href="/posts/{{ p.id }}">#{{ p.number }}</a>
      </div>
{% if p.deleted %}
      <p class="deleted">This post was deleted.</p>
{% else %}
      <div class="body">{{ p.html|safe }}</div>
{% if p.edited_at %}
      <p class="edited">edited <time datetime="{{ p.edited_at }}" title="{{ p.edited_at|stamp }}">{{ p.edited_at|day }}</time> · <a href="/posts/{{ p.id }}/revisions">history</a></p>
{% endif %}
{% endif %}
      <div class="post-foot">
{% if p.likes %}<span class="likes">{{ p.likes }} like{{ "s" if p.likes != 1 }}</span>{% endif %}
{% if not p.deleted and not thread.locked %}
        <a class="quote-link" href="{{ base }}?page={{ view.page }}&amp;quote={{ p.id }}#reply">Quote</a>
{% endif %}
      </div>
    </div>
  </article>
{% endfor %}"""  # noqa: E501

_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_env.filters["day"] = day
_env.filters["stamp"] = stamp
_env.filters["urlquote"] = lambda value: urlquote(str(value), safe="")
_template = _env.from_string(REFERENCE)

times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC))


@given(post_id=st.integers(1, 2**63 - 1), thread_id=st.integers(1, 2**63 - 1),
       number=st.integers(1, 10**6), created=times, edited=st.none() | times,
       deleted=st.booleans(), body=st.text(max_size=80), author=st.text(max_size=32),
       guest=st.booleans(), op=st.booleans(), threads=st.integers(0, 10**6),
       posts=st.integers(0, 10**6), likes=st.integers(0, 10**4), page=st.integers(1, 10**4),
       locked=st.booleans(), reputation=st.integers(-10**4, 10**6))
def test_a_post_is_what_the_template_rendered(
        post_id: int, thread_id: int, number: int, created: datetime,
        edited: datetime | None, deleted: bool, body: str, author: str, guest: bool,
        op: bool, threads: int, posts: int, likes: int, page: int, locked: bool,
        reputation: int) -> None:
    stored = post_prefix(post_id, thread_id, number, created, edited, deleted, body, [],
                         author, guest, op)
    entry = PostEntry(stored_posts.decode(stored, thread_id, number), str(threads).encode(),
                      str(posts).encode(), str(reputation).encode(), str(likes).encode())
    head = entry.head()
    expected = _template.render(
        view={"page": page, "posts": [{
            "id": post_id, "number": number, "created_at": head.created_at,
            "edited_at": head.edited_at, "deleted": deleted,
            "html": "" if deleted else render(body), "likes": likes,
            "author": {"name": author, "guest": guest, "op": op, "threads": threads,
                       "posts": posts, "reputation": reputation},
        }]},
        thread={"locked": locked}, base=f"/threads/{thread_id}",
    )
    assert post_html(entry, page, locked) == expected
