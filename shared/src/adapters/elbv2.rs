//! ALB adapter: reads and writes the weighted forward action of a listener or rule, and reports
//! target health of a target group.

use super::map_sdk_error;
use crate::domain::{LoadBalancerTarget, TargetGroupArn, TrafficSplit};
use crate::error::AdapterError;
use crate::ports::{ForwardTarget, TargetHealth, TargetHealthReport, TargetState, TrafficRouter};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple, TargetHealthStateEnum,
};

const LISTENER_NOT_FOUND: &[&str] = &["ListenerNotFound"];
const RULE_NOT_FOUND: &[&str] = &["RuleNotFound"];
const TARGET_GROUP_NOT_FOUND: &[&str] = &["TargetGroupNotFound"];

/// Routes traffic between blue and green by the weights of one ALB forward action.
#[derive(Debug, Clone)]
pub struct AlbRouter {
    client: Client,
}

impl AlbRouter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The actions of the listener's default rule or of the listener rule.
    async fn actions(&self, target: &LoadBalancerTarget) -> Result<Vec<Action>, AdapterError> {
        match target {
            LoadBalancerTarget::Listener(arn) => {
                let out = self
                    .client
                    .describe_listeners()
                    .listener_arns(arn)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("DescribeListeners", e, LISTENER_NOT_FOUND))?;
                let listener = out
                    .listeners()
                    .iter()
                    .find(|l| l.listener_arn() == Some(arn.as_str()))
                    .or_else(|| out.listeners().first())
                    .ok_or_else(|| {
                        AdapterError::NotFound(format!(
                            "listener {arn} does not exist; check the configured listener ARN"
                        ))
                    })?;
                Ok(listener.default_actions().to_vec())
            }
            LoadBalancerTarget::Rule(arn) => {
                let out = self
                    .client
                    .describe_rules()
                    .rule_arns(arn)
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("DescribeRules", e, RULE_NOT_FOUND))?;
                let rule = out
                    .rules()
                    .iter()
                    .find(|r| r.rule_arn() == Some(arn.as_str()))
                    .or_else(|| out.rules().first())
                    .ok_or_else(|| {
                        AdapterError::NotFound(format!(
                            "listener rule {arn} does not exist; check the configured rule ARN"
                        ))
                    })?;
                Ok(rule.actions().to_vec())
            }
        }
    }
}

fn describe(target: &LoadBalancerTarget) -> String {
    match target {
        LoadBalancerTarget::Listener(arn) => format!("listener {arn}"),
        LoadBalancerTarget::Rule(arn) => format!("listener rule {arn}"),
    }
}

/// The forward action among `actions` and the weights it gives blue and green. Refuses an
/// action that forwards to any other target group or to neither of them.
fn forward_weights(
    fwd: &ForwardTarget,
    actions: &[Action],
) -> Result<(usize, i64, i64), AdapterError> {
    let what = describe(&fwd.target);
    let (index, action) = actions
        .iter()
        .enumerate()
        .find(|(_, a)| a.r#type() == Some(&ActionTypeEnum::Forward))
        .ok_or_else(|| {
            AdapterError::Invalid(format!(
                "{what} has no forward action; make it forward to the blue ({}) and green ({}) target groups",
                fwd.blue, fwd.green
            ))
        })?;

    // (target group, weight) pairs. A forward to a single group (legacy TargetGroupArn, or a
    // ForwardConfig with one group) sends it all traffic whatever its weight says.
    let groups: Vec<(&str, Option<i32>)> = match action.forward_config() {
        Some(cfg) if !cfg.target_groups().is_empty() => cfg
            .target_groups()
            .iter()
            .map(|t| (t.target_group_arn().unwrap_or_default(), t.weight()))
            .collect(),
        _ => action
            .target_group_arn()
            .map(|arn| vec![(arn, Some(100))])
            .unwrap_or_default(),
    };
    let single = groups.len() == 1;

    let (mut blue, mut green, mut seen) = (0i64, 0i64, false);
    for (arn, weight) in groups {
        let weight = if single {
            100
        } else {
            i64::from(weight.ok_or_else(|| {
                AdapterError::Invalid(format!(
                    "{what} forwards to target group {arn} without a weight; set explicit weights on both target groups"
                ))
            })?)
        };
        if arn == fwd.blue.as_str() {
            blue += weight;
        } else if arn == fwd.green.as_str() {
            green += weight;
        } else {
            return Err(AdapterError::Invalid(format!(
                "{what} forwards to target group {arn}, which is neither blue ({}) nor green ({}); remove it from the forward action or fix the configured target groups",
                fwd.blue, fwd.green
            )));
        }
        seen = true;
    }
    if !seen {
        return Err(AdapterError::Invalid(format!(
            "{what} forwards to neither blue ({}) nor green ({}); make its forward action point at both target groups",
            fwd.blue, fwd.green
        )));
    }
    Ok((index, blue, green))
}

fn split_of(fwd: &ForwardTarget, actions: &[Action]) -> Result<TrafficSplit, AdapterError> {
    let (_, blue, green) = forward_weights(fwd, actions)?;
    TrafficSplit::new(blue, green).map_err(|e| {
        AdapterError::Invalid(format!(
            "{} has weights blue {blue} / green {green}, which the controller cannot use ({e}); set them to percentages that add up to 100",
            describe(&fwd.target)
        ))
    })
}

/// The forward action carrying both groups with the split's weights, keeping the order and the
/// stickiness of the action it replaces.
fn weighted_forward(fwd: &ForwardTarget, split: TrafficSplit, old: &Action) -> Action {
    let tuple = |tg: &TargetGroupArn, weight: u16| {
        TargetGroupTuple::builder()
            .target_group_arn(tg.as_str())
            .weight(i32::from(weight))
            .build()
    };
    let stickiness = old
        .forward_config()
        .and_then(|c| c.target_group_stickiness_config())
        .cloned();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .set_order(old.order())
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(&fwd.blue, split.blue()))
                .target_groups(tuple(&fwd.green, split.green()))
                .set_target_group_stickiness_config(stickiness)
                .build(),
        )
        .build()
}

/// Other actions are written back as read. Describe never returns an OIDC client secret, so
/// the write must ask ELB to keep the existing one.
fn as_written(mut action: Action) -> Action {
    if let Some(cfg) = action.authenticate_oidc_config.as_mut()
        && cfg.client_secret.is_none()
    {
        cfg.use_existing_client_secret = Some(true);
    }
    action
}

#[async_trait]
impl TrafficRouter for AlbRouter {
    async fn current_split(&self, fwd: &ForwardTarget) -> Result<TrafficSplit, AdapterError> {
        let actions = self.actions(&fwd.target).await?;
        split_of(fwd, &actions)
    }

    async fn set_split(
        &self,
        fwd: &ForwardTarget,
        split: TrafficSplit,
    ) -> Result<(), AdapterError> {
        let actions = self.actions(&fwd.target).await?;
        let (index, _, _) = forward_weights(fwd, &actions)?;
        let new_actions: Vec<Action> = actions
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                if i == index {
                    weighted_forward(fwd, split, &a)
                } else {
                    as_written(a)
                }
            })
            .collect();

        match &fwd.target {
            LoadBalancerTarget::Listener(arn) => {
                self.client
                    .modify_listener()
                    .listener_arn(arn)
                    .set_default_actions(Some(new_actions))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("ModifyListener", e, LISTENER_NOT_FOUND))?;
            }
            LoadBalancerTarget::Rule(arn) => {
                self.client
                    .modify_rule()
                    .rule_arn(arn)
                    .set_actions(Some(new_actions))
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("ModifyRule", e, RULE_NOT_FOUND))?;
            }
        }

        let read_back = self.current_split(fwd).await?;
        if read_back != split {
            return Err(AdapterError::Other(format!(
                "{} reads back {read_back}, expected {split}; something else may be changing it, check the listener and retry",
                describe(&fwd.target)
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl TargetHealth for AlbRouter {
    async fn target_health(&self, tg: &TargetGroupArn) -> Result<TargetHealthReport, AdapterError> {
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(tg.as_str())
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeTargetHealth", e, TARGET_GROUP_NOT_FOUND))?;
        let mut report = TargetHealthReport::default();
        for d in out.target_health_descriptions() {
            report.registered += 1;
            let health = d.target_health();
            let state = health.and_then(|h| h.state());
            report.targets.push(TargetState {
                id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or("unknown target")
                    .to_string(),
                port: d.target().and_then(|t| t.port()),
                state: state.map_or("unknown", |s| s.as_str()).to_string(),
                reason: health
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string()),
                description: health.and_then(|h| h.description()).map(str::to_string),
            });
            if state == Some(&TargetHealthStateEnum::Healthy) {
                report.healthy += 1;
                continue;
            }
            let target = d.target();
            let id = target.and_then(|t| t.id()).unwrap_or("unknown target");
            let mut line = match target.and_then(|t| t.port()) {
                Some(port) => format!("{id}:{port}"),
                None => id.to_string(),
            };
            line.push(' ');
            line.push_str(state.map_or("unknown", |s| s.as_str()));
            let reason = health.and_then(|h| h.reason()).map(|r| r.as_str());
            let description = health.and_then(|h| h.description());
            match (reason, description) {
                (Some(r), Some(d)) => line.push_str(&format!(" ({r}: {d})")),
                (Some(x), None) | (None, Some(x)) => line.push_str(&format!(" ({x})")),
                (None, None) => {}
            }
            report.problems.push(line);
        }
        Ok(report)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
    use aws_sdk_elasticloadbalancingv2::error::ErrorMetadata;
    use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::{
        DescribeListenersError, DescribeListenersOutput,
    };
    use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;
    use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::{
        DescribeTargetHealthError, DescribeTargetHealthOutput,
    };
    use aws_sdk_elasticloadbalancingv2::operation::modify_listener::{
        ModifyListenerInput, ModifyListenerOutput,
    };
    use aws_sdk_elasticloadbalancingv2::operation::modify_rule::{
        ModifyRuleInput, ModifyRuleOutput,
    };
    use aws_sdk_elasticloadbalancingv2::types::error::TargetGroupNotFoundException;
    use aws_sdk_elasticloadbalancingv2::types::{
        Listener, Rule, TargetDescription, TargetGroupStickinessConfig, TargetHealth as Health,
        TargetHealthDescription, TargetHealthReasonEnum,
    };
    use aws_smithy_mocks::{Rule as MockRule, RuleMode, mock, mock_client};
    use std::sync::{Arc, Mutex};

    const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/bg-checkout-dev/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
    const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-blue/1111111111111111";
    const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-green/2222222222222222";
    const OTHER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/someone-else/3333333333333333";

    fn tg(arn: &str) -> TargetGroupArn {
        TargetGroupArn::parse(arn).unwrap()
    }

    fn fwd_listener() -> ForwardTarget {
        ForwardTarget {
            target: LoadBalancerTarget::listener(LISTENER).unwrap(),
            blue: tg(BLUE),
            green: tg(GREEN),
        }
    }

    fn fwd_rule() -> ForwardTarget {
        ForwardTarget {
            target: LoadBalancerTarget::rule(RULE).unwrap(),
            blue: tg(BLUE),
            green: tg(GREEN),
        }
    }

    fn router(rules: &[&MockRule]) -> AlbRouter {
        let client = mock_client!(
            aws_sdk_elasticloadbalancingv2,
            RuleMode::Sequential,
            rules,
            |c| c.retry_config(RetryConfig::disabled())
        );
        AlbRouter::new(client)
    }

    fn forward(groups: &[(&str, i32)]) -> Action {
        let mut cfg = ForwardActionConfig::builder();
        for (arn, w) in groups {
            cfg = cfg.target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(*arn)
                    .weight(*w)
                    .build(),
            );
        }
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(cfg.build())
            .build()
    }

    fn listener_with(action: Action) -> MockRule {
        mock!(Client::describe_listeners)
            .match_requests(|r| r.listener_arns() == [LISTENER.to_string()])
            .then_output(move || {
                DescribeListenersOutput::builder()
                    .listeners(
                        Listener::builder()
                            .listener_arn(LISTENER)
                            .default_actions(action.clone())
                            .build(),
                    )
                    .build()
            })
    }

    fn split(blue: i64, green: i64) -> TrafficSplit {
        TrafficSplit::new(blue, green).unwrap()
    }

    /// (target group, weight) pairs of every forward action in `actions`.
    fn forwards(actions: &[Action]) -> Vec<Vec<(String, Option<i32>)>> {
        actions
            .iter()
            .filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .map(|a| {
                a.forward_config()
                    .map(|c| {
                        c.target_groups()
                            .iter()
                            .map(|t| (t.target_group_arn().unwrap().to_string(), t.weight()))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    #[tokio::test]
    async fn current_split_reads_weights_of_both_groups_from_the_listener() {
        let r = router(&[&listener_with(forward(&[(BLUE, 75), (GREEN, 25)]))]);
        assert_eq!(r.current_split(&fwd_listener()).await, Ok(split(75, 25)));
    }

    #[tokio::test]
    async fn a_group_missing_from_the_forward_config_has_weight_zero() {
        let r = router(&[&listener_with(forward(&[(BLUE, 1)]))]);
        assert_eq!(r.current_split(&fwd_listener()).await, Ok(split(100, 0)));
    }

    #[tokio::test]
    async fn legacy_single_target_group_arn_means_all_traffic_on_it() {
        let legacy = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(GREEN)
            .build();
        let r = router(&[&listener_with(legacy)]);
        assert_eq!(r.current_split(&fwd_listener()).await, Ok(split(0, 100)));
    }

    #[tokio::test]
    async fn a_listener_forwarding_to_a_third_group_is_refused() {
        let r = router(&[&listener_with(forward(&[(BLUE, 50), (OTHER, 50)]))]);
        let err = r.current_split(&fwd_listener()).await.unwrap_err();
        let AdapterError::Invalid(msg) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        assert!(msg.contains(OTHER) && msg.contains("neither blue"), "{msg}");
    }

    #[tokio::test]
    async fn set_split_refuses_to_overwrite_a_third_group() {
        // GIVEN a listener forwarding to a group that is not ours
        let describe = listener_with(forward(&[(BLUE, 50), (OTHER, 50)]));
        let modify =
            mock!(Client::modify_listener).then_output(|| ModifyListenerOutput::builder().build());
        let r = router(&[&describe, &modify]);
        // WHEN we try to set weights THEN nothing is written
        let err = r.set_split(&fwd_listener(), split(50, 50)).await;
        assert!(matches!(err, Err(AdapterError::Invalid(_))), "{err:?}");
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn weights_that_do_not_add_up_to_100_are_invalid_and_named() {
        let r = router(&[&listener_with(forward(&[(BLUE, 1), (GREEN, 1)]))]);
        let err = r.current_split(&fwd_listener()).await.unwrap_err();
        let AdapterError::Invalid(msg) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        assert!(msg.contains("blue 1 / green 1"), "{msg}");
    }

    #[tokio::test]
    async fn a_listener_without_forward_action_is_invalid() {
        let fixed = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .build();
        let r = router(&[&listener_with(fixed)]);
        let err = r.current_split(&fwd_listener()).await;
        assert!(
            matches!(&err, Err(AdapterError::Invalid(m)) if m.contains("no forward action")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn set_split_writes_both_groups_in_one_forward_action_then_reads_back() {
        // GIVEN a listener at 100/0 with stickiness
        let sticky = TargetGroupStickinessConfig::builder()
            .enabled(true)
            .duration_seconds(300)
            .build();
        let mut before = forward(&[(BLUE, 100), (GREEN, 0)]);
        before.forward_config = before.forward_config.map(|mut c| {
            c.target_group_stickiness_config = Some(sticky.clone());
            c
        });
        let written: Arc<Mutex<Vec<ModifyListenerInput>>> = Arc::default();
        let sink = written.clone();
        let modify = mock!(Client::modify_listener).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            ModifyListenerOutput::builder().build()
        });
        let read_back = listener_with(forward(&[(BLUE, 75), (GREEN, 25)]));
        let r = router(&[&listener_with(before), &modify, &read_back]);

        // WHEN
        r.set_split(&fwd_listener(), split(75, 25)).await.unwrap();

        // THEN exactly one ModifyListener with one forward action carrying both groups
        let written = written.lock().unwrap();
        assert_eq!(written.len(), 1);
        let req = &written[0];
        assert_eq!(req.listener_arn(), Some(LISTENER));
        let actions = req.default_actions();
        assert_eq!(
            forwards(actions),
            vec![vec![
                (BLUE.to_string(), Some(75)),
                (GREEN.to_string(), Some(25))
            ]]
        );
        assert_eq!(
            actions[0]
                .forward_config()
                .and_then(|c| c.target_group_stickiness_config()),
            Some(&sticky)
        );
        assert_eq!(actions[0].target_group_arn(), None);
        // AND the weights were read back
        assert_eq!(read_back.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_read_back_mismatch_is_an_error_naming_both_splits() {
        let modify =
            mock!(Client::modify_listener).then_output(|| ModifyListenerOutput::builder().build());
        let r = router(&[
            &listener_with(forward(&[(BLUE, 100), (GREEN, 0)])),
            &modify,
            &listener_with(forward(&[(BLUE, 90), (GREEN, 10)])),
        ]);
        let err = r.set_split(&fwd_listener(), split(75, 25)).await;
        let Err(AdapterError::Other(msg)) = err else {
            panic!("expected Other, got {err:?}")
        };
        assert!(
            msg.contains("reads back Blue: 90% | Green: 10%, expected Blue: 75% | Green: 25%"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn set_split_on_a_rule_uses_modify_rule_and_keeps_other_actions() {
        // GIVEN a rule that authenticates, then forwards
        let auth = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .build();
        let mut fwd_action = forward(&[(BLUE, 100)]);
        fwd_action.order = Some(2);
        let rule_with = |actions: Vec<Action>| {
            mock!(Client::describe_rules)
                .match_requests(|r| r.rule_arns() == [RULE.to_string()])
                .then_output(move || {
                    DescribeRulesOutput::builder()
                        .rules(
                            Rule::builder()
                                .rule_arn(RULE)
                                .set_actions(Some(actions.clone()))
                                .build(),
                        )
                        .build()
                })
        };
        let written: Arc<Mutex<Vec<ModifyRuleInput>>> = Arc::default();
        let sink = written.clone();
        let modify = mock!(Client::modify_rule).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            ModifyRuleOutput::builder().build()
        });
        let r = router(&[
            &rule_with(vec![auth.clone(), fwd_action]),
            &modify,
            &rule_with(vec![auth, forward(&[(BLUE, 0), (GREEN, 100)])]),
        ]);

        // WHEN
        r.set_split(&fwd_rule(), split(0, 100)).await.unwrap();

        // THEN
        let written = written.lock().unwrap();
        let actions = written[0].actions();
        assert_eq!(written[0].rule_arn(), Some(RULE));
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0].r#type(), Some(&ActionTypeEnum::AuthenticateOidc));
        assert_eq!(actions[1].order(), Some(2));
        assert_eq!(
            forwards(actions),
            vec![vec![
                (BLUE.to_string(), Some(0)),
                (GREEN.to_string(), Some(100))
            ]]
        );
    }

    #[tokio::test]
    async fn throttling_is_throttled() {
        let throttled = mock!(Client::describe_listeners).then_error(|| {
            DescribeListenersError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let r = router(&[&throttled]);
        let err = r.current_split(&fwd_listener()).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn a_missing_listener_is_not_found() {
        let missing = mock!(Client::describe_listeners).then_error(|| {
            DescribeListenersError::generic(
                ErrorMetadata::builder()
                    .code("ListenerNotFound")
                    .message("One or more listeners not found")
                    .build(),
            )
        });
        let r = router(&[&missing]);
        let err = r.current_split(&fwd_listener()).await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");
    }

    #[tokio::test]
    async fn target_health_counts_healthy_and_describes_each_problem() {
        let desc = |id: &str,
                    state: TargetHealthStateEnum,
                    reason: Option<TargetHealthReasonEnum>,
                    text: Option<&str>| {
            TargetHealthDescription::builder()
                .target(TargetDescription::builder().id(id).port(8080).build())
                .target_health(
                    Health::builder()
                        .state(state)
                        .set_reason(reason)
                        .set_description(text.map(str::to_string))
                        .build(),
                )
                .build()
        };
        let health = mock!(Client::describe_target_health)
            .match_requests(|r| r.target_group_arn() == Some(GREEN))
            .then_output(move || {
                DescribeTargetHealthOutput::builder()
                    .target_health_descriptions(desc(
                        "10.0.1.4",
                        TargetHealthStateEnum::Healthy,
                        None,
                        None,
                    ))
                    .target_health_descriptions(desc(
                        "10.0.1.5",
                        TargetHealthStateEnum::Unhealthy,
                        Some(TargetHealthReasonEnum::FailedHealthChecks),
                        Some("Health checks failed"),
                    ))
                    .target_health_descriptions(desc(
                        "10.0.1.6",
                        TargetHealthStateEnum::Initial,
                        Some(TargetHealthReasonEnum::RegistrationInProgress),
                        None,
                    ))
                    .build()
            });
        let r = router(&[&health]);
        let report = r.target_health(&tg(GREEN)).await.unwrap();
        assert_eq!(
            report,
            TargetHealthReport {
                registered: 3,
                healthy: 1,
                problems: vec![
                    "10.0.1.5:8080 unhealthy (Target.FailedHealthChecks: Health checks failed)"
                        .into(),
                    "10.0.1.6:8080 initial (Elb.RegistrationInProgress)".into(),
                ],
                targets: vec![
                    TargetState {
                        id: "10.0.1.4".into(),
                        port: Some(8080),
                        state: "healthy".into(),
                        reason: None,
                        description: None,
                    },
                    TargetState {
                        id: "10.0.1.5".into(),
                        port: Some(8080),
                        state: "unhealthy".into(),
                        reason: Some("Target.FailedHealthChecks".into()),
                        description: Some("Health checks failed".into()),
                    },
                    TargetState {
                        id: "10.0.1.6".into(),
                        port: Some(8080),
                        state: "initial".into(),
                        reason: Some("Elb.RegistrationInProgress".into()),
                        description: None,
                    },
                ],
            }
        );
    }

    #[tokio::test]
    async fn a_missing_target_group_is_not_found() {
        let missing = mock!(Client::describe_target_health).then_error(|| {
            DescribeTargetHealthError::TargetGroupNotFoundException(
                TargetGroupNotFoundException::builder()
                    .message("One or more target groups not found")
                    .meta(ErrorMetadata::builder().code("TargetGroupNotFound").build())
                    .build(),
            )
        });
        let r = router(&[&missing]);
        let err = r.target_health(&tg(GREEN)).await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");
    }
}
