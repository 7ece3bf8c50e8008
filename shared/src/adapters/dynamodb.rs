//! DynamoDB adapter: one table holds deployments, their steps and decision ledger, and each
//! environment's colors and lock, with conditional writes guarding every state change.
//!
//! Keys (single-table design):
//! - deployment: `pk=DEPLOYMENT#<id>`, `sk=META`; `gsi1pk=ENV#<service>#<environment>`,
//!   `gsi1sk=<started_at>#<id>` (one service's history in one environment, newest first: never
//!   another service's); `gsi2pk=MONTH#<YYYY-MM>`,
//!   `gsi2sk=<started_at>#<id>` (time ranges across environments)
//! - step: `sk=STEP#<step:03>`; evaluation: `sk=EVAL#<step:03>#<verification:04>`
//! - environment: `pk=ENV#<service>#<environment>`, `sk=STATE`

mod promotion;

use super::map_sdk_error;
use crate::domain::{
    ApprovalDecision, DeploymentRecord, DeploymentStatus, EnvironmentState, Evidence, LedgerEntry,
    LockClaim, Phase, Quarantine, ReadinessSummary, StepRecord,
};
use crate::error::AdapterError;
use crate::ports::{BeginOutcome, DeploymentStore, LockOutcome, Page};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::result::SdkError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
const GSI1: &str = "gsi1";
const GSI1PK: &str = "gsi1pk";
const GSI1SK: &str = "gsi1sk";
const GSI2: &str = "gsi2";
const GSI2PK: &str = "gsi2pk";
const GSI2SK: &str = "gsi2sk";
const META: &str = "META";
const STATE: &str = "STATE";
const STEP_PREFIX: &str = "STEP#";
const EVAL_PREFIX: &str = "EVAL#";
pub(crate) const TABLE_NOT_FOUND: &[&str] = &["ResourceNotFoundException"];
/// Cancellation reasons that mean "try again", not "the condition is false".
const TRANSIENT_REASONS: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// The deployment store on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn deployment_pk(id: &str) -> String {
    format!("DEPLOYMENT#{id}")
}

fn env_pk(service: &str, environment: &str) -> String {
    format!("ENV#{service}#{environment}")
}

/// The history index's partition: a service's environment, never an environment alone, so
/// listing one service's environment cannot return another service's deployments.
fn history_pk(service: &str, environment: &str) -> String {
    format!("ENV#{service}#{environment}")
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn deployment_key(id: &str) -> Item {
    key(deployment_pk(id), META)
}

fn env_key(service: &str, environment: &str) -> Item {
    key(env_pk(service, environment), STATE)
}

/// UTC, whole seconds, fixed width: sorts the same as time, and is still RFC 3339.
fn sort_time(t: OffsetDateTime) -> Result<String, AdapterError> {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .map_err(|e| AdapterError::Invalid(format!("time {t} cannot be used as a sort key: {e}")))
}

fn rfc3339(t: OffsetDateTime) -> Result<String, AdapterError> {
    t.format(&Rfc3339)
        .map_err(|e| AdapterError::Invalid(format!("time {t} cannot be written as RFC 3339: {e}")))
}

fn month(t: OffsetDateTime) -> Result<String, AdapterError> {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!("[year]-[month]"))
        .map_err(|e| AdapterError::Invalid(format!("time {t} has no month: {e}")))
}

/// The serialized fields of `value`, without the NULLs serde writes for `None`: an absent
/// attribute is what conditions such as `attribute_not_exists(active_deployment)` test.
pub(crate) fn to_item<T: Serialize>(what: &str, value: &T) -> Result<Item, AdapterError> {
    let mut item: Item = serde_dynamo::to_item(value)
        .map_err(|e| AdapterError::Invalid(format!("{what} cannot be stored in DynamoDB: {e}")))?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(true)));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(what: &str, item: Item) -> Result<T, AdapterError> {
    serde_dynamo::from_item(item).map_err(|e| {
        AdapterError::Other(format!(
            "stored {what} cannot be read ({e}); it was written by an incompatible version, fix or delete the item"
        ))
    })
}

/// A deployment as stored: the record plus its key and both index keys. Public so the history
/// benchmark seeds exactly the items the product writes.
pub fn deployment_item(record: &DeploymentRecord) -> Result<Item, AdapterError> {
    let mut item = to_item(&format!("deployment {}", record.id), record)?;
    let when = format!("{}#{}", sort_time(record.started_at)?, record.id);
    item.extend(deployment_key(&record.id));
    item.insert(
        GSI1PK.into(),
        s(history_pk(&record.service, &record.environment)),
    );
    item.insert(GSI1SK.into(), s(when.clone()));
    item.insert(
        GSI2PK.into(),
        s(format!("MONTH#{}", month(record.started_at)?)),
    );
    item.insert(GSI2SK.into(), s(when));
    Ok(item)
}

fn step_sk(step_index: u32) -> String {
    format!("{STEP_PREFIX}{step_index:03}")
}

fn eval_sk(step_index: u32, verification_index: u32) -> String {
    format!("{EVAL_PREFIX}{step_index:03}#{verification_index:04}")
}

fn env_item(env: &EnvironmentState) -> Result<Item, AdapterError> {
    let mut item = to_item(
        &format!("environment {}/{}", env.service, env.environment),
        env,
    )?;
    item.extend(env_key(&env.service, &env.environment));
    Ok(item)
}

pub(crate) fn build_error(e: aws_smithy_types::error::operation::BuildError) -> AdapterError {
    AdapterError::Other(format!("DynamoDB request could not be built: {e}"))
}

/// `(:p0, :p1, ...)` for `phase IN`, with the values bound to those placeholders.
fn phase_list(phases: &[Phase]) -> (String, Vec<(String, AttributeValue)>) {
    let values: Vec<(String, AttributeValue)> = phases
        .iter()
        .enumerate()
        .map(|(i, p)| (format!(":p{i}"), s(p.as_str())))
        .collect();
    let names: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
    (format!("({})", names.join(", ")), values)
}

pub(crate) fn reason_codes(reasons: &[CancellationReason]) -> String {
    reasons
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn is_transient_cancellation(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .any(|r| r.code().is_some_and(|c| TRANSIENT_REASONS.contains(&c)))
}

/// The reasons a transaction was cancelled, or the mapped error for any other failure.
pub(crate) fn cancellation<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> Result<Vec<CancellationReason>, AdapterError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        return Ok(e.cancellation_reasons().to_vec());
    }
    Err(map_sdk_error("TransactWriteItems", err, TABLE_NOT_FOUND))
}

/// History cursors are the query's LastEvaluatedKey (four string attributes) as base64 JSON.
const CURSOR_KEYS: [&str; 4] = [PK, SK, GSI1PK, GSI1SK];

fn encode_cursor(key: &Item) -> Result<String, AdapterError> {
    let mut plain = BTreeMap::new();
    for name in CURSOR_KEYS {
        match key.get(name) {
            Some(AttributeValue::S(v)) => {
                plain.insert(name, v.as_str());
            }
            _ => {
                return Err(AdapterError::Other(format!(
                    "DynamoDB returned a page key without string attribute {name}; check the {GSI1} index keys"
                )));
            }
        }
    }
    let json = serde_json::to_vec(&plain)
        .map_err(|e| AdapterError::Other(format!("page cursor cannot be encoded: {e}")))?;
    Ok(aws_smithy_types::base64::encode(json))
}

fn decode_cursor(cursor: &str, service: &str, environment: &str) -> Result<Item, AdapterError> {
    let invalid = |why: &str| {
        AdapterError::Invalid(format!(
            "cursor {:?} is not valid for the history of {service}/{environment}: {why}; pass the `next` value of the previous page unchanged, or no cursor for the first page",
            cursor.chars().take(80).collect::<String>()
        ))
    };
    let json = aws_smithy_types::base64::decode(cursor).map_err(|_| invalid("not base64"))?;
    let plain: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| invalid("not a page key"))?;
    if plain.len() != CURSOR_KEYS.len() || CURSOR_KEYS.iter().any(|k| !plain.contains_key(*k)) {
        return Err(invalid("wrong key attributes"));
    }
    if plain.get(GSI1PK).map(String::as_str) != Some(history_pk(service, environment).as_str()) {
        return Err(invalid("it belongs to another service or environment"));
    }
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// A strongly consistent GetItem: reads that decide a write must see the latest one.
pub(crate) async fn get_consistent(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, AdapterError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| map_sdk_error("GetItem", e, TABLE_NOT_FOUND))?;
    Ok(out.item)
}

impl DynamoStore {
    async fn get(&self, key: Item) -> Result<Option<Item>, AdapterError> {
        get_consistent(&self.client, &self.table, key).await
    }

    /// Every item of a deployment whose sort key starts with `prefix`, in key order.
    async fn children(&self, id: &str, prefix: &str) -> Result<Vec<Item>, AdapterError> {
        self.query_prefix(deployment_pk(id), prefix, true).await
    }

    /// Appends one item; an item already there under the same key means this is a retry.
    async fn append(&self, what: &str, item: Item) -> Result<(), AdapterError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    tracing::debug!(what, "already recorded; the repeat is a no-op");
                    Ok(())
                }
                _ => Err(map_sdk_error("PutItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    async fn begin_refused(
        &self,
        record: &DeploymentRecord,
        reasons: &[CancellationReason],
    ) -> Result<BeginOutcome, AdapterError> {
        if let Some(existing) = self.deployment(&record.id).await? {
            if existing.execution_arn != record.execution_arn {
                return Err(AdapterError::ConditionFailed(format!(
                    "deployment id {} is already used by execution {}; start with a new deployment id",
                    record.id, existing.execution_arn
                )));
            }
            if existing.phase != Phase::Requested {
                return Ok(BeginOutcome::AlreadyStarted(Box::new(existing)));
            }
            // Still only requested: the lock is what refused it, or a collision.
        }
        let env = self
            .environment(&record.service, &record.environment)
            .await?;
        if let Some(by) = env.and_then(|e| e.active_deployment)
            && by != record.id
        {
            return Ok(BeginOutcome::Locked { by });
        }
        if is_transient_cancellation(reasons) {
            return Err(AdapterError::Transient(format!(
                "beginning deployment {} collided with another write ({})",
                record.id,
                reason_codes(reasons)
            )));
        }
        Err(AdapterError::ConditionFailed(format!(
            "beginning deployment {} of {}/{} was refused ({}) but neither the deployment nor another lock holder exists; retry, and inspect the table if it persists",
            record.id,
            record.service,
            record.environment,
            reason_codes(reasons)
        )))
    }
}

#[async_trait]
impl DeploymentStore for DynamoStore {
    async fn environment(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentState>, AdapterError> {
        self.get(env_key(service, environment))
            .await?
            .map(|item| from_item(&format!("environment {service}/{environment}"), item))
            .transpose()
    }

    async fn record_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        self.append(
            &format!("request of deployment {}", record.id),
            deployment_item(record)?,
        )
        .await
    }

    async fn end_request(&self, record: &DeploymentRecord) -> Result<(), AdapterError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(deployment_item(record)?))
            .condition_expression("attribute_not_exists(#pk) OR #phase = :requested")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_values(":requested", s(Phase::Requested.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let Some(PutItemError::ConditionalCheckFailedException(c)) = err.as_service_error() else {
            return Err(map_sdk_error("PutItem", err, TABLE_NOT_FOUND));
        };
        let phase = match c.item().and_then(|old| old.get("phase")) {
            Some(AttributeValue::S(p)) => p.clone(),
            _ => "unknown".to_string(),
        };
        if phase == record.phase.as_str() {
            // Ended the same way before: the repeat changes nothing.
            return Ok(());
        }
        Err(AdapterError::ConditionFailed(format!(
            "deployment {} is in phase {phase}; cannot end it as never started",
            record.id
        )))
    }

    async fn begin(&self, record: &DeploymentRecord) -> Result<BeginOutcome, AdapterError> {
        let color = record.active_color.ok_or_else(|| {
            AdapterError::Invalid(format!(
                "deployment {} cannot begin without its colors",
                record.id
            ))
        })?;
        // New, or the REQUESTED record of this same execution (written by its start).
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(deployment_item(record)?))
            .condition_expression(
                "attribute_not_exists(#pk) OR (#phase = :requested AND #execution = :execution)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_names("#execution", "execution_arn")
            .expression_attribute_values(":requested", s(Phase::Requested.as_str()))
            .expression_attribute_values(":execution", s(&record.execution_arn))
            .build()
            .map_err(build_error)?;
        let lock = Update::builder()
            .table_name(&self.table)
            .set_key(Some(env_key(&record.service, &record.environment)))
            .update_expression(
                "SET #lock = :id, #service = :service, #environment = :environment,                  #color = if_not_exists(#color, :color), #updated = :updated",
            )
            .condition_expression("attribute_not_exists(#lock) OR #lock = :id")
            .expression_attribute_names("#lock", "active_deployment")
            .expression_attribute_names("#service", "service")
            .expression_attribute_names("#environment", "environment")
            .expression_attribute_names("#color", "active_color")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_values(":id", s(&record.id))
            .expression_attribute_values(":service", s(&record.service))
            .expression_attribute_values(":environment", s(&record.environment))
            .expression_attribute_values(":color", s(color.as_str()))
            .expression_attribute_values(":updated", s(rfc3339(record.started_at)?))
            .build()
            .map_err(build_error)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(lock).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(promotion::pointer_put(&self.table, record)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(BeginOutcome::Started),
            Err(e) => {
                let reasons = cancellation(e)?;
                self.begin_refused(record, &reasons).await
            }
        }
    }

    async fn deployment(&self, id: &str) -> Result<Option<DeploymentRecord>, AdapterError> {
        self.get(deployment_key(id))
            .await?
            .map(|item| from_item(&format!("deployment {id}"), item))
            .transpose()
    }

    async fn transition(
        &self,
        id: &str,
        to: Phase,
        target_weight: Option<u16>,
        reason: Option<&str>,
    ) -> Result<DeploymentRecord, AdapterError> {
        let (sources, source_values) = phase_list(&Phase::sources_of(to));
        let mut set = vec!["#phase = :to", "#status = :status"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .condition_expression(format!("#phase IN {sources}"))
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":status", s(DeploymentStatus::of(to).as_str()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in source_values {
            request = request.expression_attribute_values(k, v);
        }
        if let Some(weight) = target_weight {
            set.push("#weight = :weight");
            request = request
                .expression_attribute_names("#weight", "target_weight")
                .expression_attribute_values(":weight", AttributeValue::N(weight.to_string()));
        }
        if let Some(reason) = reason {
            set.push("#reason = :reason");
            request = request
                .expression_attribute_names("#reason", "reason")
                .expression_attribute_values(":reason", s(reason));
        }
        let result = request
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| {
                    AdapterError::Other(format!(
                        "UpdateItem on deployment {id} returned no attributes; retry"
                    ))
                })?;
                from_item(&format!("deployment {id}"), item)
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(old) => {
                        let phase = match old.get("phase") {
                            Some(AttributeValue::S(p)) => p.as_str(),
                            _ => "unknown",
                        };
                        Err(AdapterError::ConditionFailed(format!(
                            "deployment {id} is in phase {phase}; cannot move to {to}"
                        )))
                    }
                    None => Err(AdapterError::NotFound(format!(
                        "deployment {id} does not exist; check the deployment id"
                    ))),
                },
                _ => Err(map_sdk_error("UpdateItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    async fn record_readiness(
        &self,
        id: &str,
        readiness: &ReadinessSummary,
    ) -> Result<(), AdapterError> {
        let value = serde_dynamo::to_attribute_value(readiness)
            .map_err(|e| AdapterError::Other(format!("readiness of deployment {id}: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .condition_expression("attribute_exists(#pk)")
            .update_expression("SET #readiness = :readiness")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#readiness", "readiness")
            .expression_attribute_values(":readiness", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Err(
                    AdapterError::NotFound(format!("deployment {id} does not exist")),
                ),
                _ => Err(map_sdk_error("UpdateItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    async fn record_step(&self, step: &StepRecord) -> Result<(), AdapterError> {
        let what = format!(
            "step {} of deployment {}",
            step.step_index, step.deployment_id
        );
        let mut item = to_item(&what, step)?;
        item.extend(key(
            deployment_pk(&step.deployment_id),
            &step_sk(step.step_index),
        ));
        self.append(&what, item).await
    }

    async fn record_evaluation(&self, entry: &LedgerEntry) -> Result<(), AdapterError> {
        let what = format!(
            "evaluation {}.{} of deployment {}",
            entry.step_index, entry.verification_index, entry.deployment_id
        );
        let mut item = to_item(&what, entry)?;
        item.extend(key(
            deployment_pk(&entry.deployment_id),
            &eval_sk(entry.step_index, entry.verification_index),
        ));
        self.append(&what, item).await
    }

    async fn finish(
        &self,
        record: &DeploymentRecord,
        env: &EnvironmentState,
    ) -> Result<(), AdapterError> {
        let (sources, source_values) = phase_list(&Phase::sources_of(record.phase));
        let mut terminal = Put::builder()
            .table_name(&self.table)
            .set_item(Some(deployment_item(record)?))
            .condition_expression(format!("#phase IN {sources} OR #phase = :phase"))
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_values(":phase", s(record.phase.as_str()));
        for (k, v) in source_values {
            terminal = terminal.expression_attribute_values(k, v);
        }
        let terminal = terminal.build().map_err(build_error)?;

        let mut env_state = env_item(env)?;
        env_state.remove("active_deployment");
        let release = Put::builder()
            .table_name(&self.table)
            .set_item(Some(env_state))
            .condition_expression("attribute_not_exists(#lock) OR #lock = :id")
            .expression_attribute_names("#lock", "active_deployment")
            .expression_attribute_values(":id", s(&record.id))
            .build()
            .map_err(build_error)?;

        let mut writes = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(terminal).build())
            .transact_items(TransactWriteItem::builder().put(release).build());
        if let Some(q) = promotion::quarantine_put(&self.table, record)? {
            writes = writes.transact_items(TransactWriteItem::builder().put(q).build());
        }
        let result = writes.send().await;
        let Err(e) = result else {
            return Ok(());
        };
        let reasons = cancellation(e)?;
        let Some(stored) = self.deployment(&record.id).await? else {
            return Err(AdapterError::NotFound(format!(
                "deployment {} does not exist; it cannot be finished",
                record.id
            )));
        };
        if stored.phase == record.phase {
            // Finished before: the repeat changes nothing.
            return Ok(());
        }
        if is_transient_cancellation(&reasons) {
            return Err(AdapterError::Transient(format!(
                "finishing deployment {} collided with another write ({})",
                record.id,
                reason_codes(&reasons)
            )));
        }
        let lock = self
            .environment(&env.service, &env.environment)
            .await?
            .and_then(|e| e.active_deployment);
        match lock {
            Some(by) if by != record.id => Err(AdapterError::ConditionFailed(format!(
                "environment {}/{} is locked by deployment {by}, not {}; the lock was not released",
                env.service, env.environment, record.id
            ))),
            _ => Err(AdapterError::ConditionFailed(format!(
                "deployment {} is in phase {}; cannot finish as {}",
                record.id, stored.phase, record.phase
            ))),
        }
    }

    async fn await_approval(
        &self,
        id: &str,
        task_token: &str,
        timeout_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, AdapterError> {
        self.await_approval_item(id, task_token, timeout_seconds, now)
            .await
    }

    async fn decide_approval(
        &self,
        id: &str,
        decision: &ApprovalDecision,
    ) -> Result<DeploymentRecord, AdapterError> {
        self.decide_approval_item(id, decision).await
    }

    async fn forget_task_token(&self, id: &str) -> Result<(), AdapterError> {
        self.forget_task_token_item(id).await
    }

    async fn add_evidence(&self, evidence: &Evidence) -> Result<(), AdapterError> {
        self.add_evidence_item(evidence).await
    }

    async fn evidence(&self, service: &str, version: &str) -> Result<Vec<Evidence>, AdapterError> {
        self.evidence_items(service, version).await
    }

    async fn quarantine(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Quarantine>, AdapterError> {
        self.quarantine_item(service, version).await
    }

    async fn clear_quarantine(
        &self,
        service: &str,
        version: &str,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<Quarantine, AdapterError> {
        self.clear_quarantine_item(service, version, by, at, reason)
            .await
    }

    async fn deployments_of_version(
        &self,
        service: &str,
        version: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        self.deployments_of_version_items(service, version, environment)
            .await
    }

    async fn steps(&self, id: &str) -> Result<Vec<StepRecord>, AdapterError> {
        self.children(id, STEP_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item(&format!("step of deployment {id}"), item))
            .collect()
    }

    async fn ledger(&self, id: &str) -> Result<Vec<LedgerEntry>, AdapterError> {
        self.children(id, EVAL_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item(&format!("evaluation of deployment {id}"), item))
            .collect()
    }

    async fn history(
        &self,
        service: &str,
        environment: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<DeploymentRecord>, AdapterError> {
        let start = cursor
            .map(|c| decode_cursor(c, service, environment))
            .transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", s(history_pk(service, environment)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| map_sdk_error("Query", e, TABLE_NOT_FOUND))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item(&format!("deployment in {service}/{environment}"), item))
            .collect::<Result<Vec<DeploymentRecord>, _>>()?;
        let next = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => Some(encode_cursor(&k)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn acquire_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
        now: OffsetDateTime,
        stale_after: time::Duration,
    ) -> Result<LockOutcome, AdapterError> {
        let mut expected: Option<String> = None;
        // At most two rounds: take a free lock, or take over a stale one once.
        for _ in 0..2 {
            let condition = match &expected {
                None => "attribute_not_exists(#lock) OR #lock = :id",
                Some(_) => "#lock = :stale",
            };
            let mut request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(env_key(service, environment)))
                .update_expression(
                    "SET #lock = :id, #taken = :now, #service = :service, #environment = :environment, \
                     #updated = if_not_exists(#updated, :now)",
                )
                .condition_expression(condition)
                .expression_attribute_names("#lock", "active_deployment")
                .expression_attribute_names("#taken", "lock_taken_at")
                .expression_attribute_names("#service", "service")
                .expression_attribute_names("#environment", "environment")
                .expression_attribute_names("#updated", "updated_at")
                .expression_attribute_values(":now", s(rfc3339(now)?))
                .expression_attribute_values(":service", s(service))
                .expression_attribute_values(":environment", s(environment))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            request = match &expected {
                None => request.expression_attribute_values(":id", s(id)),
                Some(stale) => request
                    .expression_attribute_values(":id", s(id))
                    .expression_attribute_values(":stale", s(stale)),
            };
            let err = match request.send().await {
                Ok(_) => return Ok(LockOutcome::Acquired),
                Err(e) => e,
            };
            let old = match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => return Err(map_sdk_error("UpdateItem", err, TABLE_NOT_FOUND)),
            };
            let text = |k: &str| match old.as_ref().and_then(|o| o.get(k)) {
                Some(AttributeValue::S(v)) => Some(v.clone()),
                _ => None,
            };
            let Some(holder) = text("active_deployment") else {
                // Released between our read and write: try again from the top.
                expected = None;
                continue;
            };
            let taken =
                text("lock_taken_at").and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok());
            let claim = crate::domain::claim_lock(&holder, id, taken, now, stale_after);
            let take_over = match claim {
                // Lost the takeover race to a retry of this same start: the lock is ours.
                LockClaim::Ours => return Ok(LockOutcome::Acquired),
                // Someone else took the stale lock first.
                _ if expected.is_some() => false,
                LockClaim::Held => false,
                // The decision needs to know whether the holder ever wrote its record.
                LockClaim::StaleUnlessRecorded => {
                    claim.take_over(self.deployment(&holder).await?.is_some())
                }
            };
            if !take_over {
                return Ok(LockOutcome::HeldBy(holder));
            }
            tracing::warn!(%holder, "taking over a lock whose deployment never started");
            expected = Some(holder);
        }
        Err(AdapterError::Transient(format!(
            "the lock of {service}/{environment} changed hands while taking it; retry"
        )))
    }

    async fn release_lock(
        &self,
        service: &str,
        environment: &str,
        id: &str,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(env_key(service, environment)))
            .update_expression("REMOVE #lock, #taken")
            .condition_expression("#lock = :id")
            .expression_attribute_names("#lock", "active_deployment")
            .expression_attribute_names("#taken", "lock_taken_at")
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(map_sdk_error("UpdateItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    async fn deployments_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        let mut records = Vec::new();
        if to <= from {
            return Ok(records);
        }
        // Sort keys carry whole seconds: widen the range to whole seconds (`$` sorts right
        // after the `#` that ends the time), then keep exactly `[from, to)`.
        let (lo, hi) = (sort_time(from)?, format!("{}$", sort_time(to)?));
        let mut cursor = from
            .to_offset(UtcOffset::UTC)
            .replace_day(1)
            .map_err(|e| AdapterError::Invalid(e.to_string()))?;
        while cursor < to {
            let partition = format!("MONTH#{}", month(cursor)?);
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI2)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#pk", GSI2PK)
                    .expression_attribute_names("#sk", GSI2SK)
                    .expression_attribute_values(":pk", s(partition.clone()))
                    .expression_attribute_values(":lo", s(lo.clone()))
                    .expression_attribute_values(":hi", s(hi.clone()))
                    .scan_index_forward(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("Query", e, TABLE_NOT_FOUND))?;
                for item in out.items.unwrap_or_default() {
                    let record: DeploymentRecord =
                        from_item(&format!("deployment in {partition}"), item)?;
                    if record.started_at >= from && record.started_at < to {
                        records.push(record);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            cursor = next_month(cursor)?;
        }
        Ok(records)
    }
}

/// The first day of the month after `t`.
fn next_month(t: OffsetDateTime) -> Result<OffsetDateTime, AdapterError> {
    let (year, month) = match t.month() {
        time::Month::December => (t.year() + 1, time::Month::January),
        m => (t.year(), m.next()),
    };
    let date = time::Date::from_calendar_date(year, month, 1)
        .map_err(|e| AdapterError::Invalid(e.to_string()))?;
    Ok(date.midnight().assume_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
pub(crate) mod tests {
    use super::*;
    use crate::domain::{
        AlarmState, AlarmStatus, CheckOutcome, Color, ColorMetrics, Evaluation, EvaluationKind,
        Outcome, TrafficSplit,
    };
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsInput, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, TransactionCanceledException,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use std::sync::{Arc, Mutex};
    use time::macros::datetime;

    pub(crate) const TABLE: &str = "bluegreen";
    const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:bluegreen:d-1";

    fn store(rules: &[&Rule]) -> DynamoStore {
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        DynamoStore::new(client, TABLE)
    }

    /// Requests a rule saw, in order.
    pub(crate) type Seen<T> = Arc<Mutex<Vec<T>>>;

    /// A place for a rule to record every request it sees, and a handle to read it back.
    pub(crate) fn recorder<T>() -> (Seen<T>, Seen<T>) {
        let seen: Seen<T> = Arc::default();
        (seen.clone(), seen)
    }

    fn record() -> DeploymentRecord {
        DeploymentRecord {
            id: "d-1".into(),
            execution_arn: EXECUTION.into(),
            service: "checkout".into(),
            environment: "dev".into(),
            version: "1.3.0".into(),
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.3.0".into(),
            image_digest: None,
            strategy: crate::domain::Strategy::BlueGreen,
            deployer: "alice".into(),
            triggered_by: None,
            active_color: Some(Color::Blue),
            target_color: Some(Color::Green),
            previous_version: Some("1.2.0".into()),
            replaced_version: Some("1.2.0".into()),
            phase: Phase::DeployingGreen,
            status: DeploymentStatus::InProgress,
            target_weight: 0,
            started_at: datetime!(2025-01-03 10:00:00.250 UTC),
            finished_at: None,
            duration_seconds: None,
            reason: None,
            readiness: None,
            traffic: serde_json::from_value(crate::fakes::sample::request()["traffic"].clone())
                .unwrap(),
            role_arn: None,
            approval: None,
            gates: None,
            image_pushed_at: None,
        }
    }

    fn env_state(lock: Option<&str>) -> EnvironmentState {
        EnvironmentState {
            service: "checkout".into(),
            environment: "dev".into(),
            active_color: Some(Color::Green),
            active_version: Some("1.3.0".into()),
            standby_version: Some("1.2.0".into()),
            active_deployment: lock.map(str::to_string),
            last_deployment: Some("d-1".into()),
            updated_at: datetime!(2025-01-03 10:20:00 UTC),
        }
    }

    fn entry() -> LedgerEntry {
        LedgerEntry {
            deployment_id: "d-1".into(),
            kind: EvaluationKind::Verification,
            step_index: 2,
            verification_index: 3,
            split: TrafficSplit::new(0, 100).unwrap(),
            target_color: Color::Green,
            window_start: datetime!(2025-01-03 10:10:00 UTC),
            window_end: datetime!(2025-01-03 10:11:00 UTC),
            target: ColorMetrics {
                requests: 1000,
                errors_5xx: 1,
                p99_ms: Some(45.0),
            },
            baseline: ColorMetrics::default(),
            alarms: vec![AlarmState {
                name: "checkout-dev-5xx".into(),
                status: AlarmStatus::Ok,
                reason: String::new(),
            }],
            evaluation: Evaluation {
                outcome: Outcome::Pass,
                alarms_check: CheckOutcome::Pass,
                error_rate_check: CheckOutcome::Pass,
                latency_check: CheckOutcome::Pass,
                error_rate_percent: Some(0.1),
                target_p99_ms: Some(45.0),
                baseline_p99_ms: Some(42.0),
                reasons: vec![],
            },
        }
    }

    pub(crate) fn str_attr<'a>(item: &'a Item, name: &str) -> &'a str {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no string attribute {name} in {item:?}"))
    }

    pub(crate) fn names_of(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
        map.cloned().unwrap_or_default().into_iter().collect()
    }

    pub(crate) fn values_of(
        map: Option<&HashMap<String, AttributeValue>>,
    ) -> BTreeMap<String, String> {
        map.cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    AttributeValue::S(s) | AttributeValue::N(s) => s,
                    other => format!("{other:?}"),
                };
                (k, v)
            })
            .collect()
    }

    pub(crate) fn cancelled(codes: &'static [&'static str]) -> TransactWriteItemsError {
        let mut e = TransactionCanceledException::builder().message("Transaction cancelled");
        for code in codes {
            e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
        }
        TransactWriteItemsError::TransactionCanceledException(e.build())
    }

    fn get_returns(item: Option<Item>) -> Rule {
        mock!(Client::get_item)
            .match_requests(|r| r.consistent_read() == Some(true))
            .then_output(move || GetItemOutput::builder().set_item(item.clone()).build())
    }

    #[tokio::test]
    async fn begin_writes_the_record_and_takes_the_lock_in_one_transaction() {
        // GIVEN
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let rule = mock!(Client::transact_write_items).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            TransactWriteItemsOutput::builder().build()
        });
        let s = store(&[&rule]);

        // WHEN
        let outcome = s.begin(&record()).await.unwrap();

        // THEN
        assert_eq!(outcome, BeginOutcome::Started);
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 3);

        let put = items[0].put().expect("first item is the deployment Put");
        assert_eq!(put.table_name(), TABLE);
        // new, or completing the REQUESTED record of this same execution
        assert_eq!(
            put.condition_expression(),
            Some("attribute_not_exists(#pk) OR (#phase = :requested AND #execution = :execution)")
        );
        let names = names_of(put.expression_attribute_names());
        assert_eq!(
            (
                names["#pk"].as_str(),
                names["#phase"].as_str(),
                names["#execution"].as_str()
            ),
            ("pk", "phase", "execution_arn")
        );
        let values = values_of(put.expression_attribute_values());
        assert_eq!(values[":requested"], "REQUESTED");
        assert_eq!(values[":execution"], record().execution_arn);
        let item = put.item();
        assert_eq!(str_attr(item, "pk"), "DEPLOYMENT#d-1");
        assert_eq!(str_attr(item, "sk"), "META");
        assert_eq!(str_attr(item, "gsi1pk"), "ENV#checkout#dev");
        assert_eq!(str_attr(item, "gsi1sk"), "2025-01-03T10:00:00Z#d-1");
        assert_eq!(str_attr(item, "gsi2pk"), "MONTH#2025-01");
        assert_eq!(str_attr(item, "gsi2sk"), "2025-01-03T10:00:00Z#d-1");
        assert_eq!(str_attr(item, "phase"), "DEPLOYING_GREEN");
        assert_eq!(str_attr(item, "status"), "IN_PROGRESS");
        assert_eq!(str_attr(item, "started_at"), "2025-01-03T10:00:00.25Z");
        assert!(!item.contains_key("finished_at"), "None is omitted");

        let update = items[1].update().expect("second item is the lock Update");
        assert_eq!(
            update.key(),
            &HashMap::from([
                ("pk".to_string(), s_attr("ENV#checkout#dev")),
                ("sk".to_string(), s_attr("STATE")),
            ])
        );
        assert_eq!(
            update.condition_expression(),
            Some("attribute_not_exists(#lock) OR #lock = :id")
        );
        assert!(
            update
                .update_expression()
                .contains("#color = if_not_exists(#color, :color)"),
            "{}",
            update.update_expression()
        );
        let names = names_of(update.expression_attribute_names());
        assert_eq!(names["#lock"], "active_deployment");
        assert_eq!(names["#color"], "active_color");
        let values = values_of(update.expression_attribute_values());
        assert_eq!(values[":id"], "d-1");
        assert_eq!(values[":color"], "blue");

        let pointer = items[2]
            .put()
            .expect("third item points from the version to the deployment");
        assert_eq!(str_attr(pointer.item(), "pk"), "VERSION#checkout#1.3.0");
        assert_eq!(
            str_attr(pointer.item(), "sk"),
            "DEPLOYMENT#dev#2025-01-03T10:00:00Z#d-1"
        );
        assert_eq!(str_attr(pointer.item(), "deployment_id"), "d-1");
    }

    pub(crate) fn s_attr(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[tokio::test]
    async fn a_request_is_recorded_once_and_a_later_write_changes_nothing() {
        // GIVEN the table refuses the put: the deployment already has a record
        let (seen, sink) = recorder::<PutItemInput>();
        let put = mock!(Client::put_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            PutItemOutput::builder().build()
        });
        let refused = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let mut requested = record();
        requested.phase = Phase::Requested;
        requested.active_color = None;
        requested.target_color = None;
        // WHEN it is written, then written again
        store(&[&put]).record_request(&requested).await.unwrap();
        store(&[&refused]).record_request(&requested).await.unwrap();
        // THEN the first is a conditional put of the whole record under its history keys
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].condition_expression(),
            Some("attribute_not_exists(#pk)")
        );
        let item = seen[0].item().unwrap();
        assert_eq!(str_attr(item, "phase"), "REQUESTED");
        assert_eq!(str_attr(item, "gsi1pk"), "ENV#checkout#dev");
        assert!(
            !item.contains_key("active_color"),
            "colors are not known yet"
        );
    }

    #[tokio::test]
    async fn ending_a_request_is_conditioned_on_it_still_being_requested() {
        let (seen, sink) = recorder::<PutItemInput>();
        let put = mock!(Client::put_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            PutItemOutput::builder().build()
        });
        let mut ended = record();
        ended.phase = Phase::Failed;
        ended.status = DeploymentStatus::Failed;
        ended.active_color = None;
        ended.target_color = None;
        store(&[&put]).end_request(&ended).await.unwrap();
        let input = seen.lock().unwrap()[0].clone();
        assert_eq!(
            input.condition_expression(),
            Some("attribute_not_exists(#pk) OR #phase = :requested")
        );
        assert_eq!(
            values_of(input.expression_attribute_values())[":requested"],
            "REQUESTED"
        );
        assert_eq!(str_attr(input.item().unwrap(), "status"), "FAILED");

        // a repeat finds it ended the same way: no-op; a deployment that began meanwhile: refused
        let refused = |phase: &'static str| {
            mock!(Client::put_item).then_error(move || {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder()
                        .item("phase", s_attr(phase))
                        .build(),
                )
            })
        };
        let same = refused("FAILED");
        assert_eq!(store(&[&same]).end_request(&ended).await, Ok(()));
        let began = refused("DEPLOYING_GREEN");
        assert_eq!(
            store(&[&began]).end_request(&ended).await,
            Err(AdapterError::ConditionFailed(
                "deployment d-1 is in phase DEPLOYING_GREEN; cannot end it as never started".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_repeated_begin_of_the_same_execution_is_already_started() {
        // GIVEN the transaction is cancelled because the record exists for this execution
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
        let existing = deployment_item(&record()).unwrap();
        let s = store(&[&tx, &get_returns(Some(existing))]);

        // WHEN / THEN
        assert_eq!(
            s.begin(&record()).await,
            Ok(BeginOutcome::AlreadyStarted(Box::new(record())))
        );
    }

    #[tokio::test]
    async fn begin_while_another_deployment_holds_the_environment_is_locked_by_it() {
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["None", "ConditionalCheckFailed"]));
        let no_deployment = get_returns(None);
        let mut env = env_item(&env_state(Some("d-0"))).unwrap();
        env.insert("active_deployment".into(), s_attr("d-0"));
        let s = store(&[&tx, &no_deployment, &get_returns(Some(env))]);

        assert_eq!(
            s.begin(&record()).await,
            Ok(BeginOutcome::Locked { by: "d-0".into() })
        );
    }

    #[tokio::test]
    async fn begin_cancelled_by_a_conflicting_transaction_is_transient() {
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["TransactionConflict", "None"]));
        let s = store(&[&tx, &get_returns(None), &get_returns(None)]);
        let err = s.begin(&record()).await;
        assert!(matches!(err, Err(AdapterError::Transient(_))), "{err:?}");
    }

    #[tokio::test]
    async fn transition_is_conditioned_on_the_source_phases_and_returns_the_new_record() {
        // GIVEN
        let (seen, sink) = recorder::<UpdateItemInput>();
        let mut after = record();
        after.phase = Phase::RollingBack;
        after.target_weight = 25;
        after.reason = Some("error rate 8.00%".into());
        let stored = deployment_item(&after).unwrap();
        let rule = mock!(Client::update_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            UpdateItemOutput::builder()
                .set_attributes(Some(stored.clone()))
                .build()
        });
        let s = store(&[&rule]);

        // WHEN
        let got = s
            .transition(
                "d-1",
                Phase::RollingBack,
                Some(25),
                Some("error rate 8.00%"),
            )
            .await
            .unwrap();

        // THEN
        assert_eq!(got, after);
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(req.table_name(), Some(TABLE));
        assert_eq!(
            req.condition_expression(),
            Some("#phase IN (:p0, :p1, :p2, :p3, :p4)")
        );
        assert_eq!(
            req.update_expression(),
            Some("SET #phase = :to, #status = :status, #weight = :weight, #reason = :reason")
        );
        let names = names_of(req.expression_attribute_names());
        assert_eq!(
            (names["#phase"].as_str(), names["#status"].as_str()),
            ("phase", "status")
        );
        let values = values_of(req.expression_attribute_values());
        let sources: Vec<&str> = (0..5).map(|i| values[&format!(":p{i}")].as_str()).collect();
        assert_eq!(
            sources,
            [
                "DEPLOYING_GREEN",
                "AWAITING_APPROVAL",
                "SHIFTING_TRAFFIC",
                "VERIFYING",
                "ROLLING_BACK"
            ]
        );
        assert_eq!(values[":to"], "ROLLING_BACK");
        assert_eq!(values[":status"], "IN_PROGRESS");
        assert_eq!(values[":weight"], "25");
        assert_eq!(req.return_values(), Some(&ReturnValue::AllNew));
        assert_eq!(
            req.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[tokio::test]
    async fn transition_without_weight_or_reason_binds_no_unused_names() {
        let (seen, sink) = recorder::<UpdateItemInput>();
        let stored = deployment_item(&record()).unwrap();
        let rule = mock!(Client::update_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            UpdateItemOutput::builder()
                .set_attributes(Some(stored.clone()))
                .build()
        });
        store(&[&rule])
            .transition("d-1", Phase::ShiftingTraffic, None, None)
            .await
            .unwrap();
        let req = &seen.lock().unwrap()[0];
        assert_eq!(
            req.update_expression(),
            Some("SET #phase = :to, #status = :status")
        );
        assert_eq!(
            names_of(req.expression_attribute_names())
                .keys()
                .collect::<Vec<_>>(),
            ["#phase", "#status"]
        );
    }

    #[tokio::test]
    async fn a_refused_transition_names_the_phase_the_deployment_is_in() {
        let mut old = record();
        old.phase = Phase::RollingBack;
        let old = deployment_item(&old).unwrap();
        let rule = mock!(Client::update_item).then_error(move || {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .set_item(Some(old.clone()))
                    .build(),
            )
        });
        let err = store(&[&rule])
            .transition("d-1", Phase::ShiftingTraffic, Some(50), None)
            .await;
        assert_eq!(
            err,
            Err(AdapterError::ConditionFailed(
                "deployment d-1 is in phase ROLLING_BACK; cannot move to SHIFTING_TRAFFIC".into()
            ))
        );
    }

    #[tokio::test]
    async fn transition_of_a_missing_deployment_is_not_found() {
        let rule = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let err = store(&[&rule])
            .transition("nope", Phase::ShiftingTraffic, None, None)
            .await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");
    }

    #[tokio::test]
    async fn record_evaluation_appends_once_and_a_repeat_is_a_no_op() {
        // GIVEN the first put succeeds, the repeat finds the item there
        let (seen, sink) = recorder::<PutItemInput>();
        let first = mock!(Client::put_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            PutItemOutput::builder().build()
        });
        let repeat = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let s = store(&[&first, &repeat]);

        // WHEN / THEN
        assert_eq!(s.record_evaluation(&entry()).await, Ok(()));
        assert_eq!(s.record_evaluation(&entry()).await, Ok(()));
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(
            req.condition_expression(),
            Some("attribute_not_exists(#pk)")
        );
        assert_eq!(names_of(req.expression_attribute_names())["#pk"], "pk");
        let item = req.item().unwrap();
        assert_eq!(str_attr(item, "pk"), "DEPLOYMENT#d-1");
        assert_eq!(str_attr(item, "sk"), "EVAL#002#0003");
        assert_eq!(str_attr(item, "kind"), "verification");
    }

    #[tokio::test]
    async fn record_readiness_updates_only_an_existing_deployment() {
        let (seen, sink) = recorder::<UpdateItemInput>();
        let ok = mock!(Client::update_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            UpdateItemOutput::builder().build()
        });
        let missing = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let s = store(&[&ok, &missing]);
        let readiness = ReadinessSummary {
            platform: crate::domain::Platform::Eks,
            revision: "infra-agent-green-7d9f8b6c5d".into(),
            running: 2,
            desired: 2,
            healthy_targets: 2,
            registered_targets: 2,
            checks: 3,
        };
        assert_eq!(s.record_readiness("d-1", &readiness).await, Ok(()));
        assert!(matches!(
            s.record_readiness("d-1", &readiness).await,
            Err(AdapterError::NotFound(_))
        ));
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(req.condition_expression(), Some("attribute_exists(#pk)"));
        assert_eq!(req.update_expression(), Some("SET #readiness = :readiness"));
        let value = &req.expression_attribute_values().unwrap()[":readiness"];
        let back: ReadinessSummary = serde_dynamo::from_attribute_value(value.clone()).unwrap();
        assert_eq!(back, readiness);
        // a summary stored before platforms existed reads as ECS
        let mut old = value.as_m().unwrap().clone();
        assert!(old.remove("platform").is_some());
        let back: ReadinessSummary =
            serde_dynamo::from_attribute_value(AttributeValue::M(old)).unwrap();
        assert_eq!(back.platform, crate::domain::Platform::Ecs);
    }

    #[tokio::test]
    async fn record_step_keys_the_step_by_its_index() {
        let (seen, sink) = recorder::<PutItemInput>();
        let rule = mock!(Client::put_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            PutItemOutput::builder().build()
        });
        let step = StepRecord {
            deployment_id: "d-1".into(),
            step_index: 1,
            split: TrafficSplit::new(75, 25).unwrap(),
            target_color: Color::Green,
            shifted_at: datetime!(2025-01-03 10:05:00 UTC),
        };
        store(&[&rule]).record_step(&step).await.unwrap();
        let item = seen.lock().unwrap()[0].item().cloned().unwrap();
        assert_eq!(str_attr(&item, "sk"), "STEP#001");
        assert_eq!(
            item.get("split")
                .and_then(|v| v.as_m().ok())
                .map(|m| m.len()),
            Some(2)
        );
    }

    #[tokio::test]
    async fn a_failed_write_that_is_not_a_condition_is_reported() {
        let rule = mock!(Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
        });
        let err = store(&[&rule]).record_evaluation(&entry()).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn finish_writes_the_terminal_record_and_releases_the_lock_together() {
        // GIVEN
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let rule = mock!(Client::transact_write_items).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            TransactWriteItemsOutput::builder().build()
        });
        let mut done = record();
        done.finish(Phase::Succeeded, datetime!(2025-01-03 10:20:00 UTC), None);

        // WHEN
        store(&[&rule])
            .finish(&done, &env_state(Some("d-1")))
            .await
            .unwrap();

        // THEN
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        let terminal = items[0].put().unwrap();
        assert_eq!(
            terminal.condition_expression(),
            Some("#phase IN (:p0) OR #phase = :phase")
        );
        let values = values_of(terminal.expression_attribute_values());
        assert_eq!(
            (values[":p0"].as_str(), values[":phase"].as_str()),
            ("VERIFYING", "SUCCEEDED")
        );
        assert_eq!(str_attr(terminal.item(), "status"), "SUCCEEDED");
        assert_eq!(str_attr(terminal.item(), "gsi1pk"), "ENV#checkout#dev");

        let release = items[1].put().unwrap();
        assert_eq!(
            release.condition_expression(),
            Some("attribute_not_exists(#lock) OR #lock = :id")
        );
        assert_eq!(
            values_of(release.expression_attribute_values())[":id"],
            "d-1"
        );
        assert_eq!(str_attr(release.item(), "pk"), "ENV#checkout#dev");
        assert_eq!(str_attr(release.item(), "sk"), "STATE");
        assert_eq!(str_attr(release.item(), "active_color"), "green");
        assert!(!release.item().contains_key("active_deployment"));
    }

    #[tokio::test]
    async fn finishing_again_after_it_succeeded_is_a_no_op() {
        let mut done = record();
        done.finish(
            Phase::RolledBack,
            datetime!(2025-01-03 10:20:00 UTC),
            Some("error rate 8.00%".into()),
        );
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["None", "ConditionalCheckFailed"]));
        let stored = deployment_item(&done).unwrap();
        let s = store(&[&tx, &get_returns(Some(stored))]);
        assert_eq!(s.finish(&done, &env_state(None)).await, Ok(()));
    }

    #[tokio::test]
    async fn finishing_from_the_wrong_phase_is_refused_with_the_phase() {
        let mut done = record();
        done.finish(Phase::Succeeded, datetime!(2025-01-03 10:20:00 UTC), None);
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
        let mut stored = record();
        stored.phase = Phase::RollingBack;
        let s = store(&[
            &tx,
            &get_returns(Some(deployment_item(&stored).unwrap())),
            &get_returns(Some(env_item(&env_state(Some("d-1"))).unwrap())),
        ]);
        assert_eq!(
            s.finish(&done, &env_state(None)).await,
            Err(AdapterError::ConditionFailed(
                "deployment d-1 is in phase ROLLING_BACK; cannot finish as SUCCEEDED".into()
            ))
        );
    }

    #[tokio::test]
    async fn history_queries_gsi1_newest_first_and_pages_with_a_cursor() {
        // GIVEN a first page that has more, then the last page
        let (seen, sink) = recorder::<QueryInput>();
        let page_key = HashMap::from([
            ("pk".to_string(), s_attr("DEPLOYMENT#d-1")),
            ("sk".to_string(), s_attr("META")),
            ("gsi1pk".to_string(), s_attr("ENV#checkout#dev")),
            ("gsi1sk".to_string(), s_attr("2025-01-03T10:00:00Z#d-1")),
        ]);
        let first_key = page_key.clone();
        let item = deployment_item(&record()).unwrap();
        let rule = mock!(Client::query).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            let first = req.exclusive_start_key().is_none();
            QueryOutput::builder()
                .items(item.clone())
                .set_last_evaluated_key(first.then(|| first_key.clone()))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let s = DynamoStore::new(client, TABLE);

        // WHEN
        let page = s.history("checkout", "dev", 1, None).await.unwrap();
        let cursor = page.next.clone().expect("a cursor for the next page");
        let last = s
            .history("checkout", "dev", 1, Some(&cursor))
            .await
            .unwrap();

        // THEN
        assert_eq!(page.items, vec![record()]);
        assert_eq!(last.next, None);
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(req.index_name(), Some("gsi1"));
        assert_eq!(req.key_condition_expression(), Some("#pk = :pk"));
        assert_eq!(names_of(req.expression_attribute_names())["#pk"], "gsi1pk");
        assert_eq!(
            values_of(req.expression_attribute_values())[":pk"],
            "ENV#checkout#dev"
        );
        assert_eq!(req.scan_index_forward(), Some(false));
        assert_eq!(req.limit(), Some(1));
        assert_eq!(seen[1].exclusive_start_key(), Some(&page_key));
    }

    #[tokio::test]
    async fn a_bad_or_foreign_cursor_is_invalid_and_nothing_is_queried() {
        let rule = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let s = store(&[&rule]);
        let err = s.history("checkout", "dev", 10, Some("not a cursor")).await;
        assert!(matches!(err, Err(AdapterError::Invalid(_))), "{err:?}");
        let foreign = encode_cursor(&HashMap::from([
            ("pk".to_string(), s_attr("DEPLOYMENT#d-9")),
            ("sk".to_string(), s_attr("META")),
            ("gsi1pk".to_string(), s_attr("ENV#payments#dev")),
            ("gsi1sk".to_string(), s_attr("2025-01-03T10:00:00Z#d-9")),
        ]))
        .unwrap();
        // another service's page of the same environment is as foreign as another environment's
        let err = s.history("checkout", "dev", 10, Some(&foreign)).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("another service or environment")),
            "{err:?}"
        );
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn steps_query_the_deployment_partition_in_order_across_pages() {
        let (seen, sink) = recorder::<QueryInput>();
        let step = |i: u32| StepRecord {
            deployment_id: "d-1".into(),
            step_index: i,
            split: TrafficSplit::with_percent_on(Color::Green, 25).unwrap(),
            target_color: Color::Green,
            shifted_at: datetime!(2025-01-03 10:05:00 UTC),
        };
        let items: Vec<Item> = (0..2).map(|i| to_item("step", &step(i)).unwrap()).collect();
        let rule = mock!(Client::query).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            let first = req.exclusive_start_key().is_none();
            let i = usize::from(!first);
            QueryOutput::builder()
                .items(items[i].clone())
                .set_last_evaluated_key(
                    first.then(|| HashMap::from([("pk".to_string(), s_attr("x"))])),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let steps = DynamoStore::new(client, TABLE).steps("d-1").await.unwrap();
        assert_eq!(steps, vec![step(0), step(1)]);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].key_condition_expression(),
            Some("#pk = :pk AND begins_with(#sk, :prefix)")
        );
        let values = values_of(seen[0].expression_attribute_values());
        assert_eq!(
            (values[":pk"].as_str(), values[":prefix"].as_str()),
            ("DEPLOYMENT#d-1", "STEP#")
        );
        assert_eq!(seen[0].scan_index_forward(), Some(true));
    }

    #[tokio::test]
    async fn environment_reads_the_state_item_consistently() {
        let stored = env_item(&env_state(None)).unwrap();
        let s = store(&[&get_returns(Some(stored))]);
        assert_eq!(
            s.environment("checkout", "dev").await,
            Ok(Some(env_state(None)))
        );
        let s = store(&[&get_returns(None)]);
        assert_eq!(s.environment("checkout", "prd").await, Ok(None));
    }

    #[test]
    fn ledger_entries_and_records_round_trip_through_items() {
        let item = to_item("entry", &entry()).unwrap();
        assert_eq!(from_item::<LedgerEntry>("entry", item), Ok(entry()));
        let item = deployment_item(&record()).unwrap();
        assert_eq!(from_item::<DeploymentRecord>("record", item), Ok(record()));
    }

    // acquire_lock, release_lock, deployments_between

    const NOW: OffsetDateTime = datetime!(2025-01-03 10:00:00 UTC);
    const STALE_AFTER: time::Duration = time::Duration::minutes(10);

    /// The environment item as a failed condition returns it (ALL_OLD): held by `holder`.
    fn held_by(holder: &str, taken_at: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s_attr("ENV#checkout#dev")),
            ("sk".to_string(), s_attr("STATE")),
            ("active_deployment".to_string(), s_attr(holder)),
            ("lock_taken_at".to_string(), s_attr(taken_at)),
        ])
    }

    fn lock_refused(old: Option<Item>) -> UpdateItemError {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .set_item(old)
                .build(),
        )
    }

    /// An UpdateItem rule that records its request and succeeds.
    fn update_ok(sink: Seen<UpdateItemInput>) -> Rule {
        mock!(Client::update_item).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            UpdateItemOutput::builder().build()
        })
    }

    /// An UpdateItem rule that records its request and fails its condition with `old`.
    fn update_refused(sink: Seen<UpdateItemInput>, old: Option<Item>) -> Rule {
        mock!(Client::update_item).then_compute_response(move |req| {
            sink.lock().unwrap().push(req.clone());
            aws_smithy_mocks::MockResponse::Error(lock_refused(old.clone()))
        })
    }

    async fn acquire(s: &DynamoStore) -> Result<LockOutcome, AdapterError> {
        s.acquire_lock("checkout", "dev", "d-1", NOW, STALE_AFTER)
            .await
    }

    #[tokio::test]
    async fn acquire_lock_takes_a_free_lock_with_one_conditional_update() {
        // GIVEN
        let (seen, sink) = recorder::<UpdateItemInput>();
        let s = store(&[&update_ok(sink)]);

        // WHEN
        let outcome = acquire(&s).await;

        // THEN
        assert_eq!(outcome, Ok(LockOutcome::Acquired));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.table_name(), Some(TABLE));
        assert_eq!(
            req.key(),
            Some(&HashMap::from([
                ("pk".to_string(), s_attr("ENV#checkout#dev")),
                ("sk".to_string(), s_attr("STATE")),
            ]))
        );
        assert_eq!(
            req.condition_expression(),
            Some("attribute_not_exists(#lock) OR #lock = :id")
        );
        assert_eq!(
            req.update_expression(),
            Some(
                "SET #lock = :id, #taken = :now, #service = :service, #environment = :environment, \
                 #updated = if_not_exists(#updated, :now)"
            )
        );
        let names = names_of(req.expression_attribute_names());
        assert_eq!(
            (names["#lock"].as_str(), names["#taken"].as_str()),
            ("active_deployment", "lock_taken_at")
        );
        let values = values_of(req.expression_attribute_values());
        assert_eq!(
            values.keys().map(String::as_str).collect::<Vec<_>>(),
            [":environment", ":id", ":now", ":service"],
            "no unused values (DynamoDB refuses them)"
        );
        assert_eq!(values[":id"], "d-1");
        assert_eq!(values[":now"], "2025-01-03T10:00:00Z");
        assert_eq!(
            req.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[tokio::test]
    async fn acquire_lock_held_by_another_recent_start_names_the_holder() {
        // GIVEN d-0 took the lock a minute ago; no record lookup is needed (none is mocked)
        let (seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink, Some(held_by("d-0", "2025-01-03T09:59:00Z")));
        let s = store(&[&refused]);

        // WHEN / THEN
        assert_eq!(acquire(&s).await, Ok(LockOutcome::HeldBy("d-0".into())));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_stale_lock_whose_deployment_exists_is_still_held() {
        // GIVEN d-0 took the lock 11 minutes ago and its deployment record exists
        let (_seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink, Some(held_by("d-0", "2025-01-03T09:49:00Z")));
        let mut running = record();
        running.id = "d-0".into();
        let lookup = mock!(Client::get_item)
            .match_requests(|r| {
                r.consistent_read() == Some(true)
                    && r.key()
                        == Some(&HashMap::from([
                            ("pk".to_string(), s_attr("DEPLOYMENT#d-0")),
                            ("sk".to_string(), s_attr("META")),
                        ]))
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(deployment_item(&running).unwrap()))
                    .build()
            });
        let s = store(&[&refused, &lookup]);

        // WHEN / THEN
        assert_eq!(acquire(&s).await, Ok(LockOutcome::HeldBy("d-0".into())));
        assert_eq!(lookup.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_stale_lock_whose_start_never_made_a_record_is_taken_over() {
        // GIVEN d-0 took the lock 11 minutes ago and never got a deployment record
        let (seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink.clone(), Some(held_by("d-0", "2025-01-03T09:49:00Z")));
        let takeover = update_ok(sink);
        let s = store(&[&refused, &get_returns(None), &takeover]);

        // WHEN
        let outcome = acquire(&s).await;

        // THEN the second write replaces exactly the stale holder
        assert_eq!(outcome, Ok(LockOutcome::Acquired));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let req = &seen[1];
        assert_eq!(req.condition_expression(), Some("#lock = :stale"));
        let values = values_of(req.expression_attribute_values());
        assert_eq!(
            (values[":stale"].as_str(), values[":id"].as_str()),
            ("d-0", "d-1")
        );
        assert_eq!(req.key(), seen[0].key());
    }

    #[tokio::test]
    async fn a_stale_lock_within_the_window_is_not_taken_over() {
        // GIVEN exactly `stale_after` has passed: not yet stale
        let (_seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink, Some(held_by("d-0", "2025-01-03T09:50:00Z")));
        let s = store(&[&refused]);
        assert_eq!(acquire(&s).await, Ok(LockOutcome::HeldBy("d-0".into())));
    }

    #[tokio::test]
    async fn a_takeover_lost_to_another_start_names_the_new_holder() {
        let (_seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink.clone(), Some(held_by("d-0", "2025-01-03T09:49:00Z")));
        let lost = update_refused(sink, Some(held_by("d-2", "2025-01-03T10:00:00Z")));
        let s = store(&[&refused, &get_returns(None), &lost]);
        assert_eq!(acquire(&s).await, Ok(LockOutcome::HeldBy("d-2".into())));
    }

    #[tokio::test]
    async fn a_takeover_lost_to_a_retry_of_the_same_start_is_acquired() {
        // GIVEN a concurrent retry of d-1 took the stale lock first
        let (_seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink.clone(), Some(held_by("d-0", "2025-01-03T09:49:00Z")));
        let lost = update_refused(sink, Some(held_by("d-1", "2025-01-03T10:00:00Z")));
        let s = store(&[&refused, &get_returns(None), &lost]);
        assert_eq!(acquire(&s).await, Ok(LockOutcome::Acquired));
    }

    #[tokio::test]
    async fn a_stale_lock_released_during_the_takeover_asks_for_a_retry() {
        let (_seen, sink) = recorder::<UpdateItemInput>();
        let refused = update_refused(sink.clone(), Some(held_by("d-0", "2025-01-03T09:49:00Z")));
        let released = update_refused(sink, None);
        let s = store(&[&refused, &get_returns(None), &released]);
        let err = acquire(&s).await;
        assert!(matches!(err, Err(AdapterError::Transient(_))), "{err:?}");
    }

    #[tokio::test]
    async fn acquire_lock_throttled_is_retryable_throttling() {
        let rule = mock!(Client::update_item).then_error(|| {
            UpdateItemError::generic(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
        });
        let err = acquire(&store(&[&rule])).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn release_lock_removes_the_lock_only_if_this_deployment_holds_it() {
        // GIVEN the first release holds the lock, the second finds it released or taken
        let (seen, sink) = recorder::<UpdateItemInput>();
        let ok = update_ok(sink.clone());
        let not_ours = update_refused(sink, Some(held_by("d-2", "2025-01-03T10:00:00Z")));
        let s = store(&[&ok, &not_ours]);

        // WHEN / THEN both succeed
        assert_eq!(s.release_lock("checkout", "dev", "d-1").await, Ok(()));
        assert_eq!(s.release_lock("checkout", "dev", "d-1").await, Ok(()));
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        assert_eq!(
            req.key(),
            Some(&HashMap::from([
                ("pk".to_string(), s_attr("ENV#checkout#dev")),
                ("sk".to_string(), s_attr("STATE")),
            ]))
        );
        assert_eq!(req.update_expression(), Some("REMOVE #lock, #taken"));
        assert_eq!(req.condition_expression(), Some("#lock = :id"));
        let names = names_of(req.expression_attribute_names());
        assert_eq!(
            (names["#lock"].as_str(), names["#taken"].as_str()),
            ("active_deployment", "lock_taken_at")
        );
        assert_eq!(values_of(req.expression_attribute_values())[":id"], "d-1");
    }

    #[tokio::test]
    async fn release_lock_reports_failures_that_are_not_the_condition() {
        let rule = mock!(Client::update_item).then_error(|| {
            UpdateItemError::generic(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("Requested resource not found")
                    .build(),
            )
        });
        let err = store(&[&rule]).release_lock("checkout", "dev", "d-1").await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");
    }

    fn started(id: &str, at: OffsetDateTime) -> DeploymentRecord {
        let mut r = record();
        r.id = id.into();
        r.started_at = at;
        r
    }

    #[tokio::test]
    async fn deployments_between_queries_each_month_oldest_first_across_pages() {
        // GIVEN three month partitions; January answers in two pages
        let from = datetime!(2024-12-20 08:00:00.500 UTC);
        let to = datetime!(2025-02-10 00:00:00 UTC);
        let december = started("d-dec", datetime!(2024-12-24 09:00:00 UTC));
        let jan_1 = started("d-jan1", datetime!(2025-01-02 09:00:00 UTC));
        let jan_2 = started("d-jan2", datetime!(2025-01-30 09:00:00 UTC));
        let february = started("d-feb", datetime!(2025-02-09 23:59:59 UTC));
        let pages: HashMap<(String, bool), (Vec<DeploymentRecord>, bool)> = HashMap::from([
            (
                ("MONTH#2024-12".into(), true),
                (vec![december.clone()], false),
            ),
            (("MONTH#2025-01".into(), true), (vec![jan_1.clone()], true)),
            (
                ("MONTH#2025-01".into(), false),
                (vec![jan_2.clone()], false),
            ),
            (
                ("MONTH#2025-02".into(), true),
                (vec![february.clone()], false),
            ),
        ]);
        let (seen, sink) = recorder::<QueryInput>();
        let rule = mock!(Client::query).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            let partition = values_of(req.expression_attribute_values())[":pk"].clone();
            let first = req.exclusive_start_key().is_none();
            let (records, more) = &pages[&(partition, first)];
            QueryOutput::builder()
                .set_items(Some(
                    records
                        .iter()
                        .map(|r| deployment_item(r).unwrap())
                        .collect(),
                ))
                .set_last_evaluated_key(more.then(|| deployment_key(&records[0].id)))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);

        // WHEN
        let got = DynamoStore::new(client, TABLE)
            .deployments_between(from, to)
            .await
            .unwrap();

        // THEN
        assert_eq!(got, vec![december, jan_1.clone(), jan_2, february]);
        let seen = seen.lock().unwrap();
        let partitions: Vec<String> = seen
            .iter()
            .map(|r| values_of(r.expression_attribute_values())[":pk"].clone())
            .collect();
        assert_eq!(
            partitions,
            [
                "MONTH#2024-12",
                "MONTH#2025-01",
                "MONTH#2025-01",
                "MONTH#2025-02"
            ]
        );
        for req in seen.iter() {
            assert_eq!(req.table_name(), Some(TABLE));
            assert_eq!(req.index_name(), Some("gsi2"));
            assert_eq!(
                req.key_condition_expression(),
                Some("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            );
            let names = names_of(req.expression_attribute_names());
            assert_eq!(
                (names["#pk"].as_str(), names["#sk"].as_str()),
                ("gsi2pk", "gsi2sk")
            );
            let values = values_of(req.expression_attribute_values());
            assert_eq!(values[":lo"], "2024-12-20T08:00:00Z");
            assert_eq!(values[":hi"], "2025-02-10T00:00:00Z$");
            assert_eq!(req.scan_index_forward(), Some(true));
        }
        assert_eq!(seen[1].exclusive_start_key(), None);
        assert_eq!(
            seen[2].exclusive_start_key(),
            Some(&deployment_key(&jan_1.id))
        );
    }

    #[tokio::test]
    async fn deployments_between_keeps_exactly_the_half_open_range() {
        // GIVEN the query returns the whole seconds at both ends
        let from = datetime!(2025-01-03 10:00:00.500 UTC);
        let to = datetime!(2025-01-03 11:00:00.500 UTC);
        let before = started("d-before", datetime!(2025-01-03 10:00:00.250 UTC));
        let first = started("d-first", datetime!(2025-01-03 10:00:00.500 UTC));
        let last = started("d-last", datetime!(2025-01-03 11:00:00.250 UTC));
        let at_end = started("d-end", datetime!(2025-01-03 11:00:00.500 UTC));
        let items: Vec<Item> = [&before, &first, &last, &at_end]
            .iter()
            .map(|r| deployment_item(r).unwrap())
            .collect();
        let rule = mock!(Client::query).then_output(move || {
            QueryOutput::builder()
                .set_items(Some(items.clone()))
                .build()
        });

        // WHEN
        let got = store(&[&rule]).deployments_between(from, to).await;

        // THEN
        assert_eq!(got, Ok(vec![first, last]));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn deployments_between_skips_a_month_the_range_ends_at() {
        // GIVEN the range ends at the very start of February: only January is queried
        let (seen, sink) = recorder::<QueryInput>();
        let rule = mock!(Client::query).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            QueryOutput::builder().build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let s = DynamoStore::new(client, TABLE);
        let got = s
            .deployments_between(
                datetime!(2025-01-31 23:00:00 +02:00),
                datetime!(2025-02-01 00:00:00 UTC),
            )
            .await;
        assert_eq!(got, Ok(vec![]));
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1);
            assert_eq!(
                values_of(seen[0].expression_attribute_values())[":pk"],
                "MONTH#2025-01"
            );
        }

        // an empty or reversed range queries nothing
        let at = datetime!(2025-01-03 10:00:00 UTC);
        assert_eq!(s.deployments_between(at, at).await, Ok(vec![]));
        let earlier = datetime!(2025-01-02 10:00:00 UTC);
        assert_eq!(s.deployments_between(at, earlier).await, Ok(vec![]));
        assert_eq!(rule.num_calls(), 1);
    }
}
