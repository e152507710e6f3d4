"""Which video platform this deployment uses (Zoom, or the demo stand-in), built once per app from its configuration."""

from __future__ import annotations

import threading

from flask import current_app

from integrations.video import VideoPlatform
from integrations.video.demo import DemoPlatform
from integrations.video.zoom import ZoomClient

from ..config import Settings, settings
from . import ServiceError

_platform_lock = threading.Lock()


class VideoPlatformUnavailable(ServiceError):
    code = "video_platform_unavailable"
    http_status = 503


def zoom_configured(config: Settings) -> bool:
    return bool(config.ZOOM_ACCOUNT_ID and config.ZOOM_CLIENT_ID and config.ZOOM_CLIENT_SECRET)


def build_video_platform(config: Settings) -> VideoPlatform:
    """Zoom when its credentials are set; otherwise (demo mode) a stand-in that enrols at once, locally."""
    if not zoom_configured(config):
        return DemoPlatform(config.BASE_URL + "/demo/room")
    return ZoomClient(
        config.ZOOM_ACCOUNT_ID,
        config.ZOOM_CLIENT_ID,
        config.ZOOM_CLIENT_SECRET,
        api_base=config.ZOOM_API_BASE,
        oauth_url=config.ZOOM_OAUTH_URL,
        user_id=config.ZOOM_USER_ID,
        timeout=(config.PROVIDER_CONNECT_TIMEOUT_SECONDS, config.PROVIDER_READ_TIMEOUT_SECONDS),
        max_retries=config.ZOOM_MAX_RETRIES,
        backoff_seconds=config.ZOOM_RETRY_BACKOFF_SECONDS,
        max_sleep_seconds=config.ZOOM_MAX_RETRY_SLEEP_SECONDS,
    )


def video_platform() -> VideoPlatform:
    """The app's Zoom client (or demo stand-in), built once so its access token is shared."""
    extensions = current_app.extensions
    with _platform_lock:
        if "webinar_pay.video" not in extensions:
            extensions["webinar_pay.video"] = build_video_platform(settings())
    return extensions["webinar_pay.video"]
