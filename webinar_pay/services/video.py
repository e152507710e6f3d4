"""Which video platform this deployment uses (Zoom, or the demo stand-in), built once per app from its configuration."""

from __future__ import annotations

import threading

from flask import current_app

from integrations.video import VideoPlatform
from integrations.video.demo import DemoPlatform
from integrations.video.zoom import ZoomClient

from . import ServiceError

_platform_lock = threading.Lock()


class VideoPlatformUnavailable(ServiceError):
    code = "video_platform_unavailable"
    http_status = 503


def zoom_configured(config) -> bool:
    return bool(config.get("ZOOM_ACCOUNT_ID") and config.get("ZOOM_CLIENT_ID") and config.get("ZOOM_CLIENT_SECRET"))


def build_video_platform(config) -> VideoPlatform:
    """Zoom when its credentials are set; otherwise (demo mode) a stand-in that enrols at once, locally."""
    if not zoom_configured(config):
        return DemoPlatform(config["BASE_URL"] + "/demo/room")
    return ZoomClient(
        config["ZOOM_ACCOUNT_ID"],
        config["ZOOM_CLIENT_ID"],
        config["ZOOM_CLIENT_SECRET"],
        api_base=config["ZOOM_API_BASE"],
        oauth_url=config["ZOOM_OAUTH_URL"],
        user_id=config.get("ZOOM_USER_ID") or "me",
        timeout=(config["PROVIDER_CONNECT_TIMEOUT_SECONDS"], config["PROVIDER_READ_TIMEOUT_SECONDS"]),
        max_retries=int(config.get("ZOOM_MAX_RETRIES", 3)),
        backoff_seconds=float(config.get("ZOOM_RETRY_BACKOFF_SECONDS", 1.0)),
        max_sleep_seconds=float(config.get("ZOOM_MAX_RETRY_SLEEP_SECONDS", 30)),
    )


def video_platform() -> VideoPlatform:
    """The app's Zoom client (or demo stand-in), built once so its access token is shared."""
    extensions = current_app.extensions
    with _platform_lock:
        if "webinar_pay.video" not in extensions:
            extensions["webinar_pay.video"] = build_video_platform(current_app.config)
    return extensions["webinar_pay.video"]
