"""Run Limnoria's PluginTestCase suites under plain pytest.

Limnoria's own runner (supybot-test) opens a registry before `supybot.conf` is imported;
we do the same here, then paper over two pytest incompatibilities (see
docs/LIMNORIA.md): pytest builds test classes with methodName='runTest', and
`from supybot.test import *` drags PluginTestCase itself into every test module.
"""
import os
import tempfile
import unittest
from pathlib import Path

_tmp = tempfile.mkdtemp(prefix="threatnet-limnoria-")
for sub in ("conf", "data", "data/tmp", "logs", "backup"):
    os.makedirs(os.path.join(_tmp, sub), exist_ok=True)
_registry = os.path.join(_tmp, "conf", "test.conf")
with open(_registry, "w") as f:
    f.write(f"""supybot.directories.backup: {_tmp}/backup
supybot.directories.conf: {_tmp}/conf
supybot.directories.data: {_tmp}/data
supybot.directories.data.tmp: {_tmp}/data/tmp
supybot.directories.log: {_tmp}/logs
supybot.reply.whenNotCommand: True
supybot.log.stdout: False
supybot.log.level: DEBUG
supybot.log.plugins.individualLogfiles: False
supybot.protocols.irc.throttleTime: 0
supybot.reply.whenAddressedBy.chars: @
supybot.networks.test.server: should.not.need.this
supybot.nick: test
supybot.databases.users.allowUnregistration: True
""")

import supybot.registry as registry  # noqa: E402

registry.open_registry(_registry)

import supybot.conf as conf  # noqa: E402
import supybot.log as log  # noqa: E402
import supybot.world as world  # noqa: E402

conf.allowEval = True
conf.supybot.flush.setValue(False)
world.testing = log.testing = True
world.myVerbose = 0
conf.supybot.directories.plugins.setValue(
    [str(Path(__file__).resolve().parents[2] / "plugins")])

import supybot.test as supytest  # noqa: E402

_plugin_init = supytest.PluginTestCase.__init__


def _init(self, methodName="runTest"):
    if methodName == "runTest" and not hasattr(self, "runTest"):
        unittest.TestCase.__init__(self, methodName)
        self.originals = {}
        self.timeout = supytest.timeout
    else:
        _plugin_init(self, methodName)


supytest.PluginTestCase.__init__ = _init


def pytest_pycollect_makeitem(collector, name, obj):
    if isinstance(obj, type) and obj.__module__ == "supybot.test":
        return []
    return None
