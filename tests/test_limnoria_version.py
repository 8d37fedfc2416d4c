"""The Limnoria floor: the version check each plugin makes when it loads, and setup.cfg's
install_requires saying the same floor."""
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from threatnet_irc.version import MINIMUM, LimnoriaTooOld, parse, require

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, parsed", [
    ("2023.11.18", (2023, 11, 18)), ("2026.10.4", (2026, 10, 4)),
    ("2024.12.20+git", (2024, 12, 20)), ("master", None), ("", None)])
def test_parse(text, parsed):
    assert parse(text) == parsed


@pytest.mark.parametrize("old", ["2023.1.28", "2023.11.1", "2021.07.21", "2022.2.2+git"])
def test_older_releases_are_refused_naming_the_minimum(old):
    with pytest.raises(LimnoriaTooOld) as caught:
        require("ThreatNetCache", old)
    assert str(caught.value).startswith(
        f"ThreatNetCache needs Limnoria 2023.11.18 or newer, this is Limnoria {old}")
    assert isinstance(caught.value, ImportError)  # what Limnoria's loaders report cleanly


@pytest.mark.parametrize("ok", ["2023.11.18", "2024.12.20", "2026.10.4", "2030.1.1+git",
                                "not-a-release"])
def test_the_floor_and_newer_load(ok):
    require("ThreatNetGuard", ok)


def test_the_running_limnoria_is_supported():
    require("ThreatNetCache")


def test_install_requires_says_the_floor():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    requires = setup["options"]["install_requires"].split()
    assert f"limnoria>={MINIMUM}" in requires


@pytest.mark.parametrize("plugin", ["ThreatNetCache", "ThreatNetGuard"])
def test_each_plugin_refuses_to_load_on_an_older_limnoria(plugin):
    # A fresh interpreter: the plugin package imported as Limnoria imports it, with
    # supybot.version saying Debian 12's release.
    code = ("import sys, supybot.version; supybot.version.version = '2023.1.28'\n"
            f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'plugins')!r}]\n"
            f"try:\n    import {plugin}\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=False).stdout
    assert out.startswith(f"{plugin} needs Limnoria 2023.11.18 or newer, "
                          "this is Limnoria 2023.1.28"), out
