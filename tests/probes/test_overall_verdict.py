"""One function gives a host's overall verdict from its checks (and a check's from its
attempts); the engine, the proxy checks, follow-ups and the recipient page all use it."""

from itertools import combinations

import pytest

from probes.verification.base import ERROR, NOT_OPEN, OPEN, UNREACHABLE, VERDICTS, overall_verdict


def expected(seen: frozenset[str]) -> str:
    # The precedence table, written out: what an analyst reads the verdicts to mean.
    if OPEN in seen:
        return OPEN  # one open check is an open host, whatever else failed
    if seen == {UNREACHABLE}:
        return UNREACHABLE  # silence everywhere
    if NOT_OPEN in seen:
        return NOT_OPEN  # it answered and refused
    return ERROR  # nothing learnt (no checks, or errors with or without silence)


SUBSETS = [frozenset(c) for n in range(len(VERDICTS) + 1) for c in combinations(VERDICTS, n)]


@pytest.mark.parametrize("seen", SUBSETS, ids=lambda s: "+".join(sorted(s)) or "none")
def test_every_combination_of_verdicts_follows_the_precedence_table(seen):
    assert overall_verdict(seen) == expected(seen)
    # Repeats and order change nothing; a generator works as well as a list.
    assert overall_verdict(list(seen) * 2) == overall_verdict(v for v in sorted(seen))


def test_the_table_on_the_cases_people_ask_about():
    assert overall_verdict([NOT_OPEN, OPEN, ERROR]) == OPEN
    assert overall_verdict([UNREACHABLE, UNREACHABLE]) == UNREACHABLE
    assert overall_verdict([UNREACHABLE, NOT_OPEN]) == NOT_OPEN
    assert overall_verdict([UNREACHABLE, ERROR]) == ERROR
    assert overall_verdict([]) == ERROR
