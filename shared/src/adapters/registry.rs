//! Registry adapter: services and their environments on the deployment table, with the two
//! indexes the triggers look up by (an image push's repository, an alarm's name), each written in
//! one transaction with the item it indexes.
//!
//! Keys (same table and `pk`/`sk` as the deployment store):
//! - service: `pk=SERVICE#<service>`, `sk=CONFIG`; repository index: `pk=REPO#<repository>`,
//!   `sk=SERVICE`, attribute `service` (a repository releases one service)
//! - environment: `pk=SERVICE#<service>`, `sk=ENV#<environment>`; alarm index, one item per bound
//!   alarm: `pk=ALARM#<alarm>`, `sk=<service>#<environment>`, attributes `service`, `environment`

use super::dynamodb::{
    Item, PK, SK, TABLE_NOT_FOUND, build_error, cancellation, from_item, get_consistent,
    is_transient_cancellation, key, reason_codes, s, to_item,
};
use super::map_sdk_error;
use crate::error::AdapterError;
use crate::ports::Registry;
use crate::registry::{
    ENVIRONMENT_POLICY_FIELDS, EnvironmentConfig, SERVICE_POLICY_FIELDS, ServiceConfig,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

const CONFIG: &str = "CONFIG";
const SERVICE: &str = "SERVICE";
/// TransactWriteItems' limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// The service registry on the deployment table.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

impl DynamoRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn service_pk(service: &str) -> String {
    format!("SERVICE#{service}")
}

fn service_key(service: &str) -> Item {
    key(service_pk(service), CONFIG)
}

fn repository_key(repository: &str) -> Item {
    key(format!("REPO#{repository}"), SERVICE)
}

fn environment_key(service: &str, environment: &str) -> Item {
    key(service_pk(service), &format!("ENV#{environment}"))
}

fn alarm_pk(alarm: &str) -> String {
    format!("ALARM#{alarm}")
}

fn alarm_key(alarm: &str, service: &str, environment: &str) -> Item {
    key(alarm_pk(alarm), &format!("{service}#{environment}"))
}

/// A stored config: the item without its keys (the config types refuse unknown fields).
fn config_of<T: DeserializeOwned>(what: &str, mut item: Item) -> Result<T, AdapterError> {
    item.remove(PK);
    item.remove(SK);
    from_item(what, item)
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

/// Whether the transaction's `index`th write failed its condition.
fn refused(reasons: &[CancellationReason], index: usize) -> Option<&CancellationReason> {
    reasons
        .get(index)
        .filter(|r| r.code() == Some(CONDITION_FAILED))
}

/// Which stored fields a registry write requires to be unchanged (exactly as in the new item).
#[derive(Clone, Copy)]
enum Kept<'a> {
    /// These: a team's write, which may not change the governed settings.
    Fields(&'a [&'a str]),
    /// Every field but these: an administrator's write of the governed settings, which must
    /// not undo a team's concurrent change of anything else.
    AllBut(&'a [&'a str]),
}

impl Kept<'_> {
    /// Where the kept values come from: the new item (a team's write keeps the governed fields
    /// as they are in it) or the one read before it (an administrator's keeps the rest as read).
    fn source<'i>(self, item: &'i Item, previous: Option<&'i Item>) -> &'i Item {
        match self {
            Kept::Fields(_) => item,
            Kept::AllBut(_) => previous.unwrap_or(item),
        }
    }

    /// The field names, given the new item and the one read before it.
    fn names(self, item: &Item, previous: Option<&Item>) -> Vec<String> {
        match self {
            Kept::Fields(f) => f.iter().map(|s| (*s).to_string()).collect(),
            Kept::AllBut(governed) => item
                .keys()
                .chain(previous.into_iter().flat_map(|p| p.keys()))
                .filter(|k| k.as_str() != PK && k.as_str() != SK && !governed.contains(&k.as_str()))
                .cloned()
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect(),
        }
    }
}

/// A write's condition: its expression with the names and values it uses.
#[derive(Default)]
struct Condition {
    clauses: Vec<String>,
    names: Vec<(String, String)>,
    values: Vec<(String, AttributeValue)>,
}

impl Condition {
    fn new(clause: &str, names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) -> Self {
        let mut c = Condition::default();
        c.and(clause, names, values);
        c
    }

    fn and(&mut self, clause: &str, names: &[(&str, &str)], values: Vec<(&str, AttributeValue)>) {
        self.clauses.push(clause.to_string());
        self.names
            .extend(names.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.values
            .extend(values.into_iter().map(|(k, v)| (k.to_string(), v)));
    }

    /// And: the stored `fields` are exactly as in `item` (absent where it has none).
    fn unchanged(&mut self, item: &Item, fields: &[String]) {
        for (i, field) in fields.iter().enumerate() {
            let (name, value) = (format!("#kept{i}"), format!(":kept{i}"));
            match item.get(field) {
                Some(v) => self.and(
                    &format!("{name} = {value}"),
                    &[(&name, field)],
                    vec![(&value, v.clone())],
                ),
                None => self.and(
                    &format!("attribute_not_exists({name})"),
                    &[(&name, field)],
                    vec![],
                ),
            }
        }
    }

    fn apply(self, put: PutBuilder) -> PutBuilder {
        let mut put = put.condition_expression(self.clauses.join(" AND "));
        for (k, v) in self.names {
            put = put.expression_attribute_names(k, v);
        }
        for (k, v) in self.values {
            put = put.expression_attribute_values(k, v);
        }
        put
    }
}

impl DynamoRegistry {
    async fn get(&self, key: Item) -> Result<Option<Item>, AdapterError> {
        get_consistent(&self.client, &self.table, key).await
    }

    /// Why a registry transaction was cancelled, when no write-specific reason applies.
    fn cancelled(what: &str, reasons: &[CancellationReason]) -> AdapterError {
        if is_transient_cancellation(reasons) {
            AdapterError::Transient(format!(
                "saving {what} collided with another write ({})",
                reason_codes(reasons)
            ))
        } else {
            AdapterError::Other(format!(
                "saving {what} was refused ({}); retry, and inspect the table if it persists",
                reason_codes(reasons)
            ))
        }
    }
}

#[async_trait]
impl Registry for DynamoRegistry {
    async fn put_service(&self, service: &ServiceConfig) -> Result<(), AdapterError> {
        self.write_service(service, Kept::Fields(&[])).await
    }

    async fn put_service_keeping_policy(
        &self,
        service: &ServiceConfig,
    ) -> Result<(), AdapterError> {
        self.write_service(service, Kept::Fields(SERVICE_POLICY_FIELDS))
            .await
    }

    async fn put_service_policy(&self, service: &ServiceConfig) -> Result<(), AdapterError> {
        self.write_service(service, Kept::AllBut(SERVICE_POLICY_FIELDS))
            .await
    }

    async fn put_environment(&self, env: &EnvironmentConfig) -> Result<(), AdapterError> {
        self.write_environment(env, Kept::Fields(&[])).await
    }

    async fn put_environment_keeping_policy(
        &self,
        env: &EnvironmentConfig,
    ) -> Result<(), AdapterError> {
        self.write_environment(env, Kept::Fields(ENVIRONMENT_POLICY_FIELDS))
            .await
    }

    async fn put_environment_policy(&self, env: &EnvironmentConfig) -> Result<(), AdapterError> {
        self.write_environment(env, Kept::AllBut(ENVIRONMENT_POLICY_FIELDS))
            .await
    }
    async fn service(&self, service: &str) -> Result<Option<ServiceConfig>, AdapterError> {
        self.get(service_key(service))
            .await?
            .map(|item| config_of(&format!("service {service}"), item))
            .transpose()
    }

    async fn service_by_repository(
        &self,
        repository: &str,
    ) -> Result<Option<ServiceConfig>, AdapterError> {
        let Some(index) = self.get(repository_key(repository)).await? else {
            return Ok(None);
        };
        let Some(name) = text(&index, "service") else {
            return Err(AdapterError::Other(format!(
                "the index entry of repository {repository} has no service; put the service again to repair it"
            )));
        };
        let found = self.service(name).await?;
        Ok(found.filter(|svc| {
            let current = svc.repository == repository;
            if !current {
                tracing::warn!(repository, service = %svc.service, "stale repository index entry");
            }
            current
        }))
    }

    async fn environment_config(
        &self,
        service: &str,
        environment: &str,
    ) -> Result<Option<EnvironmentConfig>, AdapterError> {
        self.get(environment_key(service, environment))
            .await?
            .map(|item| config_of(&format!("environment {service}/{environment}"), item))
            .transpose()
    }

    async fn environments_by_alarm(
        &self,
        alarm: &str,
    ) -> Result<Vec<(String, String)>, AdapterError> {
        let mut bound = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(alarm_pk(alarm)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e, TABLE_NOT_FOUND))?;
            for item in out.items.unwrap_or_default() {
                match (text(&item, "service"), text(&item, "environment")) {
                    (Some(svc), Some(env)) => bound.push((svc.to_string(), env.to_string())),
                    _ => {
                        return Err(AdapterError::Other(format!(
                            "an index entry of alarm {alarm} lacks its service or environment ({:?}); put that environment again to repair it",
                            text(&item, SK)
                        )));
                    }
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(bound)
    }
}

impl DynamoRegistry {
    async fn write_service(
        &self,
        service: &ServiceConfig,
        kept: Kept<'_>,
    ) -> Result<(), AdapterError> {
        service.validate().map_err(|e| AdapterError::Invalid(e.0))?;
        let name = service.service.as_str();
        let previous_item = self.get(service_key(name)).await?;
        let previous: Option<ServiceConfig> = previous_item
            .clone()
            .map(|item| config_of(&format!("service {name}"), item))
            .transpose()?;

        let mut item = to_item(&format!("service {name}"), service)?;
        item.extend(service_key(name));
        let kept_names = kept.names(&item, previous_item.as_ref());
        let kept_as = kept.source(&item, previous_item.as_ref());
        // Conditioned on what was read, so a concurrent update cannot leave an index entry
        // behind for a repository the service no longer has.
        // A caller who may not change the governed fields writes only while they are as read.
        let condition = match &previous {
            None => Condition::new("attribute_not_exists(#pk)", &[("#pk", PK)], vec![]),
            Some(p) => {
                let mut c = Condition::new(
                    "#repository = :repository",
                    &[("#repository", "repository")],
                    vec![(":repository", s(&p.repository))],
                );
                c.unchanged(kept_as, &kept_names);
                c
            }
        };
        let config = condition
            .apply(Put::builder().table_name(&self.table).set_item(Some(item)))
            .build()
            .map_err(build_error)?;

        let mut index = repository_key(&service.repository);
        index.insert("service".into(), s(name));
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(index))
            .condition_expression("attribute_not_exists(#pk) OR #service = :service")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#service", "service")
            .expression_attribute_values(":service", s(name))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;

        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(config).build())
            .transact_items(TransactWriteItem::builder().put(claim).build());
        let moved_from = previous
            .as_ref()
            .map(|p| p.repository.as_str())
            .filter(|old| *old != service.repository);
        if let Some(old) = moved_from {
            // A missing entry is nothing to release; one that names another service is not ours.
            let release = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(repository_key(old)))
                .condition_expression("attribute_not_exists(#pk) OR #service = :service")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#service", "service")
                .expression_attribute_values(":service", s(name))
                .build()
                .map_err(build_error)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(release).build());
        }

        let Err(e) = tx.send().await else {
            return Ok(());
        };
        let reasons = cancellation(e)?;
        if let Some(r) = refused(&reasons, 1) {
            let owner = r
                .item()
                .and_then(|i| text(i, "service"))
                .unwrap_or("another service");
            return Err(AdapterError::ConditionFailed(format!(
                "repository {} already releases service {owner}; register {owner} with another repository first, or use another repository for {name}",
                service.repository
            )));
        }
        if refused(&reasons, 0).is_some() {
            return Err(AdapterError::Transient(format!(
                "service {name} was changed by another request while being saved; retry"
            )));
        }
        if let (Some(_), Some(old)) = (refused(&reasons, 2), moved_from) {
            return Err(AdapterError::ConditionFailed(format!(
                "the index entry of repository {old} names another service than {name}; inspect item pk=REPO#{old} in table {}",
                self.table
            )));
        }
        Err(Self::cancelled(&format!("service {name}"), &reasons))
    }

    async fn write_environment(
        &self,
        env: &EnvironmentConfig,
        kept: Kept<'_>,
    ) -> Result<(), AdapterError> {
        env.validate().map_err(|e| AdapterError::Invalid(e.0))?;
        let (service, environment) = (env.service.as_str(), env.environment.as_str());
        let what = format!("environment {service}/{environment}");
        let previous = self.get(environment_key(service, environment)).await?;
        let previous_alarms = previous.as_ref().and_then(|i| i.get("alarms").cloned());
        let previous_item = previous.clone();
        let previous: Option<EnvironmentConfig> =
            previous.map(|item| config_of(&what, item)).transpose()?;

        let bound: BTreeSet<&str> = env.alarms.iter().map(String::as_str).collect();
        let unbound: Vec<&str> = previous
            .iter()
            .flat_map(|p| p.alarms.iter().map(String::as_str))
            .filter(|a| !bound.contains(a))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let writes = 1 + bound.len() + unbound.len();
        if writes > MAX_TRANSACTION_ITEMS {
            return Err(AdapterError::Invalid(format!(
                "{what}: binding {} alarms and unbinding {} takes {writes} writes, more than the {MAX_TRANSACTION_ITEMS} of one transaction; unbind the old alarms in a separate update first",
                bound.len(),
                unbound.len()
            )));
        }

        let mut item = to_item(&what, env)?;
        item.extend(environment_key(service, environment));
        let kept_names = kept.names(&item, previous_item.as_ref());
        let kept_as = kept.source(&item, previous_item.as_ref());
        // Conditioned on the alarms that were read, so a concurrent update cannot leave alarm
        // index entries behind for alarms the environment no longer has.
        // A caller who may not change the governed fields writes only while they are as read.
        let condition = match (&previous, previous_alarms) {
            (None, _) => Condition::new("attribute_not_exists(#pk)", &[("#pk", PK)], vec![]),
            (Some(_), Some(alarms)) => {
                let mut c = Condition::new(
                    "#alarms = :alarms",
                    &[("#alarms", "alarms")],
                    vec![(":alarms", alarms)],
                );
                c.unchanged(kept_as, &kept_names);
                c
            }
            (Some(_), None) => {
                let mut c = Condition::new(
                    "attribute_exists(#pk) AND attribute_not_exists(#alarms)",
                    &[("#pk", PK), ("#alarms", "alarms")],
                    vec![],
                );
                c.unchanged(kept_as, &kept_names);
                c
            }
        };
        let config = condition
            .apply(Put::builder().table_name(&self.table).set_item(Some(item)))
            .build()
            .map_err(build_error)?;

        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(config).build());
        for alarm in &bound {
            let mut entry = alarm_key(alarm, service, environment);
            entry.insert("service".into(), s(service));
            entry.insert("environment".into(), s(environment));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(entry))
                .build()
                .map_err(build_error)?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        for alarm in &unbound {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(alarm_key(alarm, service, environment)))
                .build()
                .map_err(build_error)?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }

        let Err(e) = tx.send().await else {
            return Ok(());
        };
        let reasons = cancellation(e)?;
        if refused(&reasons, 0).is_some() {
            return Err(AdapterError::Transient(format!(
                "{what} was changed by another request while being saved; retry"
            )));
        }
        Err(Self::cancelled(&what, &reasons))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use crate::adapters::dynamodb::tests::{
        TABLE, cancelled, names_of, recorder, s_attr, str_attr, values_of,
    };
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use std::collections::HashMap;

    fn registry(rules: &[&Rule]) -> DynamoRegistry {
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        DynamoRegistry::new(client, TABLE)
    }

    fn checkout(repository: &str) -> ServiceConfig {
        ServiceConfig {
            service: crate::fakes::sample::id("checkout"),
            repository: repository.into(),
            release_pattern: crate::registry::DEFAULT_RELEASE_PATTERN.into(),
            auto_deploy: vec![crate::fakes::sample::id("dev")],
            promotion: Default::default(),
            accounts: Vec::new(),
            evidence_recorders: Default::default(),
            github_logins: Default::default(),
        }
    }

    fn dev(alarms: &[&str]) -> EnvironmentConfig {
        let mut v = crate::fakes::sample::request();
        let o = v.as_object_mut().unwrap();
        for k in ["version", "image", "deployer"] {
            o.remove(k);
        }
        let mut env: EnvironmentConfig = serde_json::from_value(v).unwrap();
        env.alarms = alarms.iter().map(|a| a.to_string()).collect();
        env
    }

    fn stored_service(svc: &ServiceConfig) -> Item {
        let mut item = to_item("service", svc).unwrap();
        item.extend(service_key(&svc.service));
        item
    }

    fn stored_env(env: &EnvironmentConfig) -> Item {
        let mut item = to_item("environment", env).unwrap();
        item.extend(environment_key(&env.service, &env.environment));
        item
    }

    /// A consistent GetItem of exactly `pk`/`sk` that returns `item`.
    fn get(pk: &'static str, sk: &'static str, item: Option<Item>) -> Rule {
        mock!(Client::get_item)
            .match_requests(move |r: &GetItemInput| {
                r.consistent_read() == Some(true)
                    && r.table_name() == Some(TABLE)
                    && r.key() == Some(&key(pk.to_string(), sk))
            })
            .then_output(move || GetItemOutput::builder().set_item(item.clone()).build())
    }

    fn transact_ok(sink: crate::adapters::dynamodb::tests::Seen<TransactWriteItemsInput>) -> Rule {
        mock!(Client::transact_write_items).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            TransactWriteItemsOutput::builder().build()
        })
    }

    #[tokio::test]
    async fn a_new_service_is_written_with_its_repository_claimed_in_one_transaction() {
        // GIVEN
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let r = registry(&[&get("SERVICE#checkout", "CONFIG", None), &transact_ok(sink)]);

        // WHEN
        r.put_service(&checkout("team/checkout")).await.unwrap();

        // THEN
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 2);

        let config = items[0].put().expect("first the service item");
        assert_eq!(config.table_name(), TABLE);
        assert_eq!(str_attr(config.item(), "pk"), "SERVICE#checkout");
        assert_eq!(str_attr(config.item(), "sk"), "CONFIG");
        assert_eq!(str_attr(config.item(), "repository"), "team/checkout");
        assert_eq!(
            config.condition_expression(),
            Some("attribute_not_exists(#pk)")
        );
        assert_eq!(
            config_of::<ServiceConfig>("service", config.item().clone()),
            Ok(checkout("team/checkout"))
        );

        let claim = items[1].put().expect("then the repository index entry");
        assert_eq!(
            claim.item(),
            &HashMap::from([
                ("pk".to_string(), s_attr("REPO#team/checkout")),
                ("sk".to_string(), s_attr("SERVICE")),
                ("service".to_string(), s_attr("checkout")),
            ])
        );
        assert_eq!(
            claim.condition_expression(),
            Some("attribute_not_exists(#pk) OR #service = :service")
        );
        let names = names_of(claim.expression_attribute_names());
        assert_eq!(
            (names["#pk"].as_str(), names["#service"].as_str()),
            ("pk", "service")
        );
        assert_eq!(
            values_of(claim.expression_attribute_values())[":service"],
            "checkout"
        );
        assert_eq!(
            claim.return_values_on_condition_check_failure(),
            Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        );
    }

    #[tokio::test]
    async fn moving_a_service_to_another_repository_releases_the_old_one() {
        // GIVEN checkout is released from team/checkout-old
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let old = stored_service(&checkout("team/checkout-old"));
        let r = registry(&[
            &get("SERVICE#checkout", "CONFIG", Some(old)),
            &transact_ok(sink),
        ]);

        // WHEN
        r.put_service(&checkout("team/checkout")).await.unwrap();

        // THEN
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 3);
        let config = items[0].put().unwrap();
        assert_eq!(
            config.condition_expression(),
            Some("#repository = :repository")
        );
        assert_eq!(
            values_of(config.expression_attribute_values())[":repository"],
            "team/checkout-old"
        );
        assert_eq!(
            str_attr(items[1].put().unwrap().item(), "pk"),
            "REPO#team/checkout"
        );
        let release = items[2]
            .delete()
            .expect("last the old index entry's delete");
        assert_eq!(
            release.key(),
            &HashMap::from([
                ("pk".to_string(), s_attr("REPO#team/checkout-old")),
                ("sk".to_string(), s_attr("SERVICE")),
            ])
        );
        assert_eq!(
            release.condition_expression(),
            Some("attribute_not_exists(#pk) OR #service = :service")
        );
        assert_eq!(
            values_of(release.expression_attribute_values())[":service"],
            "checkout"
        );
    }

    #[tokio::test]
    async fn re_putting_a_service_with_the_same_repository_releases_nothing() {
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let old = stored_service(&checkout("team/checkout"));
        let r = registry(&[
            &get("SERVICE#checkout", "CONFIG", Some(old)),
            &transact_ok(sink),
        ]);
        r.put_service(&checkout("team/checkout")).await.unwrap();
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| i.delete().is_none()));
    }

    #[tokio::test]
    async fn a_repository_that_releases_another_service_is_refused_naming_it() {
        // GIVEN team/checkout's index entry names billing
        let tx = mock!(Client::transact_write_items).then_error(|| {
            let owner = CancellationReason::builder()
                .code("ConditionalCheckFailed")
                .item("pk", s_attr("REPO#team/checkout"))
                .item("sk", s_attr("SERVICE"))
                .item("service", s_attr("billing"))
                .build();
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .cancellation_reasons(CancellationReason::builder().code("None").build())
                    .cancellation_reasons(owner)
                    .build(),
            )
        });
        let r = registry(&[&get("SERVICE#checkout", "CONFIG", None), &tx]);

        // WHEN
        let err = r.put_service(&checkout("team/checkout")).await;

        // THEN
        assert!(
            matches!(&err, Err(AdapterError::ConditionFailed(m))
                if m.starts_with("repository team/checkout already releases service billing")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_service_changed_while_being_saved_asks_for_a_retry() {
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
        let r = registry(&[&get("SERVICE#checkout", "CONFIG", None), &tx]);
        let err = r.put_service(&checkout("team/checkout")).await;
        assert!(matches!(err, Err(AdapterError::Transient(_))), "{err:?}");

        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["TransactionConflict", "None"]));
        let r = registry(&[&get("SERVICE#checkout", "CONFIG", None), &tx]);
        let err = r.put_service(&checkout("team/checkout")).await;
        assert!(matches!(err, Err(AdapterError::Transient(_))), "{err:?}");
    }

    #[tokio::test]
    async fn an_invalid_service_is_refused_before_any_request() {
        let r = registry(&[]);
        let err = r.put_service(&checkout("Team/Checkout")).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("repository")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn services_are_read_consistently_by_name_and_by_repository() {
        let stored = stored_service(&checkout("team/checkout"));
        let index = HashMap::from([
            ("pk".to_string(), s_attr("REPO#team/checkout")),
            ("sk".to_string(), s_attr("SERVICE")),
            ("service".to_string(), s_attr("checkout")),
        ]);
        let r = registry(&[
            &get("SERVICE#checkout", "CONFIG", Some(stored.clone())),
            &get("REPO#team/checkout", "SERVICE", Some(index)),
            &get("SERVICE#checkout", "CONFIG", Some(stored)),
            &get("REPO#team/unknown", "SERVICE", None),
            &get("SERVICE#billing", "CONFIG", None),
        ]);
        assert_eq!(
            r.service("checkout").await,
            Ok(Some(checkout("team/checkout")))
        );
        assert_eq!(
            r.service_by_repository("team/checkout").await,
            Ok(Some(checkout("team/checkout")))
        );
        assert_eq!(r.service_by_repository("team/unknown").await, Ok(None));
        assert_eq!(r.service("billing").await, Ok(None));
    }

    #[tokio::test]
    async fn a_stale_repository_index_entry_finds_no_service() {
        let index = HashMap::from([
            ("pk".to_string(), s_attr("REPO#team/old")),
            ("sk".to_string(), s_attr("SERVICE")),
            ("service".to_string(), s_attr("checkout")),
        ]);
        let r = registry(&[
            &get("REPO#team/old", "SERVICE", Some(index)),
            &get(
                "SERVICE#checkout",
                "CONFIG",
                Some(stored_service(&checkout("team/checkout"))),
            ),
        ]);
        assert_eq!(r.service_by_repository("team/old").await, Ok(None));
    }

    #[tokio::test]
    async fn putting_an_environment_indexes_its_alarms_and_unindexes_dropped_ones() {
        // GIVEN dev was bound to a and b; now to b and c
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let old = stored_env(&dev(&["a", "b"]));
        let r = registry(&[
            &get("SERVICE#checkout", "ENV#dev", Some(old)),
            &transact_ok(sink),
        ]);

        // WHEN
        r.put_environment(&dev(&["b", "c", "c"])).await.unwrap();

        // THEN
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 4, "the config, b, c once, and a's delete");

        let config = items[0].put().expect("first the environment item");
        assert_eq!(str_attr(config.item(), "pk"), "SERVICE#checkout");
        assert_eq!(str_attr(config.item(), "sk"), "ENV#dev");
        assert_eq!(config.condition_expression(), Some("#alarms = :alarms"));
        assert_eq!(
            names_of(config.expression_attribute_names())["#alarms"],
            "alarms"
        );
        assert_eq!(
            config.expression_attribute_values().unwrap()[":alarms"],
            AttributeValue::L(vec![s_attr("a"), s_attr("b")])
        );
        assert_eq!(
            config_of::<EnvironmentConfig>("environment", config.item().clone()),
            Ok(dev(&["b", "c", "c"]))
        );

        for (item, alarm) in items[1..3].iter().zip(["b", "c"]) {
            let put = item.put().expect("an alarm index Put");
            assert_eq!(
                put.item(),
                &HashMap::from([
                    ("pk".to_string(), s_attr(&format!("ALARM#{alarm}"))),
                    ("sk".to_string(), s_attr("checkout#dev")),
                    ("service".to_string(), s_attr("checkout")),
                    ("environment".to_string(), s_attr("dev")),
                ])
            );
            assert_eq!(put.condition_expression(), None);
        }
        let delete = items[3].delete().expect("a's index entry is deleted");
        assert_eq!(
            delete.key(),
            &HashMap::from([
                ("pk".to_string(), s_attr("ALARM#a")),
                ("sk".to_string(), s_attr("checkout#dev")),
            ])
        );
    }

    #[tokio::test]
    async fn a_write_keeping_the_policy_holds_only_while_protection_and_approval_are_as_read() {
        // GIVEN dev is stored with an approval policy and no explicit protection
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let approval = crate::domain::ApprovalPolicy {
            required: true,
            timeout_seconds: 3600,
        };
        let stored = EnvironmentConfig {
            approval: Some(approval.clone()),
            ..dev(&["a"])
        };
        let r = registry(&[
            &get("SERVICE#checkout", "ENV#dev", Some(stored_env(&stored))),
            &transact_ok(sink),
        ]);

        // WHEN a team's update (same policy, other steps) is written
        r.put_environment_keeping_policy(&stored).await.unwrap();

        // THEN the write holds only while protected is still absent and approval as written
        let seen = seen.lock().unwrap();
        let config = seen[0].transact_items()[0]
            .put()
            .expect("the environment item");
        assert_eq!(
            config.condition_expression(),
            Some("#alarms = :alarms AND attribute_not_exists(#kept0) AND #kept1 = :kept1")
        );
        let names = names_of(config.expression_attribute_names());
        assert_eq!(
            (names["#kept0"].as_str(), names["#kept1"].as_str()),
            ("protected", "approval")
        );
        assert_eq!(
            config.expression_attribute_values().unwrap()[":kept1"],
            to_item("approval", &serde_json::json!({"approval": approval})).unwrap()["approval"]
        );
    }

    #[tokio::test]
    async fn an_administrators_policy_write_holds_only_while_everything_else_is_as_read() {
        // GIVEN dev as stored
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let stored = dev(&["a"]);
        let stored_item = stored_env(&stored);
        let r = registry(&[
            &get("SERVICE#checkout", "ENV#dev", Some(stored_item.clone())),
            &transact_ok(sink),
        ]);

        // WHEN an administrator protects it
        let protected = EnvironmentConfig {
            protected: Some(true),
            ..stored
        };
        r.put_environment_policy(&protected).await.unwrap();

        // THEN the write holds only while every other field is as read (a team's concurrent
        // change of the wiring is not overwritten), whatever the governed fields hold
        let seen = seen.lock().unwrap();
        let config = seen[0].transact_items()[0]
            .put()
            .expect("the environment item");
        let names = names_of(config.expression_attribute_names());
        let values = config.expression_attribute_values().unwrap();
        let kept: BTreeSet<&str> = names
            .iter()
            .filter(|(k, _)| k.starts_with("#kept"))
            .map(|(_, v)| v.as_str())
            .collect();
        let expected: BTreeSet<&str> = stored_item
            .keys()
            .map(String::as_str)
            .filter(|k| !["pk", "sk", "protected", "approval"].contains(k))
            .collect();
        assert_eq!(kept, expected);
        for (k, field) in names.iter().filter(|(k, _)| k.starts_with("#kept")) {
            let value = k.replacen('#', ":", 1);
            assert_eq!(values.get(&value), stored_item.get(field), "{field}");
        }
        assert_eq!(str_attr(config.item(), "pk"), "SERVICE#checkout");
        assert_eq!(
            config.item().get("protected"),
            Some(&AttributeValue::Bool(true))
        );
    }

    #[tokio::test]
    async fn a_new_environment_must_not_exist_yet() {
        let (seen, sink) = recorder::<TransactWriteItemsInput>();
        let r = registry(&[
            &get("SERVICE#checkout", "ENV#dev", None),
            &transact_ok(sink),
        ]);
        r.put_environment(&dev(&["a"])).await.unwrap();
        let seen = seen.lock().unwrap();
        let items = seen[0].transact_items();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].put().unwrap().condition_expression(),
            Some("attribute_not_exists(#pk)")
        );
        assert!(items.iter().all(|i| i.delete().is_none()));
    }

    #[tokio::test]
    async fn an_environment_changed_while_being_saved_asks_for_a_retry() {
        let tx = mock!(Client::transact_write_items)
            .then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
        let r = registry(&[&get("SERVICE#checkout", "ENV#dev", None), &tx]);
        let err = r.put_environment(&dev(&["a"])).await;
        assert!(matches!(err, Err(AdapterError::Transient(_))), "{err:?}");
    }

    #[tokio::test]
    async fn an_update_over_one_transaction_is_refused_before_writing() {
        // GIVEN 60 alarms replaced by 60 others: 1 + 60 + 60 writes
        let old: Vec<String> = (0..60).map(|i| format!("old-{i}")).collect();
        let new: Vec<String> = (0..60).map(|i| format!("new-{i}")).collect();
        let old = dev(&old.iter().map(String::as_str).collect::<Vec<_>>());
        let new = dev(&new.iter().map(String::as_str).collect::<Vec<_>>());
        let r = registry(&[&get("SERVICE#checkout", "ENV#dev", Some(stored_env(&old)))]);
        let err = r.put_environment(&new).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("121 writes")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn environment_configs_are_read_consistently() {
        let r = registry(&[
            &get(
                "SERVICE#checkout",
                "ENV#dev",
                Some(stored_env(&dev(&["a"]))),
            ),
            &get("SERVICE#checkout", "ENV#prd", None),
        ]);
        assert_eq!(
            r.environment_config("checkout", "dev").await,
            Ok(Some(dev(&["a"])))
        );
        assert_eq!(r.environment_config("checkout", "prd").await, Ok(None));
    }

    #[tokio::test]
    async fn environments_by_alarm_query_the_alarm_partition_across_pages() {
        // GIVEN two pages of index entries
        let (seen, sink) = recorder::<QueryInput>();
        let entry = |svc: &str, env: &str| {
            let mut e = alarm_key("shared-5xx", svc, env);
            e.insert("service".into(), s_attr(svc));
            e.insert("environment".into(), s_attr(env));
            e
        };
        let pages = [entry("checkout", "dev"), entry("billing", "prd")];
        let rule = mock!(Client::query).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            let first = req.exclusive_start_key().is_none();
            let page = &pages[usize::from(!first)];
            QueryOutput::builder()
                .items(page.clone())
                .set_last_evaluated_key(first.then(|| alarm_key("shared-5xx", "checkout", "dev")))
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);

        // WHEN
        let got = DynamoRegistry::new(client, TABLE)
            .environments_by_alarm("shared-5xx")
            .await;

        // THEN
        assert_eq!(
            got,
            Ok(vec![
                ("checkout".to_string(), "dev".to_string()),
                ("billing".to_string(), "prd".to_string()),
            ])
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let req = &seen[0];
        assert_eq!(req.table_name(), Some(TABLE));
        assert_eq!(req.index_name(), None);
        assert_eq!(req.key_condition_expression(), Some("#pk = :pk"));
        assert_eq!(names_of(req.expression_attribute_names())["#pk"], "pk");
        assert_eq!(
            values_of(req.expression_attribute_values())[":pk"],
            "ALARM#shared-5xx"
        );
        assert_eq!(req.consistent_read(), Some(true));
        assert_eq!(
            seen[1].exclusive_start_key(),
            Some(&alarm_key("shared-5xx", "checkout", "dev"))
        );
    }
}
