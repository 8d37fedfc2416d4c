"""The harness itself, with Limnoria's built-in plugins only: if these fail, the ThreatNet
scenarios cannot say anything."""
from __future__ import annotations

WATCH_CAPS = ("account-tag", "extended-join", "account-notify", "multi-prefix")


def test_ngircd_bot_answers_and_stops_cleanly(ngircd, lab_factory):
    lab = lab_factory(ngircd)
    channel = lab.channel()
    bot = lab.bot(lab.unique("echo"), channel, plugins=["Utilities"])
    bot.start()
    (alice,) = lab.connect(lab.client(lab.unique("alice")))
    alice.join(channel)
    reply = alice.ask(channel, "!echo hi there", bot.nick)
    assert reply.text == "hi there"
    assert reply.host == "127.0.0.1"
    bot.stop()
    assert not bot.alive()
    alice.wait_for(lambda l: l.command == "QUIT" and l.nick == bot.nick, timeout=5)
    assert not [e for e in bot.errors() if "Traceback" in e]


def test_inspircd_sasl_account_tags_and_chanserv_op(inspircd, lab_factory):
    lab = lab_factory(inspircd)
    channel = lab.channel()
    bot_nick, alice_nick = lab.unique("op"), lab.unique("alice")
    inspircd.register_accounts({bot_nick: "botpass1", alice_nick: "alicepass1"},
                               {channel: bot_nick})
    watcher = lab.client(lab.unique("watch"), caps=WATCH_CAPS)
    alice = lab.client(alice_nick, sasl=(alice_nick, "alicepass1"))
    lab.connect(watcher, alice)
    watcher.join(channel)

    bot = lab.bot(bot_nick, channel, plugins=["Utilities"], sasl=(bot_nick, "botpass1"))
    bot.start()
    watcher.wait_for(lambda l: l.command == "MODE" and l.params[1:] == ["+o", bot_nick])

    alice.join(channel)
    join = watcher.wait_for(lambda l: l.command == "JOIN" and l.nick == alice_nick)
    assert join.tags.get("account") == alice_nick
    assert join.params[1] == alice_nick  # extended-join: the account
    alice.send("PRIVMSG NickServ :LOGOUT")
    logout = watcher.wait_for(lambda l: l.command == "ACCOUNT" and l.nick == alice_nick)
    assert logout.params == ["*"]
