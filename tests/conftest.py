"""Shared fixtures. Tests stay small: the `tiny` preset, 2 s clips, 127.0.0.1 only.

The folders under tests/ mirror the packages (tests/regnet/data tests regnet/data, ...); tests/e2e holds
the paths that cross all three. Helpers live in tests/helpers, and a test module imports them from
there, never from another test module; their fixtures (the server's database URLs, the throwaway
PostgreSQL cluster, the `evaluate` tests' tiny benchmark) are served to every test from here."""

from __future__ import annotations

import os
import shutil

import pytest

from regnet.config import Config, preset

# The helpers assert too (a browser helper checks what the page shows): rewrite their asserts as
# pytest does a test module's, so a failure there says what it compared.
pytest.register_assert_rewrite("tests.helpers")
pytest_plugins = ("tests.helpers.server", "tests.helpers.bench")


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
