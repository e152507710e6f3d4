"""Session descriptions in Markdown: what the sanitizer lets through, and the session page that shows it."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest

from tests.conftest import Api, session_payload
from webinar_pay.services.markdown import plain_text, render_markdown, sanitize

HOST = "tickets.example.com"


def render(text: str) -> str:
    return str(render_markdown(text, HOST))


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        '<a href="#" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        '<svg onload="alert(1)">',
        "<style>body{display:none}</style>",
    ],
)
def test_raw_html_is_shown_as_text_never_as_markup(text):
    html = render(text)
    assert "<script" not in html.lower() and "<img" not in html and "<iframe" not in html and "<svg" not in html
    assert "<style" not in html and "<a " not in html
    assert "&lt;" in html  # the creator sees what they typed


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "  javascript:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "&#106;avascript:alert(1)",
        "%6Aavascript:alert(1)",
    ],
)
def test_links_to_scripts_never_become_links(target):
    html = render(f"[click me]({target})") + render(f"<{target}>") + render(f"![x]({target})")
    # What a browser would follow: the scheme of every address left, once its entities are decoded.
    schemes = {urlsplit(unescape(url).strip()).scheme.lower() for url in re.findall(r'(?:href|src)="([^"]*)"', html)}
    assert schemes <= {"", "http", "https", "mailto"}, html


@pytest.mark.parametrize(
    ("dirty", "kept", "gone"),
    [
        ('<a href="javascript:alert(1)">x</a>', "<a", "javascript"),
        ('<img src="/a.png" onerror="alert(1)">', '<img src="/a.png">', "onerror"),
        ('<p onclick="alert(1)" style="color:red">x</p>', "<p>x</p>", "onclick"),
        ("<script>alert(1)</script><p>ok</p>", "<p>ok</p>", "<script"),
        ("<iframe src=https://evil.example></iframe>", "", "<iframe"),
        ('<a href="https://ok.example/">ok</a>', 'rel="nofollow noopener noreferrer ugc"', "target"),
        ("<h1>Title</h1><!-- note -->", "Title", "<!--"),
    ],
)
def test_the_sanitizer_keeps_only_its_allowlist(dirty, kept, gone):
    """The second layer on its own: whatever the Markdown renderer lets through, only the allowlist survives."""
    clean = str(sanitize(dirty))
    assert kept in clean and gone not in clean.lower(), clean


def test_images_from_other_hosts_become_links_and_this_sites_stay_images():
    outside = render("![the poster](https://images.example.org/poster.png)")
    assert "<img" not in outside
    assert (
        '<a href="https://images.example.org/poster.png" rel="nofollow noopener noreferrer ugc">the poster</a>'
        in outside
    )
    own = render(f"![map](https://{HOST}/static/map.png) ![logo](/static/logo.png)")
    assert (
        f'<img src="https://{HOST}/static/map.png" alt="map">' in own
        and '<img src="/static/logo.png" alt="logo">' in own
    )


def test_markdown_formats_keeps_line_breaks_and_moves_headings_down():
    html = render(
        "# Programme\nFirst washes\nthen glazes\n\n- **brushes**\n- _paper_\n\n[More](https://ok.example/more)"
    )
    assert "<h2>Programme</h2>" in html and "<h1" not in html
    assert "First washes<br>\nthen glazes" in html
    assert "<li><strong>brushes</strong></li>" in html and "<li><em>paper</em></li>" in html
    assert '<a href="https://ok.example/more" rel="nofollow noopener noreferrer ugc">More</a>' in html


def test_plain_text_for_link_previews():
    assert plain_text("# Hi\nThis is **bold** & <b>") == "Hi This is bold & <b>"
    long = plain_text("word " * 100, length=40)
    assert len(long) <= 40 and long.endswith("…")


def test_the_session_page_renders_the_description_safely_with_link_preview_tags(client, create_creator):
    _creator, token = create_creator()
    api = Api(client, token)
    description = "# Programme\nWashes, then glazes.\n<script>alert('x')</script>\n[Materials](https://ok.example/list)"
    status, body = api.post("/api/v1/sessions", session_payload(description=description, title="Watercolour & ink"))
    assert status == 201, body
    assert api.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
    response = client.get(f"/s/{body['id']}")
    page = response.get_data(as_text=True)
    assert "<h2>Programme</h2>" in page and "Washes, then glazes.<br>" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    url = f"http://127.0.0.1:5000/s/{body['id']}"
    assert '<meta property="og:title" content="Watercolour &amp; ink">' in page
    assert f'<meta property="og:url" content="{url}">' in page and f'<link rel="canonical" href="{url}">' in page
    assert '<meta name="twitter:card" content="summary">' in page
    summary = re.search(r'<meta property="og:description" content="([^"]*)">', page)[1]
    assert summary.startswith("Programme Washes, then glazes.") and "<" not in summary
    assert '<meta name="twitter:description" content="' + summary + '">' in page
    listing = client.get("/").get_data(as_text=True)
    assert "Programme Washes, then glazes." in listing and "<h2>Programme" not in listing
