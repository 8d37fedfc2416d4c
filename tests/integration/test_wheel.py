"""The built wheel alone, installed in a fresh venv with no checkout on any path, has what
an operator needs: a real bot (that venv's supybot) runs both plugins on a real ngIRCd, and
the console scripts write the example configs, a signing key and an agent certificate. Once
with the newest Limnoria, once with the oldest supported (Debian 13's).

Needs the network, or pip's cache: the isolated build fetches setuptools and wheel, and the
install fetches the dependencies (limnoria, cryptography, ...) from the package index.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness import AGENT_IP, CACHE, GUARD, answers, voice_change, write_whitelist
from lab import ROOT
from threatnet_irc.version import MINIMUM
from threatnet_tools.examples import EXAMPLES

# What setup.cfg builds the wheel from.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "threatnet", "threatnet_irc",
           "threatnet_tools", "plugins", "conf")


def run(argv: list, cwd: Path, *, ok: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    if ok and done.returncode != 0:
        pytest.fail(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (the build writes build/ and *.egg-info
    next to setup.cfg), the copy then removed: nothing of it is left to import from."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", src], tmp)
    shutil.rmtree(src)
    (built,) = (tmp / "dist").glob("threatnet-*.whl")
    return built


def fresh_venv(directory: Path) -> Path:
    run([sys.executable, "-m", "venv", directory], directory.parent)
    return directory / "bin"


@pytest.fixture(scope="module", params=["newest", MINIMUM])
def venv(request, wheel: Path, tmp_path_factory) -> Path:
    """The bin/ of a fresh venv with only the built wheel (and its dependencies) installed,
    with the newest Limnoria or the oldest supported."""
    bin_dir = fresh_venv(tmp_path_factory.mktemp("venv") / "venv")
    limnoria = [] if request.param == "newest" else [f"limnoria=={request.param}"]
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel, *limnoria], bin_dir.parent)
    return bin_dir


def test_nothing_comes_from_the_checkout(venv: Path, tmp_path: Path) -> None:
    code = ("from importlib.util import find_spec as spec\n"
            "for name in ('threatnet', 'threatnet_irc', 'threatnet_tools', 'threatnet_examples',"
            " 'ThreatNetCache', 'ThreatNetGuard'):\n"
            "    print(spec(name).submodule_search_locations[0])\n")
    out = run([venv / "python", "-c", code], tmp_path).stdout.split()
    assert len(out) == 6 and all(path.startswith(str(venv.parent)) for path in out), out


def test_console_scripts(venv: Path, tmp_path: Path) -> None:
    out = run([venv / "threatnet-examples", "etc"], tmp_path).stdout
    for name in EXAMPLES:
        assert (tmp_path / "etc" / name).read_text() == (ROOT / "conf" / name).read_text()
        assert f"etc/{name}" in out
    again = run([venv / "threatnet-examples", "etc"], tmp_path, ok=False)
    assert again.returncode == 2 and "--force replaces them" in again.stderr
    run([venv / "threatnet-examples", "etc", "--force"], tmp_path)

    out = run([venv / "threatnet-keygen", "agent.key", "--comment", "agent1"], tmp_path).stdout
    assert "add this line to the key ring of every listening agent:" in out
    assert stat.S_IMODE((tmp_path / "agent.key").stat().st_mode) == 0o600

    out = run([venv / "threatnet-agentcert", "agent.pem", "--account", "agent1"], tmp_path).stdout
    assert "certificate and key written to" in out and "CERT ADD" in out
    assert stat.S_IMODE((tmp_path / "agent.pem").stat().st_mode) == 0o600


def test_a_bot_runs_both_plugins_from_the_wheel(venv: Path, ngircd, lab_factory,
                                                tmp_path: Path) -> None:
    lab = lab_factory(ngircd)
    channel = lab.channel()
    no_plugins = tmp_path / "plugins"  # the plugins come from the wheel's entry points
    no_plugins.mkdir()
    bot = lab.bot(lab.unique("wheel"), channel, plugins=["ThreatNetCache", "ThreatNetGuard"],
                  settings={**CACHE, **GUARD}, plugins_dir=no_plugins,
                  supybot=venv / "supybot")
    write_whitelist(bot, {channel: [AGENT_IP]})
    bot.start()
    (agent,) = lab.connect(lab.client(lab.unique("agent"), source=AGENT_IP))
    agent.join(channel)
    agent.wait_for(lambda line: voice_change(line, "+", agent.nick))  # the Guard
    agent.privmsg(channel, "!tn check 11.7.7.7")  # the Cache
    assert answers(agent, [bot.nick]) == {
        bot.nick: f"{agent.nick}: Not a current threat in {channel}: 11.7.7.7"}
    assert bot.errors() == []


def test_an_older_limnoria_refuses_the_plugins(wheel: Path, ngircd, lab_factory,
                                               tmp_path: Path) -> None:
    """Debian 12's Limnoria: pip will not install the wheel with it. Forced (the wheel's
    dependencies, then Limnoria downgraded), a bot that finds the plugins in its plugins
    directory runs, and says why they do not load. (Found through entry points instead,
    pkg_resources itself refuses: VersionConflict, limnoria>=2023.11.18.)"""
    bin_dir = fresh_venv(tmp_path / "venv")
    refused = run([bin_dir / "python", "-m", "pip", "install", wheel, "limnoria==2023.1.28"],
                  tmp_path, ok=False)
    assert refused.returncode != 0 and f"limnoria>={MINIMUM}" in refused.stdout + refused.stderr
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], tmp_path)
    run([bin_dir / "python", "-m", "pip", "install", "-q", "limnoria==2023.1.28"], tmp_path)
    (site,) = (bin_dir.parent / "lib").glob("python3*/site-packages")
    lab = lab_factory(ngircd)
    bot = lab.bot(lab.unique("old"), lab.channel(), plugins=["ThreatNetCache", "ThreatNetGuard"],
                  plugins_dir=site, supybot=bin_dir / "supybot")
    bot.start()  # it joins: the bot runs, without the plugins
    log = bot.read_log()
    for plugin in ("ThreatNetCache", "ThreatNetGuard"):
        assert re.search(rf"Failed to load {plugin}: import error \({plugin} needs Limnoria "
                         rf"{re.escape(MINIMUM)} or newer, this is Limnoria 2023\.0?1\.28", log)
