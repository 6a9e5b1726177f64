"""Selection by calibrated pass rate: the band, the easy-share cap, unsolved anchors, quotas, bad settings."""
from __future__ import annotations

import pytest

from megatron_mc.data.pipeline.difficulty.select import SelectConfig, select


def rates_with(easy: int, medium: int, hard: int) -> dict[str, float]:
    rates = {f"e{i}": 0.95 - 0.005 * i for i in range(easy)}
    rates |= {f"m{i}": 0.5 for i in range(medium)}
    rates |= {f"h{i}": 0.1 for i in range(hard)}
    return rates


def test_default_band_cuts_the_easy_tail_to_a_fifth_dropping_the_easiest_first():
    rates = rates_with(easy=40, medium=40, hard=20)
    kept, dropped, report = select(rates, {}, SelectConfig())
    easy_kept = [i for i in kept if i.startswith("e")]
    assert len(easy_kept) / len(kept) <= 0.2
    assert len(easy_kept) == 15  # 15 / 75 = 20%
    assert easy_kept == [f"e{i}" for i in range(25, 40)], "the easiest ones go first"
    assert {d.reason for d in dropped} == {"too_easy"} and len(dropped) == 25
    assert report["buckets_before"] == {"easy": 40, "medium": 40, "hard": 20}
    assert report["buckets_after"] == {"easy": 15, "medium": 40, "hard": 20}
    assert kept == [i for i in rates if i in set(kept)], "input order is kept"


def test_band_limits_and_unsolved_anchors():
    rates = rates_with(easy=2, medium=3, hard=3)
    measured = {"m0": {"solved": 0, "samples": 4}, "m1": {"solved": 2, "samples": 4}}
    cfg = SelectConfig(min_pass_rate=0.2, max_pass_rate=0.9, max_easy_share=1.0)
    kept, dropped, report = select(rates, measured, cfg)
    reasons = {d.id: d.reason for d in dropped}
    assert reasons == {"e0": "too_easy", "e1": "too_easy", "m0": "never_solved",
                       "h0": "too_hard", "h1": "too_hard", "h2": "too_hard"}
    assert "0 of 4" in next(d.detail for d in dropped if d.id == "m0")
    assert kept == ["m1", "m2"] and report["unsolved_rule"] == "applied"


def test_a_policy_that_solves_no_anchor_drops_nothing_for_it():
    rates = rates_with(easy=0, medium=3, hard=0)
    measured = {i: {"solved": 0, "samples": 4} for i in rates}
    kept, dropped, report = select(rates, measured, SelectConfig())
    assert kept == list(rates) and not dropped
    assert report["unsolved_rule"].startswith("skipped")


def test_quotas_keep_the_target_count_by_bucket_and_make_up_shortfalls_from_harder_buckets():
    rates = rates_with(easy=50, medium=50, hard=50)
    kept, dropped, report = select(rates, {}, SelectConfig(mode="quotas", target_count=40))
    assert len(kept) == 40 and report["buckets_after"] == {"easy": 8, "medium": 20, "hard": 12}
    assert {d.reason for d in dropped} == {"over_quota"} and len(dropped) == 110
    same, _, _ = select(rates, {}, SelectConfig(mode="quotas", target_count=40))
    assert same == kept, "the choice within a bucket is fixed by the seed"
    short = rates_with(easy=50, medium=50, hard=4)
    kept, _, report = select(short, {}, SelectConfig(mode="quotas", target_count=40))
    assert len(kept) == 40 and report["buckets_after"] == {"easy": 8, "medium": 28, "hard": 4}


@pytest.mark.parametrize("settings, key", [
    ({"mode": "random"}, "select.mode"),
    ({"max_easy_share": 1.5}, "select.max_easy_share"),
    ({"quotas": {"easy": 0.5, "trivial": 0.5}}, "select.quotas.trivial"),
    ({"quotas": {"easy": 0.5, "hard": 0.2}}, "select.quotas"),
    ({"mode": "quotas"}, "select.target_count"),
    ({"min_pass_rate": 0.8, "max_pass_rate": 0.5}, "min_pass_rate"),
])
def test_bad_settings_name_the_key(settings, key):
    with pytest.raises(ValueError, match=key):
        SelectConfig(**settings)
