"""Checks shared by the request bodies that ask for trials."""

from __future__ import annotations


def distinct_seeds(seeds: list[int]) -> list[int]:
    """Sorted; a repeated seed would ask for the same trial twice."""
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct")
    return sorted(seeds)
