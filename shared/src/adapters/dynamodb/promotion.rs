//! The promotion side of the deployment table: approvals on deployment records, and per version
//! its evidence, its quarantine and pointers to its deployments.
//!
//! Keys:
//! - evidence: `pk=VERSION#<service>#<version>`, `sk=EVIDENCE#<evidence id>` (append-only)
//! - quarantine: same `pk`, `sk=QUARANTINE`
//! - deployment pointer: same `pk`, `sk=DEPLOYMENT#<environment>#<started_at>#<id>`, written
//!   with the deployment record in `begin`

use super::{
    DynamoStore, Item, PK, SK, TABLE_NOT_FOUND, deployment_key, from_item, key, map_sdk_error,
    rfc3339, s, sort_time, to_item,
};
use crate::domain::{
    Approval, ApprovalDecision, ApprovalState, DeploymentRecord, DeploymentStatus, Evidence, Phase,
    Quarantine,
};
use crate::error::AdapterError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use time::OffsetDateTime;

pub(super) const QUARANTINE: &str = "QUARANTINE";
const EVIDENCE_PREFIX: &str = "EVIDENCE#";
const POINTER_PREFIX: &str = "DEPLOYMENT#";

pub(super) fn version_pk(service: &str, version: &str) -> String {
    format!("VERSION#{service}#{version}")
}

/// The pointer from a version to one of its deployments, put with the record in `begin`.
pub(super) fn pointer_put(table: &str, record: &DeploymentRecord) -> Result<Put, AdapterError> {
    let sk = format!(
        "{POINTER_PREFIX}{}#{}#{}",
        record.environment,
        sort_time(record.started_at)?,
        record.id
    );
    let mut item = key(version_pk(&record.service, &record.version), &sk);
    item.insert("deployment_id".into(), s(&record.id));
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(super::build_error)
}

/// The quarantine a rolled-back deployment puts on its version, put with the terminal record.
pub(super) fn quarantine_put(
    table: &str,
    record: &DeploymentRecord,
) -> Result<Option<Put>, AdapterError> {
    let Some(q) = crate::domain::quarantine_after(record) else {
        return Ok(None);
    };
    let mut item = to_item(&format!("quarantine of {} v{}", q.service, q.version), &q)?;
    item.extend(key(version_pk(&q.service, &q.version), QUARANTINE));
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map(Some)
        .map_err(super::build_error)
}

fn attribute<T: serde::Serialize>(what: &str, v: &T) -> Result<AttributeValue, AdapterError> {
    serde_dynamo::to_attribute_value(v)
        .map_err(|e| AdapterError::Invalid(format!("{what} cannot be stored in DynamoDB: {e}")))
}

impl DynamoStore {
    /// Every item of partition `pk` whose sort key starts with `prefix`, across pages, in key
    /// order (`forward`) or reversed; consistent reads.
    pub(super) async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        forward: bool,
    ) -> Result<Vec<Item>, AdapterError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e, TABLE_NOT_FOUND))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(items)
    }

    pub(super) async fn await_approval_item(
        &self,
        id: &str,
        task_token: &str,
        timeout_seconds: u64,
        now: OffsetDateTime,
    ) -> Result<DeploymentRecord, AdapterError> {
        let approval = Approval {
            state: ApprovalState::Pending,
            requested_at: now,
            timeout_seconds,
            task_token: Some(task_token.to_string()),
            decided_by: None,
            decided_at: None,
            comment: None,
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .update_expression("SET #phase = :to, #status = :status, #approval = :approval")
            .condition_expression(
                "#phase = :deploying OR (#phase = :to AND #approval.#state = :pending)",
            )
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#approval", "approval")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(Phase::AwaitingApproval.as_str()))
            .expression_attribute_values(":deploying", s(Phase::DeployingGreen.as_str()))
            .expression_attribute_values(":pending", s(ApprovalState::Pending.as_str()))
            .expression_attribute_values(
                ":status",
                s(DeploymentStatus::of(Phase::AwaitingApproval).as_str()),
            )
            .expression_attribute_values(":approval", attribute("approval", &approval)?)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        self.updated(id, result, |old| {
            Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {}; it cannot wait for approval",
                old.phase
            )))
        })
    }

    pub(super) async fn decide_approval_item(
        &self,
        id: &str,
        d: &ApprovalDecision,
    ) -> Result<DeploymentRecord, AdapterError> {
        let mut set = vec![
            "#approval.#state = :decision",
            "#approval.#by = :by",
            "#approval.#at = :at",
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .condition_expression("#phase = :awaiting AND #approval.#state = :pending")
            .expression_attribute_names("#phase", "phase")
            .expression_attribute_names("#approval", "approval")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#by", "decided_by")
            .expression_attribute_names("#at", "decided_at")
            .expression_attribute_values(":awaiting", s(Phase::AwaitingApproval.as_str()))
            .expression_attribute_values(":pending", s(ApprovalState::Pending.as_str()))
            .expression_attribute_values(":decision", s(d.state.as_str()))
            .expression_attribute_values(":by", s(&d.by))
            .expression_attribute_values(":at", s(rfc3339(d.at)?))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(c) = &d.comment {
            set.push("#approval.#comment = :comment");
            request = request
                .expression_attribute_names("#comment", "comment")
                .expression_attribute_values(":comment", s(c));
        }
        let result = request
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await;
        self.updated(id, result, |old| match &old.approval {
            Some(a) if a.state == d.state && a.decided_by.as_deref() == Some(d.by.as_str()) => {
                Ok(old)
            }
            Some(a) => Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {}; its approval is {}{}",
                old.phase,
                a.state.as_str(),
                a.decided_by
                    .as_deref()
                    .map(|b| format!(" (by {b})"))
                    .unwrap_or_default()
            ))),
            None => Err(AdapterError::ConditionFailed(format!(
                "deployment {id} is in phase {} and needs no approval",
                old.phase
            ))),
        })
    }

    pub(super) async fn forget_task_token_item(&self, id: &str) -> Result<(), AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .update_expression("REMOVE #approval.#token")
            .condition_expression("attribute_exists(#approval) AND #approval.#state <> :pending")
            .expression_attribute_names("#approval", "approval")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#token", "task_token")
            .expression_attribute_values(":pending", s(ApprovalState::Pending.as_str()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        self.updated(id, result, |old| {
            Err(AdapterError::ConditionFailed(match old.approval {
                Some(_) => {
                    format!("deployment {id}'s approval is still pending; its task token stays")
                }
                None => format!("deployment {id} has no approval"),
            }))
        })
        .map(|_| ())
    }

    /// The record an UpdateItem returned; on a failed condition, `refused` judges the old one.
    fn updated<R: std::fmt::Debug>(
        &self,
        id: &str,
        result: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_smithy_runtime_api::client::result::SdkError<UpdateItemError, R>,
        >,
        refused: impl FnOnce(DeploymentRecord) -> Result<DeploymentRecord, AdapterError>,
    ) -> Result<DeploymentRecord, AdapterError> {
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
                    Some(old) => refused(from_item(&format!("deployment {id}"), old.clone())?),
                    None => Err(AdapterError::NotFound(format!(
                        "deployment {id} does not exist; check the deployment id"
                    ))),
                },
                _ => Err(map_sdk_error("UpdateItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    pub(super) async fn add_evidence_item(&self, e: &Evidence) -> Result<(), AdapterError> {
        let what = format!("evidence {} of {} v{}", e.id, e.service, e.version);
        let mut item = to_item(&what, e)?;
        item.extend(key(
            version_pk(&e.service, &e.version),
            &format!("{EVIDENCE_PREFIX}{}", e.id),
        ));
        self.append(&what, item).await
    }

    pub(super) async fn evidence_items(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Vec<Evidence>, AdapterError> {
        let items = self
            .query_prefix(version_pk(service, version), EVIDENCE_PREFIX, true)
            .await?;
        let mut all = items
            .into_iter()
            .map(|i| from_item::<Evidence>(&format!("evidence of {service} v{version}"), i))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
        Ok(all)
    }

    pub(super) async fn quarantine_item(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Quarantine>, AdapterError> {
        self.get(key(version_pk(service, version), QUARANTINE))
            .await?
            .map(|i| from_item(&format!("quarantine of {service} v{version}"), i))
            .transpose()
    }

    pub(super) async fn clear_quarantine_item(
        &self,
        service: &str,
        version: &str,
        by: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<Quarantine, AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(version_pk(service, version), QUARANTINE)))
            .update_expression("SET #cleared = :true, #by = :by, #at = :at, #reason = :reason")
            .condition_expression("attribute_exists(#pk) AND #cleared = :false")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#cleared", "cleared")
            .expression_attribute_names("#by", "cleared_by")
            .expression_attribute_names("#at", "cleared_at")
            .expression_attribute_names("#reason", "clear_reason")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":by", s(by))
            .expression_attribute_values(":at", s(rfc3339(at)?))
            .expression_attribute_values(":reason", s(reason))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => from_item(
                &format!("quarantine of {service} v{version}"),
                out.attributes.unwrap_or_default(),
            ),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(AdapterError::NotFound(format!(
                        "{service} v{version} is not quarantined (never rolled back, or already cleared)"
                    )))
                }
                _ => Err(map_sdk_error("UpdateItem", e, TABLE_NOT_FOUND)),
            },
        }
    }

    pub(super) async fn deployments_of_version_items(
        &self,
        service: &str,
        version: &str,
        environment: &str,
    ) -> Result<Vec<DeploymentRecord>, AdapterError> {
        let pointers = self
            .query_prefix(
                version_pk(service, version),
                &format!("{POINTER_PREFIX}{environment}#"),
                false,
            )
            .await?;
        let mut records = Vec::with_capacity(pointers.len());
        for p in pointers {
            let Some(AttributeValue::S(id)) = p.get("deployment_id") else {
                continue;
            };
            if let Some(item) = self.get(deployment_key(id)).await? {
                records.push(from_item(&format!("deployment {id}"), item)?);
            }
        }
        Ok(records)
    }
}
