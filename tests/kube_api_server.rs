//! The test API server is only worth what it copies from the real one: these tests hold
//! its answers to the real responses and schemas under `tests/fixtures/kubernetes`.

mod support;

use serde_json::{Value, json};
use support::kube_api::*;

async fn call(
    api: &KubeApi,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", api.url()))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (code, kind, response.text().await.unwrap())
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// JSON text without the whitespace outside strings: the server's compact form.
fn minified(text: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c.is_whitespace() {
            continue;
        } else {
            in_string = c == '"';
        }
        out.push(c);
    }
    out
}

fn upstream_route() -> Value {
    let text = std::fs::read_to_string(fixture("objects/httproute-traffic-split-2.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_missing_object_gets_the_real_not_found_status_byte_for_byte_but_whitespace() {
    let api = KubeApi::start(&[]).await;
    let (code, kind, body) = call(
        &api,
        reqwest::Method::GET,
        "/api/v1/namespaces/default/pods/grafana",
        None,
    )
    .await;
    assert_eq!((code, kind.as_str()), (404, "application/json"));
    let expected =
        std::fs::read_to_string(fixture("responses/404-notfound_pod_api-conventions.json"))
            .unwrap();
    assert_eq!(
        body,
        format!("{}\n", minified(&expected)),
        "same fields, same order"
    );
}

#[tokio::test]
async fn an_api_whose_crd_is_absent_answers_the_plain_text_404() {
    let api = KubeApi::start(&[]).await;
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/web";
    let (code, kind, body) = call(&api, reqwest::Method::GET, path, None).await;
    assert_eq!((code, kind.as_str()), (404, "text/plain; charset=utf-8"));
    assert_eq!(
        body,
        std::fs::read_to_string(fixture("responses/404-crd-not-installed_body.txt")).unwrap()
    );
}

#[tokio::test]
async fn a_stale_resource_version_gets_the_real_conflict_status() {
    let api = KubeApi::start(&[GATEWAY_CRD]).await;
    api.apply(upstream_route());
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/foo-route";
    let patch = json!({"metadata": {"resourceVersion": "1"}, "spec": {"hostnames": ["b.example"]}});
    let (code, _, body) = call(&api, reqwest::Method::PATCH, path, Some(patch)).await;
    assert_eq!(code, 409);
    let ours: Value = serde_json::from_str(&body).unwrap();
    let mut real = fixture_json("responses/409-conflict_resourcequota_helm.json");
    // The same template for an HTTPRoute: the resource gains its group.
    real["message"] = json!(real["message"].as_str().unwrap().replace(
        "resourcequotas \"quota\"",
        "httproutes.gateway.networking.k8s.io \"foo-route\""
    ));
    real["details"] =
        json!({"name": "foo-route", "group": "gateway.networking.k8s.io", "kind": "httproutes"});
    assert_eq!(ours, real);
}

#[tokio::test]
async fn writes_are_validated_against_the_real_crd_schema_with_its_defaults() {
    let api = KubeApi::start(&[GATEWAY_CRD]).await;
    api.apply(upstream_route());
    let stored = api
        .object(
            "gateway.networking.k8s.io",
            "httproutes",
            "default",
            "foo-route",
        )
        .unwrap();
    assert_eq!(
        stored["spec"]["rules"][0]["backendRefs"][0]["kind"], "Service",
        "schema default applied"
    );
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/foo-route";
    let mut rules = stored["spec"]["rules"].clone();
    rules[0]["backendRefs"][0]["weight"] = json!(2_000_000);
    let (code, _, body) = call(
        &api,
        reqwest::Method::PATCH,
        path,
        Some(json!({"spec": {"rules": rules}})),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["details"]["kind"], "HTTPRoute",
        "Invalid names the Kind"
    );
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.rules[0].backendRefs[0].weight"
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("HTTPRoute.gateway.networking.k8s.io \"foo-route\" is invalid: ")
    );

    let (code, _, body) = call(
        &api,
        reqwest::Method::PATCH,
        path,
        Some(json!({"spec": {"weights": [1]}})),
    )
    .await;
    assert_eq!(code, 422, "an unknown field is refused: {body}");
    let after = api
        .object(
            "gateway.networking.k8s.io",
            "httproutes",
            "default",
            "foo-route",
        )
        .unwrap();
    assert_eq!(after, stored, "a refused write changes nothing");
}

#[tokio::test]
async fn rbac_refusals_use_the_real_forbidden_template() {
    let api = KubeApi::start(&[GATEWAY_CRD]).await;
    api.apply(upstream_route());
    api.revoke("get", "gateway.networking.k8s.io", "httproutes");
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/foo-route";
    let (code, _, body) = call(&api, reqwest::Method::GET, path, None).await;
    assert_eq!(code, 403);
    let status: Value = serde_json::from_str(&body).unwrap();
    let real = fixture_json("responses/403-forbidden_namespaced-group_apiserver-test.json");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&status), keys(&real));
    assert_eq!(
        status["message"],
        format!(
            "httproutes.gateway.networking.k8s.io \"foo-route\" is forbidden: User \"{USER}\" cannot get resource \"httproutes\" in API group \"gateway.networking.k8s.io\" in the namespace \"default\""
        )
    );
    let (code, _, _) = reqwest::Client::new()
        .get(format!("{}{path}", api.url()))
        .send()
        .await
        .map(|r| (r.status().as_u16(), (), ()))
        .unwrap();
    assert_eq!(code, 401, "no token, no answer");
}

#[test]
fn the_real_deployment_and_pod_objects_pass_the_typed_check() {
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
    for name in [
        "objects/deployment-degraded.yaml",
        "objects/deployment-progressing.yaml",
    ] {
        let value: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
        serde_json::from_value::<Deployment>(value).unwrap();
    }
    let live = fixture_json("objects/deployment-live.json");
    serde_json::from_value::<Deployment>(live).unwrap();
    for name in [
        "objects/pod-crashloop.yaml",
        "objects/pod-imagepullbackoff.yaml",
    ] {
        let value: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
        serde_json::from_value::<Pod>(value).unwrap();
    }
}
