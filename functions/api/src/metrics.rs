//! One service's deployment metrics of the last N days per environment, DORA's four keys for the production
//! environment, and the recent deployments with their failure reasons. The math is `shared::domain::metrics`; this reads the records.

use crate::http::{ApiError, Reply};
use crate::views::{self, ts};
use crate::{ApiDeps, Call, requests};
use serde_json::json;
use shared::domain::metrics::{dora, environment_metrics, production_environment, recent};

/// The recent-deployments list is at most this long.
pub const RECENT: usize = 20;

pub async fn get(deps: &ApiDeps, call: &Call) -> Result<Reply, ApiError> {
    let (days, environment) = requests::metrics_query(&call.query, &call.scope)?;
    let to = deps.clock.now();
    let from = to - time::Duration::days(i64::from(days));
    // Only the path's service: IAM scopes a caller to it, so nothing of another's is shown.
    let records: Vec<_> = deps
        .store
        .deployments_between(from, to)
        .await?
        .into_iter()
        .filter(|r| r.service == call.scope.service)
        .collect();
    Ok(Reply::ok(json!({
        "service": call.scope.service,
        "days": days,
        "from": ts(from),
        "to": ts(to),
        "environments": environment_metrics(&records),
        "dora": dora(
            &records,
            &environment.unwrap_or_else(|| production_environment(&records)),
            days
        ),
        "recent": recent(&records, RECENT).into_iter().map(views::summary).collect::<Vec<_>>(),
    })))
}
