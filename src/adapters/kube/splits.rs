//! Where each kind of object keeps the split, and how to set it: the shapes of an
//! HTTPRoute, a VirtualService, a TrafficSplit and an NGINX canary Ingress.

use serde_json::{Value, json};

use crate::domain::record::{KubeTarget, RouteTarget};

/// An API resource, with the versions canaryd can drive, the preferred first.
#[derive(Debug)]
pub struct Kind {
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Kind {
    /// `httproutes.gateway.networking.k8s.io`, as Kubernetes names a resource.
    pub fn resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

pub const HTTP_ROUTE: Kind = Kind {
    group: "gateway.networking.k8s.io",
    versions: &["v1"],
    kind: "HTTPRoute",
    plural: "httproutes",
};
pub const VIRTUAL_SERVICE: Kind = Kind {
    group: "networking.istio.io",
    versions: &["v1", "v1beta1", "v1alpha3"],
    kind: "VirtualService",
    plural: "virtualservices",
};
pub const TRAFFIC_SPLIT: Kind = Kind {
    group: "split.smi-spec.io",
    versions: &["v1alpha4", "v1alpha3", "v1alpha2"],
    kind: "TrafficSplit",
    plural: "trafficsplits",
};
pub const INGRESS: Kind = Kind {
    group: "networking.k8s.io",
    versions: &["v1"],
    kind: "Ingress",
    plural: "ingresses",
};

/// How one kind of object holds the canary's share of traffic.
pub trait Split: Send + Sync {
    fn kind(&self) -> &'static Kind;
    fn namespace(&self) -> &str;
    fn name(&self) -> &str;
    /// The canary's share in percent, as `object` holds it.
    fn weight(&self, object: &Value) -> Result<u8, String>;
    /// The merge patch that gives the canary `weight` percent and the stable the rest.
    /// An object that cannot carry the split (no stable or canary backend) is an error.
    fn patch(&self, object: &Value, weight: u8) -> Result<Value, String>;
}

/// The split for a Kubernetes route target; `None` for HAProxy and `none`.
pub fn for_target(target: &RouteTarget) -> Option<Box<dyn Split>> {
    let weighted = |kind, layout, t: &KubeTarget| -> Box<dyn Split> {
        Box::new(Weighted {
            kind,
            layout,
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            stable: t.stable_backend.clone(),
            canary: t.canary_backend.clone(),
        })
    };
    Some(match target {
        RouteTarget::GatewayApi(t) => weighted(&HTTP_ROUTE, GATEWAY, t),
        RouteTarget::Istio(t) => weighted(&VIRTUAL_SERVICE, ISTIO, t),
        RouteTarget::Smi(t) => weighted(&TRAFFIC_SPLIT, SMI, t),
        RouteTarget::NginxIngress {
            namespace,
            canary_ingress,
        } => Box::new(NginxCanary {
            namespace: namespace.clone(),
            name: canary_ingress.clone(),
        }),
        RouteTarget::Haproxy { .. } | RouteTarget::None => return None,
    })
}

/// Where the weighted backends sit in a spec.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// The field of `spec` that is patched: `rules`, `http` or `backends`.
    field: &'static str,
    /// The field of each rule that lists its backends; `None` when `field` is itself
    /// the one list of backends (SMI).
    backends: Option<&'static str>,
    /// JSON pointer, inside a backend, to the name that identifies it.
    name: &'static str,
    /// What a backend without a `weight` weighs, alone and beside others.
    default_weight: fn(alone: bool) -> u64,
    /// How the backends are called, for messages.
    noun: &'static str,
}

const GATEWAY: Layout = Layout {
    field: "rules",
    backends: Some("backendRefs"),
    name: "/name",
    default_weight: |_| 1,
    noun: "backendRefs",
};
const ISTIO: Layout = Layout {
    field: "http",
    backends: Some("route"),
    name: "/destination/host",
    default_weight: |alone| if alone { 100 } else { 0 },
    noun: "route destinations",
};
const SMI: Layout = Layout {
    field: "backends",
    backends: None,
    name: "/service",
    default_weight: |_| 0,
    noun: "backends",
};

/// An object whose rules list weighted backends: HTTPRoute, VirtualService, TrafficSplit.
struct Weighted {
    kind: &'static Kind,
    layout: Layout,
    namespace: String,
    name: String,
    stable: String,
    canary: String,
}

/// The positions of the stable and the canary in one list of backends.
struct Pair {
    stable: usize,
    canary: usize,
}

impl Weighted {
    fn what(&self) -> String {
        format!("{} {}/{}", self.kind.kind, self.namespace, self.name)
    }

    /// The lists of backends in `spec.<field>`: one per rule, or the one list.
    fn lists<'a>(&self, field: &'a mut Value) -> Vec<&'a mut Vec<Value>> {
        match (self.layout.backends, field) {
            (None, Value::Array(list)) => vec![list],
            (Some(backends), Value::Array(rules)) => rules
                .iter_mut()
                .filter_map(|rule| rule.get_mut(backends).and_then(Value::as_array_mut))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn name_of<'a>(&self, backend: &'a Value) -> &'a str {
        backend
            .pointer(self.layout.name)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The stable and canary in `list`, if both are there; other backends beside them
    /// would skew the percentages, so they are an error.
    fn pair(&self, list: &[Value]) -> Result<Option<Pair>, String> {
        let find = |name: &str| list.iter().position(|b| self.name_of(b) == name);
        let (Some(stable), Some(canary)) = (find(&self.stable), find(&self.canary)) else {
            return Ok(None);
        };
        if let Some(other) = list
            .iter()
            .map(|b| self.name_of(b))
            .find(|n| *n != self.stable && *n != self.canary)
        {
            return Err(format!(
                "{}: a rule splits traffic between {} and {} but also sends it to {other:?}; \
                 canaryd splits only between the stable and the canary",
                self.what(),
                self.stable,
                self.canary
            ));
        }
        Ok(Some(Pair { stable, canary }))
    }

    /// The spec's `field`, with every rule that holds both backends; an error naming
    /// what was found when no rule does.
    fn rules(&self, object: &Value) -> Result<(Value, Vec<usize>), String> {
        let mut field = object
            .pointer(&format!("/spec/{}", self.layout.field))
            .cloned()
            .unwrap_or(Value::Null);
        let mut found = Vec::new();
        let mut matching = Vec::new();
        for (index, list) in self.lists(&mut field).into_iter().enumerate() {
            found.extend(list.iter().map(|b| self.name_of(b).to_string()));
            if self.pair(list)?.is_some() {
                matching.push(index);
            }
        }
        if matching.is_empty() {
            found.dedup();
            return Err(format!(
                "{} has no rule whose {} include both the stable {:?} and the canary {:?} (found: {})",
                self.what(),
                self.layout.noun,
                self.stable,
                self.canary,
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ));
        }
        Ok((field, matching))
    }

    fn weight_of(&self, backend: &Value, alone: bool) -> u64 {
        backend
            .get("weight")
            .and_then(Value::as_u64)
            .unwrap_or((self.layout.default_weight)(alone))
    }
}

impl Split for Weighted {
    fn kind(&self) -> &'static Kind {
        self.kind
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn weight(&self, object: &Value) -> Result<u8, String> {
        let (mut field, matching) = self.rules(object)?;
        let lists = self.lists(&mut field);
        let mut weights = matching.iter().map(|&index| {
            let list = &lists[index];
            let pair = self
                .pair(list)
                .ok()
                .flatten()
                .expect("matching rules hold the pair");
            let alone = list.len() == 1;
            let stable = self.weight_of(&list[pair.stable], alone);
            let canary = self.weight_of(&list[pair.canary], alone);
            percent(canary, stable + canary)
        });
        let first = weights.next().expect("at least one matching rule");
        match weights.find(|w| *w != first) {
            None => Ok(first),
            Some(other) => Err(format!(
                "{}: its rules give the canary different weights ({first}% and {other}%)",
                self.what()
            )),
        }
    }

    fn patch(&self, object: &Value, weight: u8) -> Result<Value, String> {
        let (mut field, matching) = self.rules(object)?;
        for (index, list) in self.lists(&mut field).into_iter().enumerate() {
            if !matching.contains(&index) {
                continue;
            }
            let pair = self.pair(list)?.expect("matching rules hold the pair");
            list[pair.stable]["weight"] = json!(100 - u64::from(weight));
            list[pair.canary]["weight"] = json!(u64::from(weight));
        }
        Ok(json!({ "spec": { self.layout.field: field } }))
    }
}

/// `part` of `total` in whole percent; nothing at all is 0%.
fn percent(part: u64, total: u64) -> u8 {
    if total == 0 {
        return 0;
    }
    ((part * 100 + total / 2) / total).min(100) as u8
}

const CANARY: &str = "nginx.ingress.kubernetes.io/canary";
const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
const CANARY_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";

/// ingress-nginx: the canary Ingress's `canary` and `canary-weight` annotations.
struct NginxCanary {
    namespace: String,
    name: String,
}

impl NginxCanary {
    fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
        object.pointer("/metadata/annotations")?.get(key)?.as_str()
    }
}

impl Split for NginxCanary {
    fn kind(&self) -> &'static Kind {
        &INGRESS
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn weight(&self, object: &Value) -> Result<u8, String> {
        if Self::annotation(object, CANARY) != Some("true") {
            return Ok(0);
        }
        let Some(value) = Self::annotation(object, CANARY_WEIGHT) else {
            return Ok(0);
        };
        value
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|w| *w <= 100)
            .ok_or_else(|| {
                format!(
                    "Ingress {}/{}: {CANARY_WEIGHT} is {value:?}, not a percentage",
                    self.namespace, self.name
                )
            })
    }

    fn patch(&self, object: &Value, weight: u8) -> Result<Value, String> {
        if let Some(total) = Self::annotation(object, CANARY_WEIGHT_TOTAL).filter(|t| *t != "100") {
            return Err(format!(
                "Ingress {}/{}: {CANARY_WEIGHT_TOTAL} is {total:?}; canaryd writes percentages \
                 and needs it unset or \"100\"",
                self.namespace, self.name
            ));
        }
        // Annotation values must be strings.
        Ok(json!({ "metadata": { "annotations": {
            CANARY: "true",
            CANARY_WEIGHT: weight.to_string(),
        } } }))
    }
}

#[cfg(test)]
mod tests;
