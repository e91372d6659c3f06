use super::*;

const JSON: Option<&str> = Some("application/json; charset=utf-8");

#[test]
fn a_vector_a_scalar_and_an_empty_answer_are_read() {
    let body = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"track":"canary"},"value":[1700000000.5,"0.25"]}]}}"#;
    let answer = decode(200, JSON, body).unwrap();
    let series = vector(answer.clone()).unwrap();
    assert_eq!(series[0].0["track"], "canary");
    assert_eq!(instant(answer).unwrap(), Some(0.25));
    let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
    assert!(
        instant(decode(200, JSON, scalar).unwrap())
            .unwrap()
            .unwrap()
            .is_nan()
    );
    let inf = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
    assert_eq!(
        instant(decode(200, JSON, inf).unwrap()).unwrap(),
        Some(f64::INFINITY)
    );
    let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    assert_eq!(instant(decode(200, JSON, empty).unwrap()).unwrap(), None);
}

#[test]
fn an_error_answer_is_refused_with_its_type_and_message() {
    let body = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
    let error = decode(400, JSON, body).unwrap_err();
    assert_eq!(error.metric_label(), "refused");
    assert!(
        error
            .to_string()
            .contains("HTTP 400, bad_data: parse error at char 4")
    );
}

#[test]
fn a_proxy_page_is_unreachable_and_garbled_json_names_its_place() {
    let page = decode(502, Some("text/html"), b"<html>bad gateway</html>").unwrap_err();
    assert_eq!(page.metric_label(), "unreachable");
    assert!(
        page.to_string().contains("HTTP 502 with \"text/html\""),
        "{page}"
    );
    let body = b"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\n\"result\":[{\"value\":[1,\"x\"]}]}}";
    let garbled = decode(200, JSON, body).unwrap_err();
    assert_eq!(garbled.metric_label(), "shape");
    // The same place serde gives when it reads the whole body in one pass.
    #[derive(Deserialize)]
    struct Whole {
        #[allow(dead_code)]
        data: WholeData,
    }
    #[derive(Deserialize)]
    struct WholeData {
        #[allow(dead_code)]
        result: Vec<Instant>,
    }
    let whole = serde_json::from_slice::<Whole>(body).err().unwrap();
    assert_eq!((whole.line(), whole.column()), (2, 26));
    assert!(
        garbled
            .to_string()
            .ends_with("data.result: \"x\" is not a sample value at line 2 column 26"),
        "{garbled}"
    );
    let outer = decode(200, JSON, b"{\"status\": 3}").unwrap_err();
    assert!(outer.to_string().contains("line 1 column 12"), "{outer}");
}

#[test]
fn a_native_histogram_sample_is_not_taken_for_no_data() {
    let body = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"histogram":[1,{"count":"3","sum":"1"}]}]}}"#;
    let error = decode(200, JSON, body).unwrap_err();
    assert!(
        error.to_string().contains("missing field `value`"),
        "{error}"
    );
}

#[test]
fn several_series_or_a_matrix_are_not_one_value() {
    let two = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
    let error = instant(decode(200, JSON, two).unwrap()).unwrap_err();
    assert!(error.to_string().contains("returned 2 series"), "{error}");
    let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1,"1"],[2,"3"]]}]}}"#;
    let answer = decode(200, JSON, matrix).unwrap();
    assert_eq!(range(answer.clone()).unwrap(), vec![1.0, 3.0]);
    assert_eq!(instant(answer).unwrap_err().metric_label(), "shape");
}
