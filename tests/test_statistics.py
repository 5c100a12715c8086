"""The comparison's statistics against values computed by hand (no scipy in the
expected values: the t-distribution with 2 degrees of freedom has a closed form)."""

import math

import pytest

from study import statistics

# t with 2 degrees of freedom: CDF(t) = 1/2 + t / (2 sqrt(2 + t^2)), so its 97.5%
# quantile solves t / sqrt(2 + t^2) = 0.95: t^2 = 2 * 0.95^2 / (1 - 0.95^2).
T_975_DF2 = math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2))  # 4.30265...


def test_summary_of_three_seeds():
  s = statistics.summarize([0.9910, 0.9915, 0.9920])
  assert s.n == 3 and s.mean == pytest.approx(0.9915)
  assert s.sd == pytest.approx(0.0005)  # deviations -5e-4, 0, 5e-4; sum of squares / 2
  half = T_975_DF2 * 0.0005 / math.sqrt(3)
  assert (s.ci_low, s.ci_high) == (pytest.approx(0.9915 - half), pytest.approx(0.9915 + half))
  assert (s.min, s.max) == (0.9910, 0.9920)


def test_one_seed_has_no_spread_or_interval():
  s = statistics.summarize([0.99])
  assert s.n == 1 and s.mean == 0.99 and math.isnan(s.sd) and math.isnan(s.ci_low)


def test_paired_difference_is_a_paired_t_test():
  a = {0: 0.9910, 1: 0.9915, 2: 0.9920, 7: 0.5}   # seed 7 has no partner: left out
  b = {0: 0.9915, 1: 0.9925, 2: 0.9921}
  d = statistics.paired_difference('B − A', a, b)
  diffs = [0.0005, 0.0010, 0.0001]
  mean = sum(diffs) / 3
  sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
  t = mean / (sd / math.sqrt(3))
  p = 2 * (1 - (0.5 + t / (2 * math.sqrt(2 + t * t))))
  assert d.n == 3 and d.mean == pytest.approx(mean) and d.sd == pytest.approx(sd)
  assert d.p == pytest.approx(p, rel=1e-9)
  half = T_975_DF2 * sd / math.sqrt(3)
  assert (d.ci_low, d.ci_high) == (pytest.approx(mean - half), pytest.approx(mean + half))
  assert p == pytest.approx(0.17705, abs=1e-5)


def test_fewer_than_two_shared_seeds_is_no_comparison():
  assert statistics.paired_difference('x', {0: 0.9}, {0: 0.8, 1: 0.7}) is None


def test_identical_runs_differ_by_nothing():
  d = statistics.paired_difference('x', {0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8})
  assert d.mean == 0 and d.p == 1.0


def test_holm_steps_down():
  family = [statistics.Difference(str(i), 3, 0, 0, 0, 1, p)
            for i, p in enumerate([0.01, 0.04, 0.03, math.nan])]
  adjusted = [d.p_holm for d in statistics.holm(family)]
  # sorted 0.01, 0.03, 0.04 (m = 3): 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
  assert adjusted[:3] == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
  assert math.isnan(adjusted[3])
  assert [d.significant for d in statistics.holm(family)] == [True, False, False, False]


@pytest.mark.parametrize('effect, seeds', [(1.0, 10), (0.5, 34)])
def test_seeds_needed_matches_the_power_tables(effect, seeds):
  # One-sample (paired) t-test, two-sided alpha 0.05, power 0.8: Cohen's tables give
  # n = 10 for d = 1 and n = 34 for d = 0.5.
  assert statistics.seeds_needed(effect * 0.001, 0.001) == seeds
  assert statistics.seeds_needed(0.0, 0.001) is None


def test_the_verdict_in_words():
  d = statistics.holm([statistics.Difference('GRU − LSTM (static)', 5, 0.0003, -0.0004,
                                             0.001, 0.0005, 0.38)])[0]
  assert statistics.describe_difference(d) == (
      'GRU − LSTM (static): +0.03 points [−0.04, +0.10], not significant (p = 0.38,'
      ' Holm-adjusted 0.38, n = 5)')


def test_the_power_sentence_separates_thousands_and_says_what_none_means():
  from study import report  # pylint: disable=g-import-not-at-top
  assert report.power_sentence(69955).startswith('about 69,955 seeds would detect')
  assert 'no number of seeds can detect' in report.power_sentence(None)
  assert '(no difference)' not in report.power_sentence(None)
