//! SelfSubjectAccessReviews: asking the API, before an analysis starts, whether
//! canaryd's credentials may do what the analysis will need.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::errors::{Failure, api_error};

/// What is asked about: a resource in a namespace, and a name when it is one object.
pub struct Access<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub namespace: &'a str,
    pub name: Option<&'a str>,
}

impl Access<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Whether canaryd may `verb` what `access` names; a refusal names the verb, the
/// object (`what`), the resource and the authorizer's reason.
pub async fn may(
    client: &kube::Client,
    verb: &str,
    access: &Access<'_>,
    what: &str,
) -> Result<(), Failure> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(access.group.to_string()),
                resource: Some(access.resource.to_string()),
                namespace: Some(access.namespace.to_string()),
                name: access.name.map(str::to_string),
                verb: Some(verb.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| api_error::<Failure>(e, "review access to", what))?;
    let status = answer.status.unwrap_or_default();
    if status.allowed {
        return Ok(());
    }
    let reason = status
        .reason
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "no RBAC rule allows it".to_string());
    Err(Failure::Forbidden(format!(
        "canaryd may not {verb} {what} ({}): {reason}",
        access.qualified()
    )))
}
