//! `canaryd judge`: the offline JSON contract of DESIGN §5.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn judge(request: &str) -> (i32, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .arg("judge")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("canaryd runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        output.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn mann_whitney_reports_u_of_the_canary_and_the_p_value_of_the_direction() {
    // scipy.stats.mannwhitneyu([5,6,7], [1,2,3,4], alternative="greater"): U=12, p=0.028571…
    let (code, out, _) = judge(
        r#"{"judge":"mann-whitney","canary":[5,6,7],"baseline":[1,2,3,4],"direction":"increase","confidence":0.98}"#,
    );
    assert_eq!(code, 0);
    assert_eq!(out["result"], "PASS");
    assert_eq!(out["statistics"]["u"], 12.0);
    assert!((out["statistics"]["pValue"].as_f64().unwrap() - 0.02857142857142857).abs() < 1e-15);
    assert_eq!(out["statistics"]["alpha"], 0.02);

    let (_, less, _) = judge(
        r#"{"judge":"mann-whitney","canary":[5,6,7],"baseline":[1,2,3,4],"direction":"decrease"}"#,
    );
    assert_eq!(less["statistics"]["u"], 12.0, "u stays the canary's U");
    assert!((less["statistics"]["pValue"].as_f64().unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn a_clear_latency_regression_fails() {
    let (code, out, _) = judge(
        r#"{"judge":"mann-whitney","canary":[0.5,0.52,0.49,0.55,0.51,0.53,0.5,0.54,0.52,0.5],
            "baseline":[0.2,0.21,0.19,0.2,0.22,0.2,0.18,0.21,0.2,0.19],"direction":"increase","confidence":0.98}"#,
    );
    assert_eq!(code, 0);
    assert_eq!(out["result"], "FAIL");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("significantly higher")
    );
}

#[test]
fn every_judge_answers_in_the_same_shape() {
    for (request, result) in [
        (r#"{"judge":"threshold","value":0.07,"max":0.05}"#, "FAIL"),
        (
            r#"{"judge":"threshold","value":null,"max":0.05}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"compare","canary":0.3,"baseline":0.2,"maxRatio":1.25}"#,
            "FAIL",
        ),
        (
            r#"{"judge":"sequential","errors":1,"requests":20,"max":0.05}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"sequential","errors":20,"requests":100,"max":0.05}"#,
            "FAIL",
        ),
    ] {
        let (code, out, stderr) = judge(request);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(out["result"], result, "{request}: {out}");
        assert!(out["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(out["statistics"].is_object());
    }
}

#[test]
fn bad_requests_exit_two_with_a_clear_message() {
    for (request, said) in [
        (r#"{"judge":"nope"}"#, "unknown variant `nope`"),
        (
            r#"{"judge":"threshold","value":1,"maxx":2}"#,
            "unknown field `maxx`",
        ),
        (
            r#"{"judge":"threshold","value":1}"#,
            "threshold needs max, min or both",
        ),
        (
            r#"{"judge":"mann-whitney","canary":[1],"baseline":[2],"confidence":2}"#,
            "confidence must be between 0 and 1",
        ),
        ("not json", "not a valid judge request"),
    ] {
        let (code, out, stderr) = judge(request);
        assert_eq!(code, 2, "{request}");
        assert_eq!(out, Value::Null);
        assert!(stderr.contains(said), "{request}: {stderr}");
    }
}

#[test]
fn prometheus_special_values_are_judged_as_no_data_never_a_pass() {
    // (request, result)
    let cases = [
        (
            r#"{"judge":"threshold","value":"NaN","max":0.05}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"threshold","value":"+Inf","max":0.05}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"threshold","value":"-Inf","min":0.5}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"threshold","value":"NaN","max":0.05,"onNoData":"fail"}"#,
            "FAIL",
        ),
        (r#"{"judge":"threshold","value":"0.01","max":0.05}"#, "PASS"),
        (
            r#"{"judge":"compare","canary":"NaN","baseline":1.0,"maxRatio":1.2}"#,
            "INCONCLUSIVE",
        ),
        (
            r#"{"judge":"sequential","errors":"NaN","requests":100,"max":0.05}"#,
            "INCONCLUSIVE",
        ),
    ];
    for (request, expected) in cases {
        let (code, out, stderr) = judge(request);
        assert_eq!(code, 0, "{request}: {stderr}");
        assert_eq!(out["result"], expected, "{request}: {out}");
    }
    // NaN and infinite samples are dropped like gaps: only the finite ones count.
    let (code, out, stderr) = judge(
        r#"{"judge":"mann-whitney","canary":[5,"NaN",6,7,"+Inf"],"baseline":[1,2,"-Inf",3,4],"direction":"increase"}"#,
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out["statistics"]["canarySamples"], 3.0, "{out}");
    assert_eq!(out["statistics"]["u"], 12.0, "{out}");
    let (code, _, stderr) = judge(r#"{"judge":"threshold","value":"lots","max":0.05}"#);
    assert_eq!(code, 2);
    assert!(stderr.contains("'lots' is not a number"), "{stderr}");
}
