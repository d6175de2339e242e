"""The pure translation functions: Discord ids and text in, neutral types out, and back."""

from __future__ import annotations

from intern.adapters.discord import inbound, outbound
from intern.bot.chat import ApprovalClick, Button, Card, StopClick

WHERE = inbound.Where("900000000000000001", "900000000000000002", "900000000000000003")


def test_clicks_carry_the_guild_the_roles_and_the_interaction_as_dedupe_key() -> None:
    click = inbound.click("intern:approve:5f0c", user="42", guild_id=9, interaction_id="77", roles=("1", "2"))
    assert click == ApprovalClick("5f0c", "42", "9", "discord", "approve", "discord:77", user_groups=("1", "2"))
    stop = inbound.click("intern:stop:s-1", user="42", guild_id=9, interaction_id="78", roles=())
    assert stop == StopClick("s-1", "42", "9", "discord", "discord:78")
    assert inbound.click("intern:deny:x", user="42", guild_id=None, interaction_id="79", roles=()) is None
    for bad in ("intern:launch:x", "intern:approve:", "other:approve:x", "intern:approve"):
        assert inbound.click(bad, user="42", guild_id=9, interaction_id="80", roles=()) is None


def test_places_use_the_parent_channel_for_threads_and_nothing_for_dms() -> None:
    assert inbound.where(1, 3, thread_parent=2, is_thread=True) == inbound.Where("1", "2", "3")
    assert inbound.where(1, 2) == inbound.Where("1", "2", "")
    assert inbound.where(None, 2) is None
    assert inbound.where(1, 3, thread_parent=None, is_thread=True) is None
    assert WHERE.conversation.channel_scope == ("discord", WHERE.guild, WHERE.channel)
    assert WHERE.target == WHERE.thread


def test_only_peoples_words_in_a_thread_become_messages() -> None:
    def msg(**kw: object) -> object:
        args: dict[str, object] = dict(user="5", message_id="6", text="<@99> stop ", message_type=0,
                                       author_is_bot=False, bot_user_id="99", roles=("7",))
        args.update(kw)
        return inbound.thread_message(WHERE, **args)  # type: ignore[arg-type]

    m = msg()
    assert m.text == "stop" and not m.mentioned and m.user_groups == ("7",)  # type: ignore[attr-defined]
    assert m.event_key == f"discord:{WHERE.guild}:{WHERE.thread}:6"  # type: ignore[attr-defined]
    assert msg(author_is_bot=True) is None
    assert msg(user="99") is None
    assert msg(message_type=18) is None  # "thread created" notice
    assert msg(message_type=19) is not None  # a reply
    assert inbound.thread_message(inbound.Where("1", "2"), user="5", message_id="6", text="hi", message_type=0,
                                  author_is_bot=False, bot_user_id="99", roles=()) is None


def test_thread_names_fit_discord() -> None:
    assert inbound.thread_name("\n\n  train   a model \n then push") == "train a model"
    assert len(inbound.thread_name("x" * 500)) == 100
    assert inbound.thread_name("   ") == "Intern session"


def test_slack_bold_becomes_discord_bold_outside_code() -> None:
    assert outbound.markdown("*Status* for `*x*` and\n```\n*raw*\n```") == "**Status** for `*x*` and\n```\n*raw*\n```"
    assert outbound.markdown("2 * 3 * 4 and **already**") == "2 * 3 * 4 and **already**"


def test_a_long_body_keeps_head_and_tail_in_a_closed_fence() -> None:
    body = "A" * 3000 + "```" + "B" * 3000
    text, cut = outbound.code_block("Script", body, 4096)
    assert cut and len(text) <= 4096 and text.startswith("**Script**\n```py\n") and text.endswith("\n```")
    assert text.count("```") == 2 and text[20:30] == "A" * 10 and text[-14:-4] == "B" * 10
    assert outbound.code_block("Diff", "+a", 4096) == ("**Diff**\n```diff\n+a\n```", False)


async def test_cards_map_state_to_colour_and_buttons_to_dynamic_items() -> None:
    card = Card(title="Intern status", fields=[("Status", "Working"), ("Empty", "")], lines=["☐ plan"],
                buttons=[], state="running")
    embed, cut = outbound.card_embed(card)
    assert not cut and embed.colour is not None and embed.colour.value == outbound.COLOURS["running"]
    assert [(f.name, f.value) for f in embed.fields] == [("Status", "Working"), ("Empty", "—"), ("Progress", "☐ plan")]
    assert outbound.card_view(card) is None
    card.buttons = [Button("stop", "s-1", "Stop")]
    view = outbound.card_view(card)
    assert view is not None and view.timeout is None
    assert [c["custom_id"] for row in view.to_components() for c in row["components"]] == ["intern:stop:s-1"]
