"""The ``tn`` command group both plugins add to, and how a newcomer finds its commands.

``tn``, ``tn help`` and ``help tn`` list every ThreatNet command the bot has (both
plugins' when it runs both). Limnoria calls a command that two loaded plugins define
ambiguous and answers neither, so ``tn`` and ``tn help`` are ThreatNetCache's when it is
loaded and ThreatNetGuard's otherwise (``TnGroup.answers_help``). A plugin's nested
``tn`` class derives from ``TnGroup``; the plugin class takes ``TnHelp`` first, so that
``help tn`` lists the commands rather than the docstring of the ``tn`` method.
"""
import supybot.callbacks as callbacks
import supybot.world as world
from supybot.dynamicScope import DynamicScope

# Limnoria before 2024 has no module-level ``dynamic`` (only the builtin); the class is
# stateless, so an instance of our own walks the same frames.
dynamic = DynamicScope()

_OWN = ("tn", "help")  # the group's own entries, left out of the list


def own_commands(cb) -> set[str]:
    """The ``tn`` subcommands plugin ``cb`` defines ("bridge status", "topic", ...)."""
    group = getattr(cb, "tn", None)
    if not isinstance(group, callbacks.Commands):
        return set()
    nested = {sub.name() for sub in group.cbs}  # tn whitelist: its commands count
    return {name for name in group.listCommands() if name not in _OWN and name not in nested}


def commands(irc) -> list[str]:
    """Every ``tn`` subcommand of the plugins loaded on ``irc``, sorted."""
    return sorted(set().union(*(own_commands(cb) for cb in irc.callbacks)))


def summary(irc) -> str:
    """The line ``tn``, ``tn help`` and ``help tn`` answer with."""
    return ("ThreatNet commands: " + ", ".join(f"tn {name}" for name in commands(irc))
            + ". help tn <command> gives one's syntax; in a channel, any of them starts "
              "with the bot's prefix (!tn status).")


class TnGroup(callbacks.Commands):
    """The base of each plugin's ``tn`` command group."""

    def answers_help(self) -> bool:
        """Whether this plugin answers ``tn`` and ``tn help`` (one plugin must)."""
        return True

    def isCommandMethod(self, name):
        if name in _OWN and not self.answers_help():
            return False
        return super().isCommandMethod(name)

    def tn(self, irc, msg, args):
        """takes no arguments

        Lists the ThreatNet commands of this bot. Anyone may ask.
        """
        irc.reply(summary(irc))

    def help(self, irc, msg, args):
        """takes no arguments

        Lists the ThreatNet commands of this bot (help tn <command> explains one).
        Anyone may ask.
        """
        irc.reply(summary(irc))


def cache_loaded() -> bool:
    """Whether ThreatNetCache is loaded on any network (it then answers ``tn help``)."""
    return any(irc.getCallback("ThreatNetCache") is not None for irc in world.ircs)


class TnHelp:
    """Plugin mixin: ``help tn`` answers with the command list, and ``plugin help``
    ends with every command of the plugin (read from it: none can be left out)."""

    def getPluginHelp(self):
        about = " ".join((type(self).__doc__ or "").split("\n\n")[0].split())
        return about + " Commands: " + ", ".join(
            f"tn {name}" for name in sorted(own_commands(self))) + "."

    def getCommandHelp(self, command, simpleSyntax=None):
        if list(command) == ["tn"]:
            irc = dynamic.irc or (world.ircs[0] if world.ircs else None)
            if irc is not None:
                return summary(irc)
        return super().getCommandHelp(command, simpleSyntax)
