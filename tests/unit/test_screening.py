"""Screening's rules: names (honorifics, word order, transliterations), dates of birth, nationality,
blocking keys, the check's verdict and detail, and the two watchlist file formats."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from app.domain.checks.screening import screening_check
from app.domain.kyc import CheckStatus
from app.domain.screening import (
    Agreement,
    Entry,
    Subject,
    WatchlistInvalid,
    common_sounds,
    country,
    dob_agreement,
    entry_keys,
    entry_sounds,
    match,
    name_score,
    subject_keys,
)
from app.domain.watchlist_files import entries
from tests.screening_lists import BILLION_LAUGHS, Listed, write_csv, write_un_xml

DOB = date(1971, 3, 9)


@pytest.mark.parametrize(("ours", "theirs"), [
    ("Shri Rajesh Kumar Sharma", "SHARMA, Rajesh Kumar"),  # honorific, order, case, punctuation
    ("Dr. Ayesha Siddiqui", "Siddiqui Ayesha"),
    ("Smt Lakshmi Devi", "Devi Lakshmi"),
    ("Md Yusuf Khan", "Mohammed Yusuf Khan"),  # Md / Mohd written out
    ("José Álvarez", "Jose Alvarez"),  # accents
])
def test_honorifics_order_and_accents_do_not_change_a_name(ours, theirs):
    assert name_score(ours, theirs) == (1.0, "spelling")


@pytest.mark.parametrize(("ours", "theirs"), [
    ("Mohammed Yusuf", "Muhammad Yusuf"), ("Mohamad Yousef", "Muhammad Yusuf"), ("Osama bin Laden", "Usama bin Ladin"),
    ("Aleksandr Ivanov", "Alexander Ivanov"),
])
def test_transliterations_match_by_sound_a_little_below_an_exact_name(ours, theirs):
    score, how = name_score(ours, theirs)
    assert how == "transliteration" and 0.85 <= score < 0.95


def test_other_names_do_not_match():
    assert name_score("Rajesh Sharma", "Rajesh Verma")[0] < 0.85
    assert name_score("Mohammed", "Mohammed Ali Khan")[0] < 0.85  # one shared word is not a match


def test_a_listed_year_agrees_with_any_date_in_it():
    assert dob_agreement(["1971"], DOB) is Agreement.AGREES
    assert dob_agreement(["1971-03"], DOB) is Agreement.AGREES
    assert dob_agreement(["1971-03-09"], DOB) is Agreement.AGREES
    assert dob_agreement(["1972", "1971-03-10"], DOB) is Agreement.DIFFERS
    assert dob_agreement([], DOB) is Agreement.UNKNOWN and dob_agreement(["1971"], None) is Agreement.UNKNOWN


def test_countries_from_codes_names_and_demonyms():
    assert [country(v) for v in ("IN", "ind", "India", "Indian", "Iran (Islamic Republic of)", "Atlantis")] == [
        "IN", "IN", "IN", "IN", "IR", None]


def _hit(entry: Entry, **subject: object):
    return match(Subject(**{"names": ("Mohammed Yusuf",), "dob": DOB, **subject}), entry, "un", 3)  # type: ignore[arg-type]


def test_a_strong_name_with_nothing_against_it_is_strong():
    hit = _hit(Entry("QDi.1", ("Yusuf Mohammed",), birth_dates=("1971",), countries=("AF",)),
               nationalities=("AF",))
    assert hit is not None and hit.strong
    assert (hit.dob, hit.nationality) == (Agreement.AGREES, Agreement.AGREES)


def test_a_strong_name_with_another_nationality_asks_for_review():
    hit = _hit(Entry("QDi.1", ("Mohammed Yusuf",), countries=("AF",)), nationalities=("IN",))
    assert hit is not None and not hit.strong and hit.nationality is Agreement.DIFFERS


def test_a_transliterated_name_is_a_weak_hit_and_another_birth_date_rules_it_out():
    assert not _hit(Entry("QDi.2", ("Muhammad Yusuf",), birth_dates=("1971-03-09",))).strong  # type: ignore[union-attr]
    assert _hit(Entry("QDi.2", ("Muhammad Yusuf",), birth_dates=("1980",))) is None


def test_an_alias_matches_as_the_name_does():
    hit = _hit(Entry("QDi.3", ("Abu Something", "Yusuf, Mohammed")))
    assert hit is not None and hit.strong and hit.matched == "Yusuf, Mohammed"


def test_blocking_keys_find_the_entry_and_keep_common_words_to_pairs():
    entry = Entry("x", ("Mohammed Yusuf Rahimi",))
    keys = entry_keys(entry, common={"md"})
    assert "md" not in keys and "asf|md" in keys and "asf" in keys  # Yusuf: asf, Rahimi: rm
    assert set(keys) & set(subject_keys(Subject(("Muhammad Yusuf",))))
    assert set(keys) & set(subject_keys(Subject(("Rahimi Mohamad",))))
    counts = Counter(s for e in [entry] * 60 for s in set().union(*entry_sounds(e)))
    assert common_sounds(counts, 60) == {"md", "asf", "rm"}  # more than 50 entries each


def test_the_check_fails_on_a_strong_hit_and_names_the_entry_and_why():
    hit = _hit(Entry("QDi.1", ("Yusuf Mohammed",), birth_dates=("1971",)))
    check = screening_check([hit], ["un v3"])  # type: ignore[list-item]
    assert check.status is CheckStatus.FAIL
    assert "un v3, entry QDi.1 (Yusuf Mohammed)" in check.detail
    assert "'Mohammed Yusuf' matched 'Yusuf Mohammed' 100% by spelling; date of birth agrees" in check.detail
    assert screening_check([], ["un v3"]).status is CheckStatus.PASS
    assert screening_check([], []).detail == "No watchlist is loaded: not screened."


def test_opensanctions_csv_reads_aliases_dates_and_countries(tmp_path):
    path = write_csv(tmp_path / "t.csv", [Listed("NK-1", "Ivan Petrov", ["Iwan Petroff", "I. Petrov"],
                                                 "1960;1961-02-03", "ru;ua")])
    assert list(entries(path)) == [Entry("NK-1", ("Ivan Petrov", "Iwan Petroff", "I. Petrov"), "Person",
                                         ("1960", "1961-02-03"), ("RU", "UA"), "test_sanctions")]


def test_un_xml_reads_individuals_and_entities(tmp_path):
    path = write_un_xml(tmp_path / "un.xml", [Listed("QDi.9", "Abdul Rahman Yasin", ["Abd al Rahman Yasin"], "1960",
                                                     "Iraq")])
    found = list(entries(path))
    assert found[0] == Entry("QDi.9", ("Abdul Rahman Yasin", "Abd al Rahman Yasin"), "Person", ("1960",), ("IQ",),
                             "Al-Qaida")
    assert found[1].names == ("Example Front Company",) and found[1].schema == "Organization"


def test_un_xml_year_ranges_become_years(tmp_path):
    path = tmp_path / "un.xml"
    path.write_text("<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><FIRST_NAME>A</FIRST_NAME><SECOND_NAME>B"
                    "</SECOND_NAME><REFERENCE_NUMBER>R1</REFERENCE_NUMBER><INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>"
                    "BETWEEN</TYPE_OF_DATE><FROM_YEAR>1960</FROM_YEAR><TO_YEAR>1962</TO_YEAR>"
                    "</INDIVIDUAL_DATE_OF_BIRTH></INDIVIDUAL></INDIVIDUALS></CONSOLIDATED_LIST>")
    assert list(entries(path))[0].birth_dates == ("1960", "1961", "1962")


@pytest.mark.parametrize(("content", "message"), [
    (BILLION_LAUGHS, "DTD"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "DTD"),
    ("<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL>", "Not well-formed XML"),
    ("<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><FIRST_NAME>A</FIRST_NAME></INDIVIDUAL></INDIVIDUALS>"
     "</CONSOLIDATED_LIST>", "no REFERENCE_NUMBER"),
    ("id,schema,name\nA1,Person,Someone\nA2,Person\n", "Line 3"),
    ("id,schema,name\nA1,Person,\n", "Line 2: no id or no name"),
    ("ident,full\nA,B\n", "no column id, name"),
    ("id,schema,name\nA1,Person,\"" + "x" * 200_000 + "\"\n", "Line 2: field larger"),
])
def test_a_hostile_or_broken_file_is_refused_with_a_clear_message(tmp_path: Path, content: str, message: str):
    path = tmp_path / "list"
    path.write_text(content)
    with pytest.raises(WatchlistInvalid) as refused:
        list(entries(path))
    assert message in refused.value.message


def test_bytes_that_are_not_utf8_are_refused(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b"id,schema,name\nA1,Person,\xff\xfe\n")
    with pytest.raises(WatchlistInvalid, match="Not UTF-8"):
        list(entries(path))
