"""ThreatNetCache: a ThreatNet plugin for Limnoria (see README.md)."""
from importlib import reload

import supybot

from threatnet_irc.version import require

require("ThreatNetCache")  # before anything that needs a newer Limnoria

__version__ = "0.1.0"
__author__ = supybot.Author("ThreatNet developers", "threatnet", "")
__contributors__ = {}

from . import bridging, config, crowdsec, http, plugin, responders, signing

# A plugin reload picks up every module's code, each after those it imports.
for _module in (bridging, config, signing, responders, http, crowdsec, plugin):
    reload(_module)

Class = plugin.Class
configure = config.configure
