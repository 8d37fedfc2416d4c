"""Limnoria in test mode, in this process: importing this module opens a throw-away registry.

Limnoria's own runner (supybot-test) opens a registry before `supybot.conf` is used; so does
this module, with the settings plugin tests expect (the bot is `test`, commands start with
`@`, no throttling, plugins from plugins/), then sets test mode and lets PluginTestCase be
made with methodName='runTest' (see docs/LIMNORIA.md). Imported by the test
session's conftest (tests/conftest.py) and by the fuzz harness (lab.fuzz, bench/fuzz.py);
import it before anything imports supybot.conf (supybot.ircmsgs does too).

``WHITELIST`` is the Guard's whitelist for the plugin tests' #test channel.
"""
import os
import tempfile
import unittest

from lab.bots import PLUGINS_DIR

_tmp = tempfile.mkdtemp(prefix="threatnet-limnoria-")
for sub in ("conf", "data", "data/tmp", "data/web", "logs", "backup"):
    os.makedirs(os.path.join(_tmp, sub), exist_ok=True)
_registry = os.path.join(_tmp, "conf", "test.conf")
with open(_registry, "w") as f:
    f.write(f"""supybot.directories.backup: {_tmp}/backup
supybot.directories.conf: {_tmp}/conf
supybot.directories.data: {_tmp}/data
supybot.directories.data.tmp: {_tmp}/data/tmp
supybot.directories.data.web: {_tmp}/data/web
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
conf.supybot.directories.plugins.setValue([str(PLUGINS_DIR)])

import supybot.test as supytest  # noqa: E402

# PluginTestCase made with methodName='runTest' (as pytest builds test classes, and as a
# harness is made outside any runner) when the class has no such method.
_plugin_init = supytest.PluginTestCase.__init__


def _init(self, methodName="runTest"):
    if methodName == "runTest" and not hasattr(self, "runTest"):
        unittest.TestCase.__init__(self, methodName)
        self.originals = {}
        self.timeout = supytest.timeout
    else:
        _plugin_init(self, methodName)


supytest.PluginTestCase.__init__ = _init


# The plugin tests' #test whitelist: addresses in 192.0.2.0/24 and 2001:db8::/48, account bob.
WHITELIST = """\
channels:
  "#test":
    - 192.0.2.0/24
    - 2001:db8::/48
    - account:bob
"""
