"""Task names are a team's own: two teams may each upload a "reviews".

A team's upload is stored as "<team>.<name>" (a "." is in no task or team name, so the two never
blur), which makes it a different task everywhere a name keys something: the trial key, the weak
labels' cache, the engine's view of the data. Built-in and hub tasks keep their plain names and are
everyone's. Uploads stored before names were per team keep their plain names and are found by them.
A caller only ever sees and types the plain name (`Task.shown_name`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import TEAM_SEPARATOR, Task


def stored_name(team: str | None, name: str) -> str:
    """What an upload called `name` by `team` is stored as."""
    return f"{team}{TEAM_SEPARATOR}{name}" if team else name


def names_for(team: str | None, name: str) -> list[str]:
    """Stored names that `name` may stand for, asked by `team`: its own upload first, then a shared
    task (or the team's upload from before names were per team)."""
    return [stored_name(team, name), name] if team else [name]


def find(session: Session, name: str, team: str | None) -> Task | None:
    """The task `team` means by `name` (None for the engine's own lookups: the stored name), or None.

    A task of another team is never returned, whatever its stored name.
    """
    candidates = names_for(team, name)
    rows = {t.name: t for t in session.scalars(select(Task).where(Task.name.in_(candidates)))}
    for candidate in candidates:
        task = rows.get(candidate)
        if task is not None and (team is None or task.team in (None, team)):
            return task
    return None
