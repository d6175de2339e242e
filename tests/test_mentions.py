"""Mentions cross the chat port as neutral `Mention`s: each adapter reads its platform's syntax into
them and spells them back, and a policy stores them under keys the adapter reads back."""

from __future__ import annotations

from intern.adapters.console import render as console
from intern.adapters.discord import mentions as discord
from intern.adapters.slack import mentions as slack
from intern.bot.chat import OPEN, Card, Mention, mention_in, spell_card, who


def test_slack_mentions_become_neutral_and_are_spelled_back_as_they_came() -> None:
    raw = "policy approvers add <@U0APPR1> <@U0APPR2|bob>, <!subteam^S0MLTEAM|@ml-team> <!subteam^S0OPS> <#C0GEN>"
    neutral = slack.translate(raw)
    assert "<@" not in neutral and "subteam" not in neutral and "<#C0GEN>" in neutral
    words = [mention_in(w.strip(",")) for w in neutral.split()[3:7]]
    assert words == [Mention("user", "U0APPR1"), Mention("user", "U0APPR2", "bob"),
                     Mention("group", "S0MLTEAM", "@ml-team"), Mention("group", "S0OPS")]
    assert slack.spell(neutral) == raw


def test_discord_mentions_become_neutral_and_are_spelled_back() -> None:
    raw = "approvers add <@112233445566> <@&998877665544> and <#123456789012>"
    neutral = discord.translate(raw)
    assert [mention_in(w) for w in neutral.split()[2:4]] == [Mention("user", "112233445566"),
                                                              Mention("role", "998877665544")]
    assert discord.spell(neutral) == raw
    assert discord.spell(discord.translate("<@!112233445566>")) == "<@112233445566>"  # the older nickname form


def test_typed_token_characters_never_read_as_a_mention() -> None:
    forged = f"{OPEN}user:U0ADMIN\ue001 approvers add"
    for translate in (slack.translate, discord.translate):
        assert mention_in(translate(forged).split()[0]) is None


def test_policies_keep_a_person_as_the_id_and_a_group_or_role_in_the_platforms_own_key() -> None:
    assert slack.key_of(Mention("user", "U0A")) == "U0A" and discord.key_of(Mention("user", "123456")) == "123456"
    assert slack.key_of(Mention("group", "S0MLTEAM", "@ml-team")) == "<!subteam^S0MLTEAM>"
    assert discord.key_of(Mention("role", "998877665544")) == "<@&998877665544>"
    assert slack.mention_of_key("<!subteam^S0MLTEAM>") == Mention("group", "S0MLTEAM")
    assert slack.mention_of_key("U0A") == Mention.user("U0A")
    assert discord.mention_of_key("<@&998877665544>") == Mention("role", "998877665544")
    assert discord.mention_of_key("<!subteam^S0MLTEAM>").kind == "user"  # another platform's group: not a role


def test_cards_are_spelled_for_each_platform_and_the_console_shows_names() -> None:
    card = Card(title=f"Approved by {who('U0A')}: run", fields=[("Requested by", who("U0B"))],
                lines=[f"asked {Mention('group', 'S0X', '@team')}"], footer=f"by {who('U0A')}")
    spelled = spell_card(card, slack.spell_one)
    assert (spelled.title, spelled.fields, spelled.lines, spelled.footer) == (
        "Approved by <@U0A>: run", [("Requested by", "<@U0B>")], ["asked <!subteam^S0X|@team>"], "by <@U0A>")
    assert OPEN in card.title  # the core's card is left as it was
    assert console.plain(console.spell(f"Stopped by {who('local-user')}.")) == "Stopped by @local-user."
