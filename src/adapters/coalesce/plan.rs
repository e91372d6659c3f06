//! Which queries many analyses can share, decided on the PromQL syntax tree.
//!
//! A query qualifies when every selector fixes the grouping label with one equality
//! matcher (`service="checkout"`), and the query is arithmetic over *leaves*, each a
//! `sum` without grouping over a selector or a rate-style function of one, or
//! `histogram_quantile(φ, sum by (le) (…))` over such. `X or vector(c)` is allowed where
//! `X` carries no labels. Then, for any set of label values, one query per leaf grouped
//! by the label (`sum by (service) (… service=~"a|b" …)`) gives each analysis exactly
//! the series its own leaf would have given, and the arithmetic is done per value,
//! with PromQL's rule that a side without a series gives no result. Every other query
//! is sent as it is.

use std::sync::Arc;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Expr, LabelModifier, VectorMatchCardinality, VectorSelector,
};

/// The label analyses differ by in shared templates.
pub const GROUP_LABEL: &str = "service";

/// Functions that keep one series per input series and so commute with `sum by`.
const RATE_STYLE: [&str; 4] = ["rate", "irate", "increase", "delta"];

/// A query split into leaves answered per label value, and the arithmetic on them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub shape: Arc<Shape>,
    /// This query's value of the label.
    pub value: String,
}

/// What queries that differ only in the label's value have in common.
#[derive(Debug)]
pub struct Shape {
    /// The query with the label's value blanked.
    pub key: String,
    pub leaves: Vec<Expr>,
    pub tree: Node,
}

/// Plans, remembered: a check's queries come back every interval, and parsing PromQL
/// (which compiles its regex matchers) is most of a plan's cost. Queries of one shape
/// share one `Shape`. Both maps are bounded and start over when full.
#[derive(Default)]
pub struct Planner {
    plans: std::sync::Mutex<std::collections::HashMap<String, Option<Plan>>>,
    shapes: std::sync::Mutex<std::collections::HashMap<String, Arc<Shape>>>,
}

/// Queries, and shapes, remembered at most.
const REMEMBERED: usize = 50_000;

impl Planner {
    pub fn plan(&self, query: &str) -> Option<Plan> {
        if let Some(known) = self
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(query)
        {
            return known.clone();
        }
        let planned = plan(query).map(|plan| self.shared(plan));
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if plans.len() >= REMEMBERED {
            plans.clear();
        }
        plans.insert(query.to_string(), planned.clone());
        planned
    }

    /// The plan with the shape every query of its key already uses.
    fn shared(&self, plan: Plan) -> Plan {
        let mut shapes = self.shapes.lock().unwrap_or_else(|e| e.into_inner());
        if shapes.len() >= REMEMBERED {
            shapes.clear();
        }
        let shape = shapes
            .entry(plan.shape.key.clone())
            .or_insert(plan.shape)
            .clone();
        Plan {
            shape,
            value: plan.value,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf(usize),
    Number(f64),
    /// `+ - * /` between two operands.
    Arith(&'static str, Box<Node>, Box<Node>),
    /// `X or vector(c)`.
    OrConstant(Box<Node>, f64),
}

/// The plan of a query, or `None` when it must be sent as it is.
pub fn plan(query: &str) -> Option<Plan> {
    let expr = crate::domain::promql::parse(query).ok()?;
    let mut value = None;
    let mut leaves = Vec::new();
    let tree = node(&expr, &mut leaves, &mut value)?;
    if leaves.is_empty() {
        return None;
    }
    let mut blank = expr.clone();
    each_selector(&mut blank, &mut |vs| {
        set_group_matcher(vs, MatchOp::Equal, "\u{0}")
    });
    let shape = Shape {
        key: blank.to_string(),
        leaves,
        tree,
    };
    Some(Plan {
        shape: Arc::new(shape),
        value: value?,
    })
}

fn node(expr: &Expr, leaves: &mut Vec<Expr>, value: &mut Option<String>) -> Option<Node> {
    match expr {
        Expr::Paren(paren) => node(&paren.expr, leaves, value),
        Expr::NumberLiteral(number) => Some(Node::Number(number.val)),
        Expr::Binary(binary) => binary_node(binary, leaves, value),
        leaf if is_leaf(leaf, value) => {
            leaves.push(leaf.clone());
            Some(Node::Leaf(leaves.len() - 1))
        }
        _ => None,
    }
}

fn binary_node(
    binary: &BinaryExpr,
    leaves: &mut Vec<Expr>,
    value: &mut Option<String>,
) -> Option<Node> {
    let op = binary.op.to_string();
    let op = op.as_str();
    let modifier = binary.modifier.clone().unwrap_or_default();
    if modifier.matching.is_some() || modifier.return_bool {
        return None;
    }
    let lhs = node(&binary.lhs, leaves, value)?;
    match (op, &modifier.card) {
        ("or", VectorMatchCardinality::ManyToMany) => Some(Node::OrConstant(
            Box::new(lhs),
            vector_constant(&binary.rhs)?,
        )),
        ("+" | "-" | "*" | "/", VectorMatchCardinality::OneToOne) => {
            let op = match op {
                "+" => "+",
                "-" => "-",
                "*" => "*",
                _ => "/",
            };
            Some(Node::Arith(
                op,
                Box::new(lhs),
                Box::new(node(&binary.rhs, leaves, value)?),
            ))
        }
        _ => None,
    }
}

/// `vector(c)`.
fn vector_constant(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Paren(paren) => vector_constant(&paren.expr),
        Expr::Call(call) if call.func.name == "vector" && call.args.args.len() == 1 => {
            match &*call.args.args[0] {
                Expr::NumberLiteral(number) => Some(number.val),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `sum(…)` without grouping, or `histogram_quantile(φ, sum by (le) (…))`.
fn is_leaf(expr: &Expr, value: &mut Option<String>) -> bool {
    match expr {
        Expr::Aggregate(sum) => is_sum_by(sum, &[]) && is_series(&sum.expr, value),
        Expr::Call(call) if call.func.name == "histogram_quantile" && call.args.args.len() == 2 => {
            let phi = matches!(&*call.args.args[0], Expr::NumberLiteral(_));
            match &*call.args.args[1] {
                Expr::Aggregate(sum) => {
                    phi && is_sum_by(sum, &["le"]) && is_series(&sum.expr, value)
                }
                _ => false,
            }
        }
        _ => false,
    }
}

fn is_sum_by(aggregate: &AggregateExpr, labels: &[&str]) -> bool {
    let grouping: Vec<&str> = match &aggregate.modifier {
        None => Vec::new(),
        Some(LabelModifier::Include(by)) => by.labels.iter().map(String::as_str).collect(),
        Some(LabelModifier::Exclude(_)) => return false,
    };
    aggregate.op.to_string() == "sum" && aggregate.param.is_none() && grouping == labels
}

/// A selector, or a rate-style function of a range selector, fixing the label.
fn is_series(expr: &Expr, value: &mut Option<String>) -> bool {
    match expr {
        Expr::Paren(paren) => is_series(&paren.expr, value),
        Expr::VectorSelector(vs) => fixes_label(vs, value),
        Expr::Call(call) if RATE_STYLE.contains(&call.func.name) && call.args.args.len() == 1 => {
            matches!(&*call.args.args[0], Expr::MatrixSelector(ms) if fixes_label(&ms.vs, value))
        }
        _ => false,
    }
}

/// One equality matcher on the label, the same value everywhere, no offset or `@`.
fn fixes_label(vs: &VectorSelector, value: &mut Option<String>) -> bool {
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return false;
    }
    let on_label: Vec<&Matcher> = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name == GROUP_LABEL)
        .collect();
    let [matcher] = on_label.as_slice() else {
        return false;
    };
    if matcher.op != MatchOp::Equal {
        return false;
    }
    match value {
        Some(seen) => *seen == matcher.value,
        None => {
            *value = Some(matcher.value.clone());
            true
        }
    }
}

fn each_selector(expr: &mut Expr, visit: &mut dyn FnMut(&mut VectorSelector)) {
    match expr {
        Expr::VectorSelector(vs) => visit(vs),
        Expr::MatrixSelector(ms) => visit(&mut ms.vs),
        Expr::Paren(paren) => each_selector(&mut paren.expr, visit),
        Expr::Aggregate(aggregate) => each_selector(&mut aggregate.expr, visit),
        Expr::Binary(binary) => {
            each_selector(&mut binary.lhs, visit);
            each_selector(&mut binary.rhs, visit);
        }
        Expr::Call(call) => call
            .args
            .args
            .iter_mut()
            .for_each(|arg| each_selector(arg, visit)),
        _ => {}
    }
}

fn set_group_matcher(vs: &mut VectorSelector, op: MatchOp, value: &str) {
    for matcher in vs
        .matchers
        .matchers
        .iter_mut()
        .filter(|m| m.name == GROUP_LABEL)
    {
        matcher.op = op.clone();
        matcher.value = value.to_string();
    }
}

/// One leaf for every value at once: the label matched by a regex of the values, and
/// the leaf's `sum` grouped by the label too.
pub fn grouped(leaf: &Expr, values: &[String]) -> Option<String> {
    let pattern = values
        .iter()
        .map(|v| escape(v))
        .collect::<Vec<_>>()
        .join("|");
    let mut leaf = leaf.clone();
    each_selector(&mut leaf, &mut |vs| {
        set_group_matcher(vs, MatchOp::Re(RENDERED_ONLY.clone()), &pattern)
    });
    let sum = match &mut leaf {
        Expr::Aggregate(sum) => sum,
        Expr::Call(call) => match &mut *call.args.args[1] {
            Expr::Aggregate(sum) => sum,
            _ => return None,
        },
        _ => return None,
    };
    let mut by: Vec<String> = sum
        .modifier
        .as_ref()
        .map(|m| m.labels().labels.clone())
        .unwrap_or_default();
    by.push(GROUP_LABEL.to_string());
    sum.modifier = Some(LabelModifier::include(
        by.iter().map(String::as_str).collect(),
    ));
    Some(leaf.to_string())
}

/// The regex a grouped leaf's matcher carries. The leaf is only rendered as text for
/// Prometheus (a matcher renders its pattern, not its regex), so compiling the
/// alternation of thousands of values here would cost megabytes and buy nothing: the
/// pattern is valid RE2 by construction (see `escape`).
static RENDERED_ONLY: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new("^$").expect("a valid regex"));

/// A label value as a literal in an RE2 alternation: ASCII punctuation other than `-`
/// and `_` is escaped (`.` above all), which RE2 reads as the character itself; every
/// other character is a literal as it stands.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_punctuation() && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value's result from its leaves' results, as PromQL would have computed it.
pub fn evaluate(tree: &Node, leaves: &[Option<f64>]) -> Option<f64> {
    match tree {
        Node::Leaf(index) => leaves[*index],
        Node::Number(value) => Some(*value),
        Node::OrConstant(node, constant) => evaluate(node, leaves).or(Some(*constant)),
        Node::Arith(op, lhs, rhs) => {
            let (a, b) = (evaluate(lhs, leaves)?, evaluate(rhs, leaves)?);
            Some(match *op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                _ => a / b,
            })
        }
    }
}

#[cfg(test)]
mod tests;
