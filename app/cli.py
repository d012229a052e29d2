"""The `labelmix` command: the engine's commands (trial, weak-labels, tasks) and the service's
(serve, migrate, demo, study).

Each command imports the service's modules it uses when it runs: `labelmix --help` and the client
commands start in about a second, without the database layer, Optuna, Alembic or uvicorn (the service
modules the commands use took 2.4 s more to import, measured here beside two training workers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from worker.cli import app, tasks_app

from . import dispatch  # noqa: F401  every command's transactions hand their work to it (app.outbox)
from .cli_values import numbers, params
from .client_cli import register as register_client_commands

DEFAULT_PORT = 8765


def migration_scripts() -> Path:
    """The migrations: app/migrations in an installed wheel (setup.py maps them there), the top-level
    alembic/ in a checkout."""
    installed = Path(__file__).resolve().parent / "migrations"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[1] / "alembic"


def migration_config():
    """Alembic's configuration from the code (not an alembic.ini: an installed wheel has none). The
    database comes from the settings (env.py)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migration_scripts()))
    return config


def run_migrations() -> None:
    from alembic import command

    # loaded when the command runs, not for --help (the module's docstring)
    from app.db.session import session_scope
    from app.trials.aggregates import refresh_all

    command.upgrade(migration_config(), "head")
    with session_scope() as session:  # trials stored before aggregates existed: counted now, not in a read
        refresh_all(session)
    # Optuna's schema and tables too, not at the first allocation: optuna-dashboard on a fresh stack
    # reads them before any allocation exists (it exited: relation "version_info" does not exist).
    from app.allocations.search import optuna_storage
    from app.config import get_settings

    optuna_storage(get_settings().optuna_storage_url)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


keys_app = typer.Typer(help="API keys: each belongs to a team; the service stores only a digest.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="the team the key acts for: lowercase letters, digits, - or _")],
    label: Annotated[str, typer.Option(help="a note for `keys list` (whose key, what for)")] = "",
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.auth.keys import create_key
    from app.db.session import session_scope
    from app.errors import RequestError

    try:
        with session_scope() as session:
            row, key = create_key(session, team, label)
    except RequestError as exc:
        raise typer.BadParameter(exc.message, param_hint="--team") from None
    typer.echo(f"created key {row.id} for team {row.team!r}; send it as 'Authorization: Bearer <key>':", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: its id, what is shown of it, team, label, and when it was created, last used and revoked."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.auth.keys import list_keys
    from app.db.session import session_scope

    def when(moment) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    with session_scope() as session:
        rows = list_keys(session)
        typer.echo(f"{'id':>4}  {'key':14} {'team':16} {'created':16}  {'last used':16}  {'revoked':16}  label")
        for r in rows:
            typer.echo(f"{r.id:>4}  {r.shown + '…':14} {r.team:16} {when(r.created_at):16}  {when(r.last_used_at):16}  "
                       f"{when(r.revoked_at):16}  {r.label}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="the key's id, or its start as `keys list` shows it")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.auth.keys import revoke_key
    from app.db.session import session_scope
    from app.errors import NotFoundError

    try:
        with session_scope() as session:
            row = revoke_key(session, key)
            typer.echo(f"revoked key {row.id} ({row.shown}…) of team {row.team!r}")
    except NotFoundError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


trials_app = typer.Typer(help="Done trials carried between databases (JSONL: key, spec, result a line).",
                         no_args_is_help=True)
app.add_typer(trials_app, name="trials")


@trials_app.command("export")
def trials_export(
    out: Annotated[Path, typer.Argument(help="the JSONL file to write (a new file)")],
    task: Annotated[Optional[str], typer.Option(help="only this task's trials (its stored name)")] = None,
) -> None:
    """Write every done trial in the database (LABELMIX_DATABASE_URL) to a JSONL file."""
    import json

    # loaded when the command runs, not for --help (the module's docstring)
    from app.db.session import session_scope
    from app.errors import NotFoundError
    from app.trials.exchange import export_trials

    n = 0
    try:
        with session_scope() as session:
            records = export_trials(session, task)
            with out.open("x") as file:
                for record in records:
                    file.write(json.dumps(record) + "\n")
                    n += 1
    except (NotFoundError, FileExistsError) as exc:
        typer.echo(f"export: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {n:,} done trials to {out}")


@trials_app.command("import")
def trials_import(
    path: Annotated[Path, typer.Argument(help="a JSONL file written by `labelmix trials export`")],
) -> None:
    """Store an export's trials as done (each under its key; one already done here is kept as it is)."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.db.session import session_scope
    from app.errors import RequestError, RequestErrors
    from app.trials.exchange import import_trials, read_records

    try:
        with path.open() as file:
            records = read_records(file)
        with session_scope() as session:
            done = import_trials(session, records)
    except RequestError as exc:
        problems = exc.problems if isinstance(exc, RequestErrors) else [(exc.field, exc.message)]
        for _, message in problems:
            typer.echo(f"import: {message}", err=True)
        raise typer.Exit(2) from None
    carried = (f"; {done.carried_forward:,} two-class trials of an older engine that this one reproduces exactly, "
               "stored as this engine's") if done.carried_forward else ""
    typer.echo(f"stored {done.stored:,} trials ({done.already_done:,} were done here already) "
               f"of {', '.join(done.tasks) or 'no task'}{carried}")


@app.command()
def migrate() -> None:
    """Bring the database (LABELMIX_DATABASE_URL) to the latest schema."""
    run_migrations()


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="where the copy goes (a new file)")],
) -> None:
    """Copy the embedded SQLite database consistently, even while `labelmix serve` writes to it."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.config import get_settings
    from app.db.sqlite_files import backup as backup_sqlite

    try:
        size = backup_sqlite(get_settings().database_url, path)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        typer.echo(f"backup: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"backed up {get_settings().database_url} to {path} ({size:,} bytes)")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    migrate_first: Annotated[bool, typer.Option(help="run migrations before starting (default: on SQLite)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes (distributed mode only); each has its own "
                                         "connection pool and answer cache")] = 1,
) -> None:
    """Run the API. Unconfigured it is embedded: a SQLite file, trials run in this process."""
    import os
    import tempfile

    import uvicorn

    # loaded when the command runs, not for --help (the module's docstring)
    from app.config import get_settings

    settings = get_settings()
    if workers > 1 and settings.embedded:
        typer.echo(f"refusing to start {workers} API processes in embedded mode: each would run trials itself "
                   "against one SQLite file. Set LABELMIX_DATABASE_URL (Postgres) and LABELMIX_BROKER_URL, start "
                   "Celery workers, then serve with --workers.", err=True)
        raise typer.Exit(2)
    if not settings.require_api_keys and not is_loopback(host):
        typer.echo(f"refusing to listen on {host} without API keys: anyone who can reach it could spend your "
                   "budget and read your tasks. Set LABELMIX_REQUIRE_API_KEYS=true and create a key with "
                   "`labelmix keys create --team NAME` (or serve on 127.0.0.1).", err=True)
        raise typer.Exit(2)
    if migrate_first if migrate_first is not None else settings.database_url.startswith("sqlite"):
        run_migrations()
    mode = "embedded (in-process trials)" if settings.embedded else f"distributed (broker {settings.broker_url})"
    typer.echo(f"labelmix at http://{host}:{port} ({mode}, {workers} process(es)); database {settings.database_url}",
               err=True)
    with tempfile.TemporaryDirectory(prefix="labelmix-metrics-") as counts:
        if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            # One /metrics for all the API processes (any of them answers a scrape): each writes its
            # counts to files here and app/api/metrics.py sums them. A fresh folder: no stale counts.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = counts
        uvicorn.run("app.main:app", host=host, port=port, log_level="warning", workers=workers)


@app.command()
def demo(
    # word_sentiment: a built-in task where MiniLM has something real to learn (cities is at chance).
    task: str = "word_sentiment",
    budget: float = 256.0,
    weak_cost: float = 0.10,
    gold_cost: float = 1.0,
    model: str = "minilm-l6",
    # Points of the full-budget allocation (the quarter-budget one asks half as many): 4 keeps the demo
    # within minutes since engine version 2 trains every stage to convergence (2-4x the steps of before).
    max_trials: int = 4,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds per point")] = "0",
    port: int = DEFAULT_PORT,
    png: Annotated[str, typer.Option(help="where to write the frontier chart")] = "labelmix-frontier.png",
    recipe: Annotated[str, typer.Option(help="training recipe: fast (caps nothing a budget buys) or paper")] = "fast",
    keep_serving: Annotated[bool, typer.Option(help="leave the service running afterwards")] = False,
) -> None:
    """Start the embedded service, run a real allocation end to end, print and plot the result."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.demo import run_demo
    from app.service_client import ServiceStartError

    try:
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
            recipe=recipe,
            keep_serving=keep_serving,
        )
    except ServiceStartError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port") from None


@app.command()
def study(
    task: Annotated[str, typer.Option(help="a registered or built-in task")] = "cities",
    model: str = "minilm-l6",
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "seq_sft",
    budgets: Annotated[str, typer.Option(help="comma-separated budgets ($)")] = "16,64,256,1024",
    shares: Annotated[str, typer.Option(help="comma-separated weak shares of spend, in [0, 1]")] = "0,0.25,0.5,0.75,1",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds: one trial per point per seed")] = "0,1,2",
    weak_cost: float = 0.10,
    gold_cost: float = 1.0,
    recipe: Annotated[Optional[str], typer.Option(help="training recipe (default: the service's, fast)")] = None,
    param: Annotated[
        Optional[list[str]], typer.Option("--param", "-p", help="recipe override as name=value (repeatable)")
    ] = None,
    weak_labeler: str = "default",
    url: Annotated[Optional[str], typer.Option(help="a running service (default: start an embedded one)")] = None,
    port: Annotated[int, typer.Option(help="port of the embedded service")] = DEFAULT_PORT,
    png: Annotated[Optional[str], typer.Option(help="the figure (default labelmix-study-<task>.png)")] = None,
    json_path: Annotated[Optional[str], typer.Option("--json", help="write the final study JSON here")] = None,
) -> None:
    """Run the paper's grid (budgets x weak shares x methods x seeds) as stored trials; table, winners, figure."""
    # loaded when the command runs, not for --help (the module's docstring)
    from app.service_client import ServiceStartError
    from app.study import run_study

    request = {
        "task": task, "model": model, "methods": [m.strip() for m in methods.split(",") if m.strip()],
        "budgets": numbers(budgets, float, "--budgets"), "weak_shares": numbers(shares, float, "--shares"),
        "seeds": numbers(seeds, int, "--seeds"),
        "weak_cost": weak_cost, "gold_cost": gold_cost, "params": params(param), "weak_labeler": weak_labeler,
        **({"recipe": recipe} if recipe else {}),
    }
    try:
        run_study(request, url=url, port=port, png=png or f"labelmix-study-{task}.png", json_path=json_path)
    except ServiceStartError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port") from None


# The service from a terminal: allocate, status, frontier, export.
register_client_commands(app, tasks_app)
