//! CloudWatch adapter: alarm states and each color's ALB metrics (requests, 5xx, p99 latency)
//! over an evaluation window.

use super::map_sdk_error;
use crate::domain::{AlarmState, AlarmStatus, ColorMetrics, TargetGroupArn};
use crate::error::AdapterError;
use crate::ports::{HealthSignals, MetricsWindow, WindowMetrics};
use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, StateValue, StatusCode,
};
use aws_smithy_types::DateTime;
use std::collections::HashMap;

/// DescribeAlarms accepts at most 100 names per call.
const MAX_ALARM_NAMES: usize = 100;
const NAMESPACE: &str = "AWS/ApplicationELB";

/// The three numbers read per color, and the query id prefix of each color.
const REQUESTS: (&str, &str, &str) = ("req", "RequestCount", "Sum");
const ERRORS_5XX: (&str, &str, &str) = ("5xx", "HTTPCode_Target_5XX_Count", "Sum");
const P99: (&str, &str, &str) = ("p99", "TargetResponseTime", "p99");
const TARGET_PREFIX: &str = "t";
const BASELINE_PREFIX: &str = "b";

/// Alarms and metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchSignals {
    client: Client,
}

impl CloudWatchSignals {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn status_of(state: Option<&StateValue>) -> AlarmStatus {
    match state {
        Some(StateValue::Ok) => AlarmStatus::Ok,
        Some(StateValue::Alarm) => AlarmStatus::Alarm,
        // An unknown or absent state is not evidence of health or of failure.
        _ => AlarmStatus::InsufficientData,
    }
}

fn query(
    prefix: &str,
    (suffix, metric, stat): (&str, &str, &str),
    tg: &TargetGroupArn,
    load_balancer: &str,
    period_seconds: i32,
) -> MetricDataQuery {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    MetricDataQuery::builder()
        .id(format!("{prefix}_{suffix}"))
        .return_data(true)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(NAMESPACE)
                        .metric_name(metric)
                        .dimensions(dimension("TargetGroup", tg.dimension()))
                        .dimensions(dimension("LoadBalancer", load_balancer))
                        .build(),
                )
                .period(period_seconds)
                .stat(stat)
                .build(),
        )
        .build()
}

fn color_metrics(values: &HashMap<String, Vec<f64>>, prefix: &str) -> ColorMetrics {
    let of = |suffix: &str| {
        values
            .get(&format!("{prefix}_{suffix}"))
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    // Counts arrive as f64 sums; they are whole numbers, rounding only absorbs float noise.
    let count = |suffix: &str| of(suffix).iter().sum::<f64>().max(0.0).round() as u64;
    // The worst minute's p99 stands for the window; TargetResponseTime is in seconds.
    let p99_ms = of(P99.0)
        .iter()
        .copied()
        .reduce(f64::max)
        .map(|seconds| seconds * 1000.0);
    ColorMetrics {
        requests: count(REQUESTS.0),
        errors_5xx: count(ERRORS_5XX.0),
        p99_ms,
    }
}

#[async_trait]
impl HealthSignals for CloudWatchSignals {
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, AdapterError> {
        let mut found: HashMap<String, (AlarmStatus, String)> = HashMap::new();
        for chunk in names.chunks(MAX_ALARM_NAMES) {
            let mut next_token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(next_token.take())
                    .send()
                    .await
                    .map_err(|e| map_sdk_error("DescribeAlarms", e, &[]))?;
                let metric = out
                    .metric_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
                let composite = out
                    .composite_alarms()
                    .iter()
                    .map(|a| (a.alarm_name(), a.state_value(), a.state_reason()));
                for (name, state, reason) in metric.chain(composite) {
                    if let Some(name) = name {
                        found.insert(
                            name.to_string(),
                            (status_of(state), reason.unwrap_or_default().to_string()),
                        );
                    }
                }
                match out.next_token() {
                    Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(names
            .iter()
            .map(|name| match found.get(name) {
                Some((status, reason)) => AlarmState {
                    name: name.clone(),
                    status: *status,
                    reason: reason.clone(),
                },
                None => AlarmState {
                    name: name.clone(),
                    status: AlarmStatus::Missing,
                    reason: "no alarm with this name in CloudWatch; create it or remove it from the deployment".to_string(),
                },
            })
            .collect())
    }

    async fn color_metrics(&self, w: &MetricsWindow) -> Result<WindowMetrics, AdapterError> {
        let period = i32::try_from(w.period_seconds).map_err(|_| {
            AdapterError::Other(format!(
                "GetMetricData: period {} s is not a CloudWatch period",
                w.period_seconds
            ))
        })?;
        let mut queries = Vec::with_capacity(6);
        let colors = std::iter::once((TARGET_PREFIX, &w.target))
            .chain(w.baseline.as_ref().map(|b| (BASELINE_PREFIX, b)));
        for (prefix, tg) in colors {
            for metric in [REQUESTS, ERRORS_5XX, P99] {
                queries.push(query(prefix, metric, tg, &w.load_balancer, period));
            }
        }
        let start = DateTime::from_secs(w.start.unix_timestamp());
        let end = DateTime::from_secs(w.end.unix_timestamp());

        let mut values: HashMap<String, Vec<f64>> = HashMap::new();
        let target_requests = format!("{TARGET_PREFIX}_{}", REQUESTS.0);
        let mut target_last_reported: Option<i64> = None;
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(start)
                .end_time(end)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("GetMetricData", e, &[]))?;
            for result in out.metric_data_results() {
                let id = result.id().unwrap_or_default();
                match result.status_code() {
                    Some(StatusCode::InternalError) => {
                        return Err(AdapterError::Transient(format!(
                            "GetMetricData: CloudWatch reported an internal error for query {id}"
                        )));
                    }
                    Some(StatusCode::Forbidden) => {
                        return Err(AdapterError::Other(format!(
                            "GetMetricData: access to query {id} ({NAMESPACE}) is forbidden; grant cloudwatch:GetMetricData on it"
                        )));
                    }
                    _ => {}
                }
                if id == target_requests {
                    // A timestamp is the start of the period its value covers.
                    let latest = result.timestamps().iter().map(DateTime::secs).max();
                    target_last_reported = target_last_reported.max(latest);
                }
                values
                    .entry(id.to_string())
                    .or_default()
                    .extend_from_slice(result.values());
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(WindowMetrics {
            target: color_metrics(&values, TARGET_PREFIX),
            baseline: color_metrics(&values, BASELINE_PREFIX),
            target_last_reported: target_last_reported
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::config::retry::RetryConfig;
    use aws_sdk_cloudwatch::error::ErrorMetadata;
    use aws_sdk_cloudwatch::operation::describe_alarms::{
        DescribeAlarmsError, DescribeAlarmsInput, DescribeAlarmsOutput,
    };
    use aws_sdk_cloudwatch::operation::get_metric_data::{
        GetMetricDataError, GetMetricDataInput, GetMetricDataOutput,
    };
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, MetricDataResult};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use std::sync::{Arc, Mutex};
    use time::macros::datetime;

    const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-green/2222222222222222";
    const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/checkout-dev-blue/1111111111111111";
    const LB: &str = "app/bg-checkout-dev/50dc6c495c0c9188";

    /// id, metric name, stat, period, dimensions (name, value).
    type QueryShape = (String, String, String, i32, Vec<(String, String)>);

    fn signals(rules: &[&Rule]) -> CloudWatchSignals {
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        CloudWatchSignals::new(client)
    }

    fn window() -> MetricsWindow {
        MetricsWindow {
            load_balancer: LB.into(),
            target: TargetGroupArn::parse(GREEN).unwrap(),
            baseline: Some(TargetGroupArn::parse(BLUE).unwrap()),
            start: datetime!(2025-01-03 10:00:00 UTC),
            end: datetime!(2025-01-03 10:05:00 UTC),
            period_seconds: 60,
        }
    }

    /// One datapoint a minute from 10:00 on, as CloudWatch answers.
    fn result(id: &str, values: &[f64]) -> MetricDataResult {
        let minutes = (0..values.len() as i64).map(|i| {
            DateTime::from_secs(datetime!(2025-01-03 10:00:00 UTC).unix_timestamp() + 60 * i)
        });
        MetricDataResult::builder()
            .id(id)
            .set_values(Some(values.to_vec()))
            .set_timestamps(Some(minutes.collect()))
            .status_code(StatusCode::Complete)
            .build()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn get_metric_data_asks_for_six_queries_with_the_right_shape() {
        // GIVEN
        let seen: Arc<Mutex<Vec<GetMetricDataInput>>> = Arc::default();
        let sink = seen.clone();
        let rule = mock!(Client::get_metric_data).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            GetMetricDataOutput::builder().build()
        });
        let s = signals(&[&rule]);

        // WHEN
        s.color_metrics(&window()).await.unwrap();

        // THEN one call with six queries
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(
            req.start_time(),
            Some(&DateTime::from_secs(
                datetime!(2025-01-03 10:00:00 UTC).unix_timestamp()
            ))
        );
        assert_eq!(
            req.end_time(),
            Some(&DateTime::from_secs(
                datetime!(2025-01-03 10:05:00 UTC).unix_timestamp()
            ))
        );
        let shape: Vec<QueryShape> = req
            .metric_data_queries()
            .iter()
            .map(|q| {
                let stat = q.metric_stat().unwrap();
                let metric = stat.metric().unwrap();
                assert_eq!(metric.namespace(), Some("AWS/ApplicationELB"));
                assert_eq!(q.return_data(), Some(true));
                (
                    q.id().unwrap().to_string(),
                    metric.metric_name().unwrap().to_string(),
                    stat.stat().unwrap().to_string(),
                    stat.period().unwrap(),
                    metric
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap().to_string(),
                                d.value().unwrap().to_string(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let dims = |tg: &str| {
            vec![
                ("TargetGroup".to_string(), tg.to_string()),
                ("LoadBalancer".to_string(), LB.to_string()),
            ]
        };
        let green = "targetgroup/checkout-dev-green/2222222222222222";
        let blue = "targetgroup/checkout-dev-blue/1111111111111111";
        let row = |id: &str, m: &str, s: &str, tg: &str| {
            (id.to_string(), m.to_string(), s.to_string(), 60, dims(tg))
        };
        assert_eq!(
            shape,
            vec![
                row("t_req", "RequestCount", "Sum", green),
                row("t_5xx", "HTTPCode_Target_5XX_Count", "Sum", green),
                row("t_p99", "TargetResponseTime", "p99", green),
                row("b_req", "RequestCount", "Sum", blue),
                row("b_5xx", "HTTPCode_Target_5XX_Count", "Sum", blue),
                row("b_p99", "TargetResponseTime", "p99", blue),
            ]
        );
    }

    #[tokio::test]
    async fn a_window_judged_mid_minute_asks_for_whole_published_minutes() {
        // GIVEN green took traffic at 10:00:30 and the evaluation runs at 10:03:20 with the
        // default timings (60 s periods, 60 s publication delay)
        use crate::domain::{Timings, WindowReadiness, evaluation_window};
        let seen: Arc<Mutex<Vec<GetMetricDataInput>>> = Arc::default();
        let sink = seen.clone();
        let rule = mock!(Client::get_metric_data).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            GetMetricDataOutput::builder().build()
        });
        let WindowReadiness::Ready(aligned) = evaluation_window(
            datetime!(2025-01-03 10:00:30 UTC),
            datetime!(2025-01-03 10:03:20 UTC),
            &Timings::default(),
        ) else {
            panic!("a complete minute is published by 10:03:20")
        };

        // WHEN
        signals(&[&rule])
            .color_metrics(&MetricsWindow {
                start: aligned.start,
                end: aligned.end,
                period_seconds: aligned.period_seconds,
                ..window()
            })
            .await
            .unwrap();

        // THEN the request covers 10:01-10:02: no partial minute, nothing younger than the delay
        let seen = seen.lock().unwrap();
        let req = &seen[0];
        let secs = |t: Option<&DateTime>| t.map(DateTime::secs);
        assert_eq!(
            (secs(req.start_time()), secs(req.end_time())),
            (
                Some(datetime!(2025-01-03 10:01:00 UTC).unix_timestamp()),
                Some(datetime!(2025-01-03 10:02:00 UTC).unix_timestamp())
            )
        );
        for q in req.metric_data_queries() {
            assert_eq!(q.metric_stat().and_then(|m| m.period()), Some(60));
        }
        assert_eq!(secs(req.start_time()).map(|s| s % 60), Some(0));
        assert_eq!(secs(req.end_time()).map(|s| s % 60), Some(0));
    }

    #[tokio::test]
    async fn without_a_baseline_only_the_target_is_asked_for() {
        // GIVEN green carries all traffic (no baseline in the window)
        let seen: Arc<Mutex<Vec<GetMetricDataInput>>> = Arc::default();
        let sink = seen.clone();
        let rule = mock!(Client::get_metric_data).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            GetMetricDataOutput::builder()
                .metric_data_results(result("t_req", &[100.0]))
                .build()
        });
        let s = signals(&[&rule]);
        let w = MetricsWindow {
            baseline: None,
            ..window()
        };

        // WHEN
        let WindowMetrics {
            target, baseline, ..
        } = s.color_metrics(&w).await.unwrap();

        // THEN three queries, all on green; the baseline is empty
        let ids: Vec<String> = seen.lock().unwrap()[0]
            .metric_data_queries()
            .iter()
            .map(|q| q.id().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["t_req", "t_5xx", "t_p99"]);
        assert_eq!(target.requests, 100);
        assert_eq!(baseline, ColorMetrics::default());
    }

    #[tokio::test]
    async fn metrics_sum_counts_take_the_worst_p99_in_ms_and_follow_pages() {
        // GIVEN two pages of results
        let first = mock!(Client::get_metric_data)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("t_req", &[400.0, 600.0]))
                    .metric_data_results(result("t_5xx", &[3.0, 2.0]))
                    .metric_data_results(result("t_p99", &[0.045, 0.052]))
                    .metric_data_results(result("b_req", &[9000.0]))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::get_metric_data)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("t_req", &[0.0]))
                    .metric_data_results(result("b_5xx", &[]))
                    .metric_data_results(result("b_p99", &[0.042]))
                    .build()
            });
        let s = signals(&[&first, &second]);

        // WHEN
        let WindowMetrics {
            target,
            baseline,
            target_last_reported,
        } = s.color_metrics(&window()).await.unwrap();

        // THEN
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        // the latest of green's RequestCount datapoints, across pages: 10:01 (page 2 has 10:00)
        assert_eq!(
            target_last_reported,
            Some(datetime!(2025-01-03 10:01:00 UTC))
        );
        assert_eq!((target.requests, target.errors_5xx), (1000, 5));
        assert!((target.p99_ms.unwrap() - 52.0).abs() < 1e-9);
        assert_eq!((baseline.requests, baseline.errors_5xx), (9000, 0));
        assert!((baseline.p99_ms.unwrap() - 42.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn no_datapoints_give_zero_counts_and_no_p99() {
        let rule = mock!(Client::get_metric_data).then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("t_p99", &[]))
                .build()
        });
        let m = signals(&[&rule]).color_metrics(&window()).await.unwrap();
        assert_eq!(m.target, ColorMetrics::default());
        assert_eq!(m.baseline, ColorMetrics::default());
        assert_eq!(m.target_last_reported, None);
    }

    #[tokio::test]
    async fn get_metric_data_throttling_is_throttled() {
        let rule = mock!(Client::get_metric_data).then_error(|| {
            GetMetricDataError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = signals(&[&rule]).color_metrics(&window()).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }

    #[tokio::test]
    async fn alarm_states_keep_input_order_and_report_unknown_names_missing() {
        // GIVEN CloudWatch knows two of three alarms
        let seen: Arc<Mutex<Vec<DescribeAlarmsInput>>> = Arc::default();
        let sink = seen.clone();
        let rule = mock!(Client::describe_alarms).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("checkout-dev-5xx")
                        .state_value(StateValue::Alarm)
                        .state_reason("Threshold Crossed")
                        .build(),
                )
                .composite_alarms(
                    CompositeAlarm::builder()
                        .alarm_name("checkout-dev-health")
                        .state_value(StateValue::InsufficientData)
                        .build(),
                )
                .build()
        });
        let s = signals(&[&rule]);

        // WHEN
        let states = s
            .alarm_states(&names(&[
                "checkout-dev-health",
                "checkout-dev-gone",
                "checkout-dev-5xx",
            ]))
            .await
            .unwrap();

        // THEN
        let got: Vec<(&str, AlarmStatus)> =
            states.iter().map(|a| (a.name.as_str(), a.status)).collect();
        assert_eq!(
            got,
            vec![
                ("checkout-dev-health", AlarmStatus::InsufficientData),
                ("checkout-dev-gone", AlarmStatus::Missing),
                ("checkout-dev-5xx", AlarmStatus::Alarm),
            ]
        );
        assert_eq!(states[2].reason, "Threshold Crossed");
        let req = &seen.lock().unwrap()[0];
        assert_eq!(req.alarm_names().len(), 3);
        assert_eq!(
            req.alarm_types(),
            [AlarmType::MetricAlarm, AlarmType::CompositeAlarm]
        );
    }

    #[tokio::test]
    async fn alarm_names_go_in_chunks_of_100_and_pages_are_followed() {
        // GIVEN 150 names; the first chunk's answer comes in two pages
        let all: Vec<String> = (0..150).map(|i| format!("alarm-{i:03}")).collect();
        let seen: Arc<Mutex<Vec<DescribeAlarmsInput>>> = Arc::default();
        let sink = seen.clone();
        let rule = mock!(Client::describe_alarms).then_compute_output(move |req| {
            sink.lock().unwrap().push(req.clone());
            let page = req.alarm_names().len() == 100 && req.next_token().is_none();
            let mut out = DescribeAlarmsOutput::builder();
            for name in req.alarm_names() {
                out = out.metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name(name)
                        .state_value(StateValue::Ok)
                        .build(),
                );
            }
            if page {
                out = out.next_token("more");
            }
            out.build()
        });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);

        // WHEN
        let states = CloudWatchSignals::new(client)
            .alarm_states(&all)
            .await
            .unwrap();

        // THEN
        let sizes: Vec<(usize, Option<String>)> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.alarm_names().len(), r.next_token().map(str::to_string)))
            .collect();
        assert_eq!(
            sizes,
            vec![(100, None), (100, Some("more".into())), (50, None)]
        );
        assert_eq!(states.len(), 150);
        assert!(states.iter().all(|a| a.status == AlarmStatus::Ok));
    }

    #[tokio::test]
    async fn no_alarm_names_make_no_call() {
        let rule =
            mock!(Client::describe_alarms).then_output(|| DescribeAlarmsOutput::builder().build());
        let states = signals(&[&rule]).alarm_states(&[]).await.unwrap();
        assert!(states.is_empty());
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn describe_alarms_throttling_is_throttled() {
        let rule = mock!(Client::describe_alarms).then_error(|| {
            DescribeAlarmsError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = signals(&[&rule]).alarm_states(&names(&["a"])).await;
        assert!(matches!(err, Err(AdapterError::Throttled(_))), "{err:?}");
    }
}
