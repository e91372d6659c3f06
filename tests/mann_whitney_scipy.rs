//! The Mann-Whitney U test against scipy.stats.mannwhitneyu (method="auto"), on the
//! fixtures made by scripts/gen-mann-whitney-fixtures.py.

use canaryd::domain::judge::mann_whitney::{Alternative, Method, test};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixtures {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    label: String,
    alternative: String,
    canary: Vec<f64>,
    baseline: Vec<f64>,
    u: f64,
    p_value: f64,
}

fn fixtures() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mann_whitney.json"
    );
    let text = std::fs::read_to_string(path).expect("fixtures present");
    serde_json::from_str::<Fixtures>(&text)
        .expect("fixtures parse")
        .cases
}

fn alternative(name: &str) -> Alternative {
    match name {
        "greater" => Alternative::Greater,
        "less" => Alternative::Less,
        "two-sided" => Alternative::TwoSided,
        other => panic!("unknown alternative {other}"),
    }
}

#[test]
fn u_and_p_values_match_scipy_within_1e9_relative() {
    let cases = fixtures();
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let result = test(&case.canary, &case.baseline, alternative(&case.alternative)).unwrap();
        let relative = (result.p_value - case.p_value).abs() / case.p_value.abs().max(1e-300);
        let p_matches = relative <= 1e-9 || (result.p_value - case.p_value).abs() < 1e-300;
        if result.u != case.u || !p_matches {
            mismatches.push(format!(
                "{} {}: u {} vs scipy {}, p {:e} vs scipy {:e} ({:?})",
                case.label,
                case.alternative,
                result.u,
                case.u,
                result.p_value,
                case.p_value,
                result.method
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn fixtures_cover_both_methods_all_alternatives_and_the_size_range() {
    let cases = fixtures();
    let methods: Vec<Method> = cases
        .iter()
        .map(|c| {
            test(&c.canary, &c.baseline, alternative(&c.alternative))
                .unwrap()
                .method
        })
        .collect();
    assert!(methods.contains(&Method::Exact));
    assert!(methods.contains(&Method::Asymptotic));
    for name in ["greater", "less", "two-sided"] {
        assert!(cases.iter().any(|c| c.alternative == name));
    }
    let sizes = cases
        .iter()
        .flat_map(|c| [c.canary.len(), c.baseline.len()]);
    let (smallest, largest) = sizes.fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    assert_eq!((smallest, largest), (3, 5000));
}
