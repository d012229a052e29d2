"""The `labelmix` command: the engine's commands (trial, weak-labels, tasks) and the service's
(serve, migrate, demo)."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.cli import app

DEFAULT_PORT = 8765


def run_migrations() -> None:
    from alembic import command
    from alembic.config import Config
    from pathlib import Path

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    command.upgrade(config, "head")


@app.command()
def migrate() -> None:
    """Bring the database (LABELMIX_DATABASE_URL) to the latest schema."""
    run_migrations()


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    migrate_first: Annotated[bool, typer.Option(help="run migrations before starting (default: on SQLite)")] = None,
) -> None:
    """Run the API. Unconfigured it is embedded: a SQLite file, trials run in this process."""
    import uvicorn

    from .config import get_settings

    settings = get_settings()
    if migrate_first if migrate_first is not None else settings.database_url.startswith("sqlite"):
        run_migrations()
    mode = "embedded (in-process trials)" if settings.embedded else f"distributed (broker {settings.broker_url})"
    typer.echo(f"labelmix at http://{host}:{port} ({mode}); database {settings.database_url}", err=True)
    uvicorn.run("app.main:app", host=host, port=port, log_level="warning")


@app.command()
def demo(
    task: str = "cities",
    budget: float = 256.0,
    weak_cost: float = 0.10,
    gold_cost: float = 1.0,
    model: str = "minilm-l6",
    max_trials: int = 6,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds per point")] = "0",
    port: int = DEFAULT_PORT,
    png: Annotated[str, typer.Option(help="where to write the frontier chart")] = "labelmix-frontier.png",
    quick: Annotated[bool, typer.Option(help="short trials: 60 steps a stage at lr 1e-3, 400 test examples")] = True,
    keep_serving: Annotated[bool, typer.Option(help="leave the service running afterwards")] = False,
) -> None:
    """Start the embedded service, run a real allocation end to end, print and plot the result."""
    from .demo import run_demo

    run_demo(
        task=task,
        budget=budget,
        weak_cost=weak_cost,
        gold_cost=gold_cost,
        model=model,
        max_trials=max_trials,
        seeds=[int(s) for s in seeds.split(",")],
        port=port,
        png=png,
        quick=quick,
        keep_serving=keep_serving,
    )
