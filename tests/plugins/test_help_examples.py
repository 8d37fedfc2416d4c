"""Registry help points at what a pip user has: the files `threatnet-examples` writes and
the console scripts, never at the source tree's conf/."""
import supybot.conf as conf
from supybot.test import PluginTestCase


def helps(group):
    for _, value in group.getValues(getChildren=True):
        yield value._name, value._help


class HelpTestCase(PluginTestCase):
    plugins = ("ThreatNetCache", "ThreatNetGuard")

    def testNoHelpPointsAtTheSourceTree(self):
        for name in self.plugins:
            for setting, text in helps(conf.supybot.plugins.get(name)):
                self.assertNotIn("conf/", text, setting)
                self.assertNotIn("python -m threatnet_tools", text, setting)

    def testWhitelistHelpNamesTheExamples(self):
        self.assertRegexp("config help plugins.ThreatNetGuard.whitelist",
                          r"threatnet-examples DIR.*DIR/whitelist\.yaml")
