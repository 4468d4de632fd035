"""Shared fixtures. Tests stay small: the `tiny` preset, 2 s clips, 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil

import pytest

from regnet.config import Config, preset


@pytest.fixture
def tiny_config() -> Config:
    return preset("tiny")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium for Playwright; a missing browser fails in CI and skips locally."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/setup.sh installs the Debian package)")
        pytest.skip("chromium not installed")
    return path
