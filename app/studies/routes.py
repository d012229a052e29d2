"""Grid studies: the paper's grid for a task, run as stored trials; the logic is in studies.grid."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.api.deps import SessionDep
from app.api.responses import errors
from app.auth.caller import CallerDep
from app.auth.quota import check_trial_quota
from app.db.models import GridStudy
from app.db.session import session_scope
from app.dispatch import get_dispatcher
from app.errors import NotFoundError
from app.schemas.common import ObjectId
from app.studies import grid
from app.studies.schemas import StudyOut, StudyRequest, StudySummary

router = APIRouter(tags=["studies"])


@router.post(
    "/studies",
    response_model=StudyOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "every trial of the grid is already stored: done at once", "model": StudyOut},
        **errors(403, 413, 429),
    },
)
def create_study(request: StudyRequest, response: Response, caller: CallerDep) -> dict:
    """Run budgets x weak shares x methods x seeds as trials; points the methods cannot train on are skipped."""
    with session_scope() as session:
        # Checked before a trial row is written: a refused study stores nothing.
        study, to_run = grid.create(session, request, caller.team,
                                    check_work=lambda n: check_trial_quota(session, caller, n))
        study_id = study.id
    # Committed: now the workers can see the rows they are sent.
    get_dispatcher().enqueue_trials(to_run)
    with session_scope() as session:
        out = grid.describe(session, session.get(GridStudy, study_id))
    if out["status"] in ("done", "failed"):
        response.status_code = status.HTTP_200_OK
    return out


@router.get("/studies/{study_id}", response_model=StudyOut, responses=errors(404))
def get_study(study_id: Annotated[ObjectId, Path()], session: SessionDep, caller: CallerDep) -> dict:
    """The study's trial counts, every point of its grid with its interval, the points skipped and
    why, and the winner at each budget."""
    study = session.get(GridStudy, study_id)
    if study is None or study.team != caller.team:
        raise NotFoundError(f"study {study_id!r} not found")
    return grid.describe(session, study)


@router.get("/studies", response_model=list[StudySummary])
def list_studies(
    session: SessionDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict]:
    """The caller's team's studies, newest first."""
    return [grid.summarize(session, s) for s in grid.recent(session, limit, caller.team)]
