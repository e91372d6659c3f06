//! `canaryd judge` input: a judgement, or an error naming a position or a field.
#![no_main]

use canaryd::cli::judge::answer;
use libfuzzer_sys::fuzz_target;

const FIELDS: &[&str] = &[
    "judge",
    "max",
    "min",
    "value",
    "maxRatio",
    "minRatio",
    "maxIncrease",
    "confidence",
    "acceptable",
    "alpha",
    "beta",
    "canary",
    "baseline",
];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match answer(input) {
        Ok(response) => {
            assert!(!response.reason.is_empty());
            serde_json::to_string(&response).expect("a judgement serialises");
        }
        Err(error) => {
            let message = format!("{error:#}");
            let placed =
                message.contains(" at line ") || FIELDS.iter().any(|f| message.contains(f));
            assert!(placed, "no place in {message:?}");
        }
    }
});
