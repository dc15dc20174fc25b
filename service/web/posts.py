"""A thread page's posts as HTML: the markup around each post's body, written here rather
than in the template because a page holds 25 posts and the template loop cost ten times
the read (the body itself is rendered once, when the post is projected). The result is
byte for byte what the template made (tests/unit/test_post_html.py keeps its loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote as urlquote

from markupsafe import escape  # as Jinja escapes: the page is what the template made

from service.domain.actors import Actor
from service.domain.threads import may_change, may_like
from service.web.kept import TOKEN_SLOT
from service.web.times import MONTHS
from workers.readmodels.values import PostEntry, PostHead, ThreadPage

_MONTHS: Final = {f"{number:02d}": name for number, name in enumerate(MONTHS, 1)}


def _time(iso: str) -> str:
    """``<time>`` of an RFC 3339 UTC time as the read models hold it (``2011-06-08T12:00:
    00.000Z``), read off the text: formatting a datetime (strftime) cost more than the
    rest of a post."""
    day = f"{iso[8:10].lstrip('0')} {_MONTHS[iso[5:7]]} {iso[:4].lstrip('0')}"
    return f'<time datetime="{iso}" title="{day} {iso[11:16]} UTC">{day}</time>'


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page, for the controls each post shows them: a signed-in actor and
    the numbers of the posts they like (a guest sees no controls but Quote)."""

    actor: Actor
    liked: frozenset[int] = field(default_factory=frozenset)


# A post form's token: the page's own (service/web/rendering.py puts the viewer's in).
_CSRF: Final = f'<input type="hidden" name="_csrf_token" value="{TOKEN_SLOT}">'


def _button(action: str, label: str) -> str:
    return (f'<form method="post" action="{action}" class="inline">{_CSRF}'
            f'<button type="submit" class="link-button">{label}</button></form>')


def controls_html(post: PostHead, locked: bool, viewer: Viewer | None) -> str:
    """Like or Unlike, Edit and Delete, as far as the viewer may use them (the same rules
    as the decisions: service/domain/threads.py)."""
    if viewer is None or post.deleted:
        return ""
    actor, author, out = viewer.actor, post.author, ""
    base = f"/posts/{post.id}"
    if may_like(actor, author.name, author.guest):
        out += (_button(f"{base}/unlike", "Unlike") if post.number in viewer.liked
                else _button(f"{base}/like", "Like"))
    if may_change(actor, author.name, author.guest):
        if not locked or actor.moderates:
            out += f'<a class="edit-link" href="{base}/edit">Edit</a>'
        out += f'<a class="delete-link" href="{base}/delete">Delete</a>'
    return f"        {out}\n" if out else ""


def post_html(entry: PostEntry, page: int, locked: bool, viewer: Viewer | None = None
              ) -> str:
    """One post as shown on ``page`` of its thread, with its author's counters, likes,
    and the controls ``viewer`` may use."""
    post = entry.head()
    author = post.author
    if post.deleted:
        content = '      <p class="deleted">This post was deleted.</p>\n'
    else:
        content = f'      <div class="body">{post.html}</div>\n'
        if post.edited_at is not None:
            content += (f'      <p class="edited">edited {_time(post.edited_at)} · '
                        f'<a href="/posts/{post.id}/revisions">history</a></p>\n')
    likes = int(entry.likes)
    liked = (f'<span class="likes">{likes} like{"s" if likes != 1 else ""}</span>'
             if likes else "")
    quote = ("" if post.deleted or locked else
             f'        <a class="quote-link" href="/threads/{post.thread_id}?page={page}'
             f'&amp;quote={post.id}#reply">Quote</a>\n')
    quote += controls_html(post, locked, viewer)
    mark = '<span class="op" title="started this thread">OP</span> ' if author.op else ""
    return (
        f'  <article class="post{" by-op" if author.op else ""}" id="p{post.id}">\n'
        '    <aside class="author">\n'
        f'      <div class="name">{mark}<a href="/users/{urlquote(author.name, safe="")}">'
        f'{escape(author.name)}</a></div>\n'
        f'      <div class="role">{"guest" if author.guest else "member"}</div>\n'
        '      <div class="counters" title="threads started | posts written">'
        f"{entry.threads.decode()} | {entry.posts.decode()}</div>\n"
        f'      <div class="reputation" title="likes received">reputation '
        f"{entry.reputation.decode()}</div>\n"
        "    </aside>\n"
        '    <div class="content">\n'
        '      <div class="post-head">\n'
        f"        {_time(post.created_at)}\n"
        f'        <a class="number" href="/posts/{post.id}">#{post.number}</a>\n'
        "      </div>\n"
        f"{content}"
        '      <div class="post-foot">\n'
        f"{liked}{quote}"
        "      </div>\n"
        "    </div>\n"
        "  </article>\n"
    )


def posts_html(view: ThreadPage, viewer: Viewer | None = None) -> str:
    """The page's posts, with today's counters and likes."""
    return "".join(post_html(post, view.page, view.thread.locked, viewer)
                   for post in view.posts)
