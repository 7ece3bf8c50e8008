//! Follows one deployment in DynamoDB while its execution runs, printing the operator's
//! report as each phase, step and check is recorded.

use crate::{Environment, ExecutionEnd, LocalStack};
use anyhow::{Result, anyhow};
use shared::domain::{DeploymentRecord, EvaluationKind, LedgerEntry};
use shared::ports::DeploymentStore;
use shared::report;
use std::time::Duration;

#[derive(Default)]
struct Printed {
    header: bool,
    phase1: bool,
    approval: Option<shared::domain::ApprovalState>,
    phase2: bool,
    phase3: bool,
    ledger: usize,
}

/// What a followed deployment ended as.
pub struct Followed {
    pub execution: ExecutionEnd,
    pub record: DeploymentRecord,
    pub ledger: Vec<LedgerEntry>,
}

pub async fn follow(
    stack: &LocalStack,
    env: &Environment,
    deployment_id: &str,
    execution_arn: &str,
    verification_seconds: u64,
    timeout: Duration,
    out: &mut dyn FnMut(&str),
) -> Result<Followed> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut printed = Printed::default();
    loop {
        let execution = stack.execution(execution_arn).await?;
        let ended = execution.status != "RUNNING";
        let record = stack.store.deployment(deployment_id).await?;
        let ledger = stack.store.ledger(deployment_id).await?;
        if let Some(r) = &record {
            render(r, &ledger, verification_seconds, &mut printed, out);
        }
        if ended {
            let record = record.ok_or_else(|| {
                anyhow!(
                    "execution ended {} ({}: {}) without a deployment record",
                    execution.status,
                    execution.error.as_deref().unwrap_or("-"),
                    execution.cause.as_deref().unwrap_or("-")
                )
            })?;
            let evaluated = ledger
                .iter()
                .filter(|e| e.kind == EvaluationKind::Step)
                .map(|e| e.step_index)
                .max();
            for step in stack.store.steps(deployment_id).await? {
                if evaluated.is_none_or(|i| step.step_index > i) {
                    if !printed.phase2 {
                        out(&report::phase2_title());
                        printed.phase2 = true;
                    }
                    out(&report::unevaluated_step_line(&step));
                }
            }
            if printed.phase3 {
                for l in report::verification(&ledger) {
                    out(&l);
                }
            }
            out("");
            let state = stack
                .store
                .environment(&env.service, &env.environment)
                .await?;
            let split = stack.split(env).await?;
            for l in report::outcome(&record, state.as_ref(), split) {
                out(&l);
            }
            return Ok(Followed {
                execution,
                record,
                ledger,
            });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(anyhow!(
                "deployment {deployment_id} still running after {timeout:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn render(
    r: &DeploymentRecord,
    ledger: &[LedgerEntry],
    verification_seconds: u64,
    p: &mut Printed,
    out: &mut dyn FnMut(&str),
) {
    if !p.header {
        out(&report::header(r));
        out("");
        for l in report::current_state(r) {
            out(&l);
        }
        out("");
        p.header = true;
    }
    if !p.phase1
        && let Some(ready) = &r.readiness
    {
        for l in report::phase1(r, ready) {
            out(&l);
        }
        out("");
        p.phase1 = true;
    }
    if p.phase1
        && let Some(a) = &r.approval
        && p.approval != Some(a.state)
    {
        out(&report::approval(a));
        out("");
        p.approval = Some(a.state);
    }
    for e in ledger.iter().skip(p.ledger) {
        match e.kind {
            EvaluationKind::Step => {
                if !p.phase2 {
                    out(&report::phase2_title());
                    p.phase2 = true;
                }
                out(&report::step_line(e));
            }
            EvaluationKind::Verification => {
                if !p.phase3 {
                    out("");
                    out(&report::phase3_title(verification_seconds));
                    p.phase3 = true;
                }
            }
        }
    }
    p.ledger = ledger.len();
}
