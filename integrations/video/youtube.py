"""YouTube live streams: no API and no per-viewer access control, only the stream's address to hand out."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{6,20}")


def video_id(url: str) -> str | None:
    """The video id of youtube.com/watch?v=…, youtube.com/live/…, youtu.be/… and /embed/… addresses."""
    parts = urlparse(url or "")
    host = (parts.hostname or "").lower()
    candidate = None
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif host.endswith("youtube.com") or host.endswith("youtube-nocookie.com"):
        segments = [s for s in parts.path.split("/") if s]
        if segments[:1] == ["watch"]:
            candidate = (parse_qs(parts.query).get("v") or [""])[0]
        elif len(segments) >= 2 and segments[0] in {"live", "embed", "shorts", "v"}:
            candidate = segments[1]
    return candidate if candidate and VIDEO_ID.fullmatch(candidate) else None


def embed_url(url: str) -> str | None:
    """The privacy-enhanced player address for the stream, or None when the address names no video."""
    vid = video_id(url)
    return f"https://www.youtube-nocookie.com/embed/{vid}" if vid else None
