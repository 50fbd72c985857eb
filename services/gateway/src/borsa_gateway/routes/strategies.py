"""Strategies and the JSON Schema of their parameters."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ..strategies import STRATEGIES

router = APIRouter(prefix="/strategies", tags=["bots"])


class StrategyOut(BaseModel):
    name: str
    description: str
    params_schema: dict


@router.get("", response_model=list[StrategyOut])
async def strategies() -> list[StrategyOut]:
    return [StrategyOut(name=s.name, description=s.description, params_schema=s.schema()) for s in STRATEGIES.values()]
