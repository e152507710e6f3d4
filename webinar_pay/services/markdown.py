"""A creator's session description, written in Markdown, as safe HTML for the public session page.

Two layers, each enough on its own for the usual attacks: markdown-it renders with raw HTML off (a `<script>` the
creator types is shown as text) and refuses `javascript:`-like links; nh3 (the Rust `ammonia` sanitizer) then keeps
only an allowlist of tags, attributes and URL schemes, whatever the renderer let through. Headings move one level
down (the page's title is the only `h1`), line breaks are kept as the creator typed them, and links open with
`rel="nofollow noopener noreferrer ugc"`.

Images: the page's Content-Security-Policy loads images from this site only, so an image from another host would
show as a broken frame (and would tell that host who reads the page). Such images become links to the image,
labelled with its alt text; images on this site (a relative or same-host address) are kept.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "blockquote", "code", "pre", "h2", "h3", "h4", "h5", "h6",
        "hr", "img"}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow noopener noreferrer ugc"


def _renderer(own_host: str) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})

    def image(renderer, tokens, index, options, env) -> str:
        token = tokens[index]
        src = token.attrGet("src") or ""
        alt = renderer.renderInlineAsText(token.children or [], options, env) or src
        host = urlsplit(src).netloc.lower()
        if host and host != own_host:
            return f'<a href="{escape(src)}">{escape(alt)}</a>'
        return renderer.image(tokens, index, options, env)

    md.add_render_rule("image", image)
    return md


def render_markdown(text: str | None, own_host: str = "") -> Markup:
    """`text` (Markdown) as sanitized HTML; `own_host` is this site's host, whose images may be shown."""
    if not text:
        return Markup("")
    md = _renderer(own_host.lower())
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
    return sanitize(md.renderer.render(tokens, md.options, {}))


def sanitize(html: str) -> Markup:
    """Only the allowlisted tags, attributes and URL schemes of `html` are kept; the rest goes (content kept)."""
    clean = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel=LINK_REL,
                      strip_comments=True)  # fmt: skip
    return Markup(clean)  # noqa: S704 - nh3's output is the allowlist above


def plain_text(text: str | None, length: int = 200) -> str:
    """The description as one line of plain text (for link previews), cut at a word within `length` characters."""
    words = " ".join(render_markdown(text).striptags().split())
    if len(words) <= length:
        return words
    return words[: length - 1].rsplit(" ", 1)[0] + "…"
