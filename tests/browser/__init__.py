"""Browser tests: the app driven through Debian's headless Chromium with Playwright."""
