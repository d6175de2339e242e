"""The card buttons as discord.py dynamic items.

Everything a press needs is in the `custom_id` (`intern:approve:<approval id>`, `intern:deny:…`,
`intern:stop:<session id>`, `intern:cancel_job:<Hub job id>`, `intern:feedback:up|down:<session id>`), so presses on cards posted before a restart are dispatched from the
template alone, without any view kept in memory.
"""

from __future__ import annotations

from typing import Any, Protocol

import discord

from intern.adapters.discord.inbound import CUSTOM_ID

STYLES = {"approve": discord.ButtonStyle.success, "deny": discord.ButtonStyle.danger,
          "stop": discord.ButtonStyle.danger, "cancel_job": discord.ButtonStyle.danger,
          "feedback": discord.ButtonStyle.secondary}
LABELS = {"approve": "Approve", "deny": "Deny", "stop": "Stop", "cancel_job": "Cancel job", "feedback": "👍"}
LABEL_LIMIT = 80


class ButtonHandler(Protocol):
    async def on_card_button(self, interaction: discord.Interaction[Any], action: str, value: str) -> None: ...


class CardButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID):
    def __init__(self, action: str, value: str, label: str | None = None) -> None:
        super().__init__(discord.ui.Button(style=STYLES[action], label=(label or LABELS[action])[:LABEL_LIMIT],
                                           custom_id=f"intern:{action}:{value}"))
        self.action, self.value = action, value

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: Any) -> CardButton:
        return cls(match["action"], match["value"], getattr(item, "label", None))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler: ButtonHandler = interaction.client  # type: ignore[assignment]
        await handler.on_card_button(interaction, self.action, self.value)
