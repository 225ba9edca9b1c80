"""`twin bot telegram` and `twin bot discord`: the twin as a chat bot for the owner's friends.

Tokens come from the settings: `[bots] telegram_token` / `discord_token` in twin.toml, or better
the environment (TWIN_BOTS__TELEGRAM_TOKEN, TWIN_BOTS__DISCORD_TOKEN). README.md, section
"Telegram and Discord bots", explains how to create the bots.

The Telegram and Discord libraries and the twin are imported by the commands that run a bot:
registered under `twin`, this module is loaded by every `twin` command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twin.command_line import command_settings, fail

if TYPE_CHECKING:
    from bots.core import BotCore
    from bots.serve import RunningBot
    from twin.config import Settings

bot_app = typer.Typer(
    help="Run the twin as a Telegram or Discord bot that friends can talk to.",
    no_args_is_help=True,
)
log = logging.getLogger(__name__)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="The twin's home directory (default: twin --home, $TWIN_HOME or ./.twin)."),
]


@bot_app.command("telegram")
def run_telegram(
    home: HomeOption = None,
    api_url: Annotated[
        str | None,
        typer.Option(help="Root URL of a self-hosted Bot API server (default: Telegram's)."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="Receive updates by webhook at this public HTTPS URL instead of polling "
            "(put a reverse proxy in front of --listen/--port)."
        ),
    ] = None,
    listen: Annotated[str, typer.Option(help="Webhook: the local address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Webhook: the local port to listen on.")] = 8443,
) -> None:
    """Answer on Telegram until Ctrl-C (long polling, or a webhook with --webhook-url)."""
    from bots.telegram_bot import TelegramBot, Webhook

    settings = command_settings(home)
    token = settings.bots.telegram_token
    if not token:
        raise fail(
            "no Telegram bot token. Create a bot with @BotFather, then set "
            "TWIN_BOTS__TELEGRAM_TOKEN (or telegram_token under [bots] in twin.toml)."
        )
    webhook = Webhook(webhook_url, listen, port) if webhook_url else None
    _run(settings, lambda core: [TelegramBot(core, token, base_url=api_url, webhook=webhook)])


@bot_app.command("discord")
def run_discord(
    home: HomeOption = None,
    api_url: Annotated[str | None, typer.Option(hidden=True)] = None,
    gateway_url: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Answer Discord DMs, and mentions in the allowed channels, until Ctrl-C."""
    from bots.discord_bot import DiscordBot

    settings = command_settings(home)
    token = settings.bots.discord_token
    if not token:
        raise fail(
            "no Discord bot token. Create an application and bot in the Discord developer "
            "portal, then set TWIN_BOTS__DISCORD_TOKEN (or discord_token under [bots] in "
            "twin.toml)."
        )
    _run(
        settings,
        lambda core: [DiscordBot(core, token, api_base=api_url, gateway_url=gateway_url)],
    )


def _run(settings: Settings, make_bots: Callable[[BotCore], Sequence[RunningBot]]) -> None:
    import asyncio

    import discord
    from telegram.error import InvalidToken

    from bots.core import BotCore
    from bots.serve import run_until_stopped
    from bots.state import BotState
    from serving.service import open_twin

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Every long poll would be an INFO line.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.bots.friends:
        log.warning("no friends are configured under [bots.friends]: everyone else is a stranger")
    twin = open_twin(settings)
    try:
        with BotState.open(settings.home) as state:
            core = BotCore(twin, state)
            asyncio.run(run_until_stopped(make_bots(core)))
    except InvalidToken as exc:
        raise fail(f"Telegram refused the bot token ({exc}).") from exc
    except discord.LoginFailure as exc:
        raise fail(f"Discord refused the bot token ({exc}).") from exc
    except discord.PrivilegedIntentsRequired as exc:
        raise fail(
            "Discord requires the Message Content intent: enable it for the bot in the "
            "developer portal (Bot → Privileged Gateway Intents)."
        ) from exc
    finally:
        twin.models.close()
        twin.store.close()


if __name__ == "__main__":
    bot_app()
