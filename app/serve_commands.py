"""`twin serve`: everything at once — the MCP server over HTTP, the bots, scheduled retraining —
and `twin serve mcp` for the MCP server alone (stdio, for desktop agents)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from app.common import err, fail, settings
from mcp_server.launch import HostOption, HttpOption, PortOption, run_mcp

if TYPE_CHECKING:
    from bots.serve import RunningBot
    from bots.state import BotState
    from serving.service import Twin
    from twin.config import Settings

serve_app = typer.Typer(help="Serve the twin: MCP over HTTP, the bots, and scheduled retraining.")


@serve_app.command("mcp")
def mcp(http: HttpOption = False, host: HostOption = None, port: PortOption = None) -> None:
    """Serve the twin over MCP: stdio for desktop agents, or streamable HTTP with --http."""
    from rich.markup import escape

    from mcp_server.http import ServeError

    try:
        run_mcp(settings(), http=http, host=host, port=port)
    except ServeError as exc:
        raise fail(escape(str(exc))) from exc


@serve_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    no_mcp: Annotated[bool, typer.Option("--no-mcp", help="Do not serve MCP over HTTP.")] = False,
    no_bots: Annotated[bool, typer.Option("--no-bots", help="Do not run the bots.")] = False,
    no_schedule: Annotated[
        bool, typer.Option("--no-schedule", help="Do not retrain on the schedule.")
    ] = False,
) -> None:
    """Run every configured face of the twin until Ctrl-C: the MCP server over HTTP (when a
    token is set), the Telegram and Discord bots (when their tokens are set), and retraining
    on the schedule in twin.toml."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio  # here, like the rest: every `twin` command loads this module

    from bots.serve import run_until_stopped
    from bots.state import BotState
    from mcp_server.http import ServeError
    from serving.service import open_twin
    from twin.config import ConfigError

    s = settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    twin = open_twin(s)
    try:
        with BotState.open(s.home) as state:
            services = _services(
                s, twin, state, mcp=not no_mcp, bots=not no_bots, schedule=not no_schedule
            )
            if not services:
                raise fail(
                    "nothing to serve: set [mcp] token, a bot token ([bots]) or enable "
                    "[schedule] in twin.toml (`twin serve mcp` serves MCP over stdio)"
                )
            asyncio.run(run_until_stopped(services))
    except (ConfigError, ServeError) as exc:
        raise fail(str(exc)) from exc
    finally:
        twin.models.close()
        twin.store.close()


def _services(
    s: Settings, twin: Twin, state: BotState, *, mcp: bool, bots: bool, schedule: bool
) -> list[RunningBot]:
    from bots.core import BotCore
    from bots.discord_bot import DiscordBot
    from bots.telegram_bot import TelegramBot
    from mcp_server.http import HttpService
    from mcp_server.server import build_server
    from training.schedule import RetrainScheduler

    services: list[RunningBot] = []
    if mcp and (s.mcp.token or s.mcp.friend_tokens):
        services.append(HttpService(build_server(twin, "http"), s.mcp, s.mcp.host, s.mcp.port))
        err.print(f"MCP over HTTP at http://{s.mcp.host}:{s.mcp.port}/mcp")
    if bots and (s.bots.telegram_token or s.bots.discord_token):
        core = BotCore(twin, state)
        if s.bots.telegram_token:
            services.append(TelegramBot(core, s.bots.telegram_token))
            err.print("Telegram bot")
        if s.bots.discord_token:
            services.append(DiscordBot(core, s.bots.discord_token))
            err.print("Discord bot")
    if schedule and s.schedule.enabled:
        services.append(RetrainScheduler(s))
        err.print(f"Retraining checked on the cron {s.schedule.retrain_cron!r}")
    return services
