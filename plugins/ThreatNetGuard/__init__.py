"""ThreatNetGuard: a ThreatNet plugin for Limnoria (see README.md)."""
from importlib import reload

import supybot

from threatnet_irc.version import require

require("ThreatNetGuard")  # before anything that needs a newer Limnoria

__version__ = "0.1.0"
__author__ = supybot.Author("ThreatNet developers", "threatnet", "")
__contributors__ = {}

from . import config, plugin

reload(config)
reload(plugin)

Class = plugin.Class
configure = config.configure
