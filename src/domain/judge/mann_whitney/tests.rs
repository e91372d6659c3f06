use super::*;

fn config(direction: Direction) -> MannWhitneyConfig {
    MannWhitneyConfig {
        direction,
        confidence: 0.98,
        allowed_increase: None,
        allowed_decrease: None,
        remove_outliers: false,
        must_have_data: false,
        sample_step: std::time::Duration::from_secs(5),
        min_samples: 5,
    }
}

#[test]
fn exact_p_values_for_small_samples_match_scipy() {
    // scipy.stats.mannwhitneyu([1,2,3], [4,5,6,7,8,9], alternative="two-sided")
    let two_sided = test(
        &[1.0, 2.0, 3.0],
        &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        Alternative::TwoSided,
    )
    .unwrap();
    assert_eq!(two_sided.u, 0.0);
    assert_eq!(two_sided.method, Method::Exact);
    assert!((two_sided.p_value - 0.023809523809523808).abs() < 1e-15);
    // scipy.stats.mannwhitneyu([5,6,7], [1,2,3,4], alternative="greater")
    let greater = test(
        &[5.0, 6.0, 7.0],
        &[1.0, 2.0, 3.0, 4.0],
        Alternative::Greater,
    )
    .unwrap();
    assert_eq!(greater.u, 12.0);
    assert!((greater.p_value - 0.02857142857142857).abs() < 1e-15);
}

#[test]
fn the_exact_distribution_counts_every_arrangement() {
    let counts = u_counts(3, 4);
    assert_eq!(counts, [1, 1, 2, 3, 4, 4, 5, 4, 4, 3, 2, 1, 1]);
    assert_eq!(counts.iter().sum::<i128>(), 35); // C(7, 3)
    let big: i128 = u_counts(8, 5000).iter().sum();
    assert_eq!(big, binomial(5008, 8));
}

fn binomial(n: i128, k: i128) -> i128 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

#[test]
fn a_clearly_slower_canary_fails() {
    let baseline: Vec<f64> = (0..30).map(|i| 100.0 + f64::from(i % 7)).collect();
    let canary: Vec<f64> = baseline.iter().map(|v| v * 1.5).collect();
    let judgement = judge(
        &canary,
        &baseline,
        &config(Direction::Increase),
        OnNoData::Inconclusive,
    );
    assert_eq!(judgement.outcome, Outcome::Fail, "{}", judgement.reason);
    assert!(judgement.statistics["pValue"] < 0.02);
    assert!((judgement.statistics["meanRatio"] - 1.5).abs() < 1e-9);
}

#[test]
fn a_faster_canary_passes_an_increase_test() {
    let baseline: Vec<f64> = (0..30).map(|i| 100.0 + f64::from(i % 7)).collect();
    let canary: Vec<f64> = baseline.iter().map(|v| v * 0.8).collect();
    let judgement = judge(
        &canary,
        &baseline,
        &config(Direction::Increase),
        OnNoData::Inconclusive,
    );
    assert_eq!(judgement.outcome, Outcome::Pass, "{}", judgement.reason);
}

#[test]
fn an_all_zero_baseline_does_not_let_a_worse_canary_pass() {
    let baseline = vec![0.0; 12];
    let mut canary = vec![0.0; 6];
    canary.extend([0.5; 6]);
    let mut tolerant = config(Direction::Increase);
    tolerant.allowed_increase = Some(1.5);
    let judgement = judge(&canary, &baseline, &tolerant, OnNoData::Inconclusive);
    assert_eq!(judgement.outcome, Outcome::Fail, "{}", judgement.reason);
    assert!(
        judgement.reason.contains("unbounded"),
        "{}",
        judgement.reason
    );
}

/// The case the README gives for Kayenta's blind spot: an all-zero stable against a
/// canary mostly at zero. The Hodges–Lehmann estimate is 0, so Kayenta passes it;
/// canaryd sees the shift and an unbounded ratio.
#[test]
fn a_partly_zero_canary_against_an_all_zero_baseline_fails() {
    let baseline = vec![0.0; 20];
    let mut canary = vec![0.0; 12];
    canary.extend([50.0; 8]);
    let mut tolerant = config(Direction::Increase);
    tolerant.allowed_increase = Some(1.5);
    let judgement = judge(&canary, &baseline, &tolerant, OnNoData::Inconclusive);
    assert_eq!(judgement.outcome, Outcome::Fail, "{}", judgement.reason);
    assert_eq!(judgement.statistics["u"], 280.0);
    assert!((judgement.statistics["pValue"] - 0.000958).abs() < 1e-5);
    assert!(!judgement.statistics.contains_key("meanRatio"), "unbounded");
}

/// A constant non-zero baseline has a finite ratio: a worse canary fails, unless the
/// tolerated effect covers that ratio.
#[test]
fn a_constant_baseline_gives_a_finite_ratio_that_a_tolerance_may_cover() {
    let strict = config(Direction::Increase);
    let judgement = judge(&[0.5; 10], &[0.2; 10], &strict, OnNoData::Inconclusive);
    assert_eq!(judgement.outcome, Outcome::Fail, "{}", judgement.reason);
    assert!((judgement.statistics["meanRatio"] - 2.5).abs() < 1e-12);
    let mut tolerant = config(Direction::Increase);
    tolerant.allowed_increase = Some(2.5);
    let judgement = judge(&[0.5; 10], &[0.2; 10], &tolerant, OnNoData::Inconclusive);
    assert_eq!(judgement.outcome, Outcome::Pass, "{}", judgement.reason);
}

#[test]
fn identical_samples_pass_with_p_one() {
    let judgement = judge(
        &[0.2; 10],
        &[0.2; 10],
        &config(Direction::Either),
        OnNoData::Inconclusive,
    );
    assert_eq!(judgement.outcome, Outcome::Pass);
    assert_eq!(judgement.statistics["pValue"], 1.0);
}

#[test]
fn a_significant_shift_within_the_allowed_effect_passes() {
    let baseline: Vec<f64> = (0..200).map(|i| 100.0 + f64::from(i % 10)).collect();
    let canary: Vec<f64> = baseline.iter().map(|v| v * 1.05).collect();
    let mut tolerant = config(Direction::Increase);
    tolerant.allowed_increase = Some(1.1);
    let judgement = judge(&canary, &baseline, &tolerant, OnNoData::Inconclusive);
    assert_eq!(judgement.outcome, Outcome::Pass, "{}", judgement.reason);
    assert!(judgement.reason.contains("within the allowed effect"));
}

#[test]
fn nan_is_removed_and_too_few_samples_is_no_data() {
    let canary = [1.0, f64::NAN, 2.0, f64::INFINITY];
    let judgement = judge(
        &canary,
        &[1.0; 10],
        &config(Direction::Increase),
        OnNoData::Inconclusive,
    );
    assert_eq!(judgement.outcome, Outcome::Inconclusive);
    assert_eq!(judgement.statistics["canarySamples"], 2.0);
    let mut strict = config(Direction::Increase);
    strict.must_have_data = true;
    assert_eq!(
        judge(&canary, &[1.0; 10], &strict, OnNoData::Inconclusive).outcome,
        Outcome::Fail
    );
}

#[test]
fn outlier_removal_drops_values_beyond_one_and_a_half_iqr() {
    let mut values: Vec<f64> = (0..20).map(f64::from).collect();
    values.push(1000.0);
    assert_eq!(clean(&values, true).len(), 20);
    assert_eq!(clean(&values, false).len(), 21);
}
