//! A stored analysis as the store tests build it: `payments/checkout` in `prod`, one
//! step, deciding only (router `none`); each test changes what it is about.

use std::time::Duration;

use canaryd::domain::analysis::{AnalysisState, Plan};
use canaryd::domain::record::{Analysis, RouteTarget};
use canaryd::domain::strategy::{Promotion, Step, StrategyId};

pub fn analysis(id: &str) -> Analysis {
    let now = chrono::Utc::now();
    let plan = Plan {
        steps: vec![Step {
            weight: 10,
            checks: 1,
            max_checks: 10,
        }],
        interval: Duration::from_secs(30),
        failure_limit: 0,
        inconclusive_limit: 2,
        promotion: Promotion::Auto,
        confirm_promotion: false,
        gate_timeout: Duration::from_secs(3600),
        on_inconclusive_limit: Default::default(),
        workload: false,
    };
    Analysis {
        id: id.to_string(),
        strategy: StrategyId {
            team: "payments".into(),
            name: "checkout".into(),
        },
        service: "checkout".into(),
        environment: "prod".into(),
        image_tag: None,
        git_commit: None,
        git_branch: None,
        triggered_by: None,
        variables: Default::default(),
        route: RouteTarget::None,
        workload: None,
        created_at: now,
        state: AnalysisState::new(plan, now),
    }
}
