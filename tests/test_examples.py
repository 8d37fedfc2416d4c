"""The example configuration: what `threatnet-examples` writes, setup.cfg ships the same
files, and the examples agree with each other and with the programs that read them."""
import configparser
import re
import shlex
from pathlib import Path

import pytest

from threatnet_tools import examples

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"


def test_setup_cfg_ships_every_example() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["options.package_data"]["threatnet_examples"].split() == list(examples.EXAMPLES)
    assert "threatnet_examples = conf" in setup["options"]["package_dir"]
    scripts = setup["options.entry_points"]["console_scripts"]
    for script in ("threatnet-keygen", "threatnet-agentcert", "threatnet-examples"):
        assert script in scripts
    for name in examples.EXAMPLES:
        assert (CONF / name).is_file(), name


def test_writes_every_example(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert examples.main([str(tmp_path / "etc")]) == 0
    for name in examples.EXAMPLES:
        assert (tmp_path / "etc" / name).read_text() == (CONF / name).read_text()
    assert str(tmp_path / "etc" / "fail2ban/action.d/threatnet.conf") in capsys.readouterr().out


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "whitelist.yaml").write_text("mine\n")
    with pytest.raises(SystemExit) as exited:
        examples.main([str(tmp_path)])
    assert exited.value.code == 2
    assert f"{tmp_path / 'whitelist.yaml'} exist(s); --force replaces them" in \
        capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whitelist.yaml"]  # nothing written
    assert (tmp_path / "whitelist.yaml").read_text() == "mine\n"
    assert examples.main([str(tmp_path), "--force"]) == 0
    assert (tmp_path / "whitelist.yaml").read_text() == (CONF / "whitelist.yaml").read_text()


def test_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        examples.main([str(tmp_path / "file")])
    assert "is not a directory" in capsys.readouterr().err


# --- rbldnsd: the daemon serves the files the DNSBL responder writes, in the same zone ---------

def rbldnsd_zones() -> tuple[str, dict[str, str], set[str]]:
    """(data directory, {dataset type: file}, zones) of rbldnsd.default's RBLDNSD line."""
    text = (CONF / "rbldnsd" / "rbldnsd.default").read_text()
    value = re.search(r'^RBLDNSD="(.*?)"', text, re.M | re.S).group(1).replace("\\\n", " ")
    words = shlex.split(value)
    directory = next(w[2:] for w in words if w.startswith("-r"))
    files, zones = {}, set()
    for word in words:
        if word.count(":") == 2:
            zone, kind, file = word.split(":")
            files[kind] = file
            zones.add(zone)
    return directory, files, zones


def registry(name: str) -> dict[str, str]:
    lines = (CONF / name).read_text().splitlines()
    return {key: value.strip() for key, _, value in
            (line.partition(":") for line in lines if line.startswith("supybot."))}


def test_rbldnsd_serves_the_responders_files_and_zone() -> None:
    directory, files, zones = rbldnsd_zones()
    settings = registry("ThreatNetCache.conf")
    dnsbl = "supybot.plugins.ThreatNetCache.responders.dnsbl."
    assert settings[dnsbl + "ip4file.#threatnet"] == f"{directory}/{files['ip4set']}"
    assert settings[dnsbl + "ip6file.#threatnet"] == f"{directory}/{files['ip6trie']}"
    assert zones == {settings[dnsbl + "zone.#threatnet"]}
    # and the bot settings quoted in rbldnsd.default are those very lines
    text = (CONF / "rbldnsd" / "rbldnsd.default").read_text()
    for key in ("ip4file", "ip6file", "zone"):
        assert f"#   {dnsbl}{key}.#threatnet: {settings[dnsbl + key + '.#threatnet']}\n" in text


# --- fail2ban: the action's own settings stay clear of fail2ban's reserved ones ---------------

# Action properties fail2ban itself gives a meaning (fail2ban/server/action.py): `timeout`
# is how long it lets a command run before killing it.
FAIL2BAN_RESERVED = {"timeout", "actionstart_on_demand", "family"}


def test_fail2ban_action_defines_no_reserved_property() -> None:
    action = configparser.RawConfigParser()
    action.read(CONF / "fail2ban" / "action.d" / "threatnet.conf")
    for section in ("Definition", "Init"):
        assert not FAIL2BAN_RESERVED & set(action[section]), section
    ban = action["Definition"]["actionban"]
    tags = set(re.findall(r"<([a-z]+)>", ban))
    builtin = {"ip", "name"}
    assert tags - builtin <= set(action["Init"]), tags - builtin - set(action["Init"])
    assert "-m <httptimeout>" in ban
