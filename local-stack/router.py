#!/usr/bin/env python3
"""Local AWS endpoint for the Blue/Green project: one HTTP server in front of moto.

Routes (everything listens on 127.0.0.1 only):
  * Lambda Invoke  POST /2015-03-31/functions/{name|ARN}/invocations  -> cargo lambda watch
  * CloudWatch     POST /service/GraniteServiceVersion20100801/operation/<Op>  (Smithy RPC v2 CBOR)
                   or X-Amz-Target: GraniteServiceVersion20100801.<Op>       (awsJson1_0)
                   -> in-process stand-in (alarms + a traffic model for AWS/ApplicationELB)
  * ECS            CreateService/UpdateService proxied to moto, then targets are (de)registered
                   like ECS would; DescribeServices responses report the rollout.
  * EKS            DescribeCluster (GET /clusters/{name}) proxied to moto, its answer's endpoint and
                   CA bundle replaced by the Kubernetes API stand-in's (kube.py): the cluster's API
                   server is the stand-in, whose certificate that CA signed
  * ELBv2          DescribeTargetHealth proxied, rewritten to `unhealthy` for "never healthy" services
  * DynamoDB       writes (PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem) reach
                   moto one at a time: moto checks a write's condition and writes without a lock,
                   so concurrent conditional writes could both pass, which DynamoDB never allows
  * /_local/...    scenario control endpoints (JSON); POST /_local/traffic also takes
                   {"publication_delay_seconds": 2}: GetMetricData withholds a period's
                   datapoint until the period has ended and this many seconds have passed
                   (default 2, env BLUEGREEN_METRICS_DELAY_SECONDS), as CloudWatch publishes
                   ALB metrics late. /_local/eks/... goes to the Kubernetes API stand-in, and
                   POST /_local/reset resets its scenarios too.
  * anything else  proxied verbatim to moto.

Every AWS call a function makes is also recorded, with what IAM authorizes for it (authz.py), in
the file BLUEGREEN_CALLS_LOG names (stack.py: .local-stack/calls.jsonl).

Benchmarks and chaos runs also use:
  * /_local/stats   GET: calls per operation since the last reset, CloudWatch metrics requested,
                    DynamoDB items read (ScannedCount) and returned (Count), and every Lambda
                    invocation's duration; POST /_local/stats/reset clears them.
  * /_local/faults  POST {"rate": 0.3, "seed": 7, "kinds": [...], "lambda_crash_rate": 0.1}:
                    faults on the AWS calls the functions make (recognised by the app id in
                    their user agent, which names one of functions/; the harness and moto's
                    interpreter are never hit). Kinds: throttle (HTTP 400 ThrottlingException), 5xx (HTTP 500
                    InternalFailure), timeout (the call hangs 1 s, then the connection is dropped
                    with no answer), succeed-then-fail (the call is carried out, then answered
                    with HTTP 500). lambda_crash_rate: the function runs, then its result is
                    replaced by an unhandled Runtime.ExitError, as when a process dies after its
                    side effects. {"rate": 0} turns faults off.

Usage: router.py [--port 4566] [--moto http://127.0.0.1:4567] [--lambda http://127.0.0.1:9000]
                 [--kube https://127.0.0.1:4568 --kube-ca .local-stack/kube-ca.pem]
(env: BLUEGREEN_ROUTER_PORT, BLUEGREEN_MOTO_URL, BLUEGREEN_LAMBDA_URL, BLUEGREEN_KUBE_URL, BLUEGREEN_KUBE_CA)
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import io
import json
import math
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import cbor2
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authz  # noqa: E402 - local module, next to this file

ACCOUNT = os.environ.get("BLUEGREEN_ACCOUNT_ID", "123456789012")
DEFAULT_REGION = os.environ.get("AWS_REGION", "us-east-1")
DEFAULT_RPS = 500.0
DEFAULT_ERROR_RATE = 0.0001
DEFAULT_P99_MS = 42.0
# CloudWatch publishes a period's datapoint some time after the period ends (ALB: about a
# minute). The stand-in withholds datapoints younger than this; short, so local runs stay quick.
DEFAULT_PUBLICATION_DELAY_SECONDS = float(os.environ.get("BLUEGREEN_METRICS_DELAY_SECONDS", "2"))

CW_CBOR_PATH = re.compile(r"^/service/GraniteServiceVersion20100801/operation/([A-Za-z]+)$")
CW_JSON_TARGET = "GraniteServiceVersion20100801."
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
EKS_CLUSTER = re.compile(r"^/clusters/([^/]+)$")
SIGNING_SERVICE = re.compile(r"Credential=[^/]+/\d+/[a-z0-9-]+/([a-z0-9-]+)/aws4_request")
# The controller's functions name themselves in their user agent (app/<function>): the binaries
# under functions/ (shared::adapters::load_aws_config).
FUNCTIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "functions")
KNOWN_FUNCTIONS = frozenset(d for d in (os.listdir(FUNCTIONS_DIR) if os.path.isdir(FUNCTIONS_DIR) else [])
                            if os.path.isfile(os.path.join(FUNCTIONS_DIR, d, "Cargo.toml")))
APP_ID = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+.^_`|~-]+)")
FAULT_KINDS = ("throttle", "5xx", "timeout", "succeed-then-fail")
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "content-length",
}


def log(msg: str) -> None:
    sys.stderr.write(f"{dt.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {msg}\n")
    sys.stderr.flush()


class Ts(float):
    """An epoch-seconds timestamp: CBOR tag 1 on the wire, a number in JSON."""


def to_epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return float(value.value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise ValueError(f"not a timestamp: {value!r}")


def cbor_ready(value):
    if isinstance(value, Ts):
        return cbor2.CBORTag(1, float(value))
    if isinstance(value, dict):
        return {k: cbor_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cbor_ready(v) for v in value]
    return value


def json_ready(value):
    if isinstance(value, Ts):
        return float(value)
    if isinstance(value, (dt.datetime,)):
        return value.timestamp()
    if isinstance(value, cbor2.CBORTag):
        return json_ready(value.value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, fault: str = "Sender"):
        super().__init__(message)
        self.code, self.message, self.status, self.fault = code, message, status, fault


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------
# DynamoDB operations that write (and may carry a condition): serialized, see State.
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


class State:
    def __init__(self, moto_url: str, lambda_url: str, kube_url: str | None = None, kube_ca: str | None = None):
        self.moto_url = moto_url.rstrip("/")
        self.lambda_url = lambda_url.rstrip("/")
        # the Kubernetes API stand-in every EKS cluster's endpoint points at, and its CA
        self.kube_url = (kube_url or "").rstrip("/") or None
        self.kube_ca = kube_ca
        self.lock = threading.RLock()
        self.alarms: dict[str, dict] = {}
        self.rps = DEFAULT_RPS
        self.publication_delay = DEFAULT_PUBLICATION_DELAY_SECONDS
        self.profiles: dict[str, dict] = {}
        # (cluster name, service name) -> deployment record made by the ECS stand-in
        self.deployments: dict[tuple[str, str], dict] = {}
        self.never_healthy: dict[tuple[str, str], list[str]] = {}  # -> target group ARNs
        self.ip_block = 0
        self._clients: dict[tuple[str, str], object] = {}
        # benchmark counters and fault injection (see the module docstring)
        self.stats_lock = threading.Lock()
        # moto evaluates a DynamoDB write's condition and then writes, unlocked, on its request
        # thread: two concurrent conditional writes can both pass. DynamoDB never lets them
        # (a conditional write is atomic), so the router lets one write at a time reach moto.
        self.dynamodb_writes = threading.Lock()
        self.calls: dict[str, int] = {}
        self.totals: dict[str, float] = {}
        self.invocations: list[dict] = []
        self.injected: dict[str, int] = {}
        self.faults: dict | None = None
        # the one state machine: what a task token answered by SendTask* is authorized on
        self.state_machine_arn = os.environ.get(
            "BLUEGREEN_STATE_MACHINE_ARN", f"arn:aws:states:{DEFAULT_REGION}:{ACCOUNT}:stateMachine:bluegreen-blue-green")

    def count(self, op: str, **extra: float) -> None:
        with self.stats_lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            for k, v in extra.items():
                self.totals[k] = self.totals.get(k, 0) + v

    def stats(self) -> dict:
        with self.stats_lock:
            return {"calls": dict(sorted(self.calls.items())), "totals": dict(self.totals),
                    "invocations": list(self.invocations), "faults": dict(self.injected)}

    def reset_stats(self) -> None:
        with self.stats_lock:
            self.calls, self.totals, self.invocations, self.injected = {}, {}, [], {}

    def draw_fault(self, lambda_call: bool = False) -> str | None:
        """The fault to inject into this call, if any (seeded, so a run replays)."""
        with self.stats_lock:
            f = self.faults
            if not f:
                return None
            if lambda_call:
                kind = "lambda-crash" if f["rng"].random() < f["lambda_crash_rate"] else None
            else:
                kind = f["rng"].choice(f["kinds"]) if f["rng"].random() < f["rate"] else None
            if kind:
                self.injected[kind] = self.injected.get(kind, 0) + 1
            return kind

    def client(self, service: str, region: str = DEFAULT_REGION):
        key = (service, region)
        with self.lock:
            if key not in self._clients:
                self._clients[key] = boto3.client(
                    service, endpoint_url=self.moto_url, region_name=region,
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=Config(retries={"max_attempts": 1}),
                )
            return self._clients[key]

    def reset(self) -> None:
        with self.stats_lock:
            self.faults = None
        with self.lock:
            self.rps = DEFAULT_RPS
            self.publication_delay = DEFAULT_PUBLICATION_DELAY_SECONDS
            self.profiles.clear()
            self.never_healthy.clear()
            now = time.time()
            for alarm in self.alarms.values():
                set_alarm_state(alarm, "OK", "Reset by /_local/reset", now)


def set_alarm_state(alarm: dict, state: str, reason: str, now: float, reason_data: str | None = None) -> None:
    if alarm.get("StateValue") != state:
        alarm["StateTransitionedTimestamp"] = Ts(now)
    alarm["StateValue"] = state
    alarm["StateReason"] = reason
    if reason_data is not None:
        alarm["StateReasonData"] = reason_data
    alarm["StateUpdatedTimestamp"] = Ts(now)


# --------------------------------------------------------------------------------------
# CloudWatch stand-in
# --------------------------------------------------------------------------------------
ALARM_CONFIG_FIELDS = {
    "AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
    "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
    "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
    "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
    "ThresholdMetricId",
}
VALID_STATES = {"OK", "ALARM", "INSUFFICIENT_DATA"}


class CloudWatch:
    def __init__(self, state: State):
        self.s = state

    def call(self, op: str, params: dict, region: str) -> dict:
        fn = getattr(self, "op_" + op, None)
        if fn is None:
            raise ApiError("InvalidAction", f"the local CloudWatch stand-in does not implement {op}")
        return fn(params or {}, region)

    def alarm_arn(self, name: str, region: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"

    def new_alarm(self, name: str, region: str, now: float) -> dict:
        return {
            "AlarmName": name, "AlarmArn": self.alarm_arn(name, region), "ActionsEnabled": True,
            "OKActions": [], "AlarmActions": [], "InsufficientDataActions": [], "Dimensions": [],
            "StateValue": "INSUFFICIENT_DATA", "StateReason": "Unchecked: Initial alarm creation",
            "StateUpdatedTimestamp": Ts(now), "StateTransitionedTimestamp": Ts(now),
            "AlarmConfigurationUpdatedTimestamp": Ts(now),
        }

    def op_PutMetricAlarm(self, p: dict, region: str) -> dict:
        name = p.get("AlarmName")
        if not name:
            raise ApiError("MissingParameter", "AlarmName is required")
        now = time.time()
        with self.s.lock:
            alarm = self.s.alarms.get(name) or self.new_alarm(name, region, now)
            for key, value in p.items():
                if key in ALARM_CONFIG_FIELDS:
                    alarm[key] = float(value) if key == "Threshold" else value
            alarm["AlarmConfigurationUpdatedTimestamp"] = Ts(now)
            self.s.alarms[name] = alarm
        return {}

    def op_DescribeAlarms(self, p: dict, region: str) -> dict:
        names = p.get("AlarmNames") or []
        prefix = p.get("AlarmNamePrefix")
        state = p.get("StateValue")
        types = p.get("AlarmTypes")
        with self.s.lock:
            alarms = [dict(a) for a in self.s.alarms.values()]
        if types and "MetricAlarm" not in types:
            alarms = []
        out = [
            a for a in sorted(alarms, key=lambda a: a["AlarmName"])
            if (not names or a["AlarmName"] in names)
            and (not prefix or a["AlarmName"].startswith(prefix))
            and (not state or a["StateValue"] == state)
        ]
        return {"MetricAlarms": out, "CompositeAlarms": []}

    def op_SetAlarmState(self, p: dict, region: str) -> dict:
        name, value = p.get("AlarmName"), p.get("StateValue")
        if value not in VALID_STATES:
            raise ApiError("InvalidParameterValue", f"StateValue must be one of {sorted(VALID_STATES)}")
        with self.s.lock:
            alarm = self.s.alarms.get(name)
            if alarm is None:
                raise ApiError("ResourceNotFound", f"Alarm {name} not found", status=404)
            set_alarm_state(alarm, value, p.get("StateReason", ""), time.time(), p.get("StateReasonData"))
        return {}

    def op_DeleteAlarms(self, p: dict, region: str) -> dict:
        names = p.get("AlarmNames") or []
        with self.s.lock:
            missing = [n for n in names if n not in self.s.alarms]
            if missing:
                raise ApiError("ResourceNotFound", f"Alarms not found: {', '.join(missing)}", status=404)
            for n in names:
                del self.s.alarms[n]
        return {}

    def op_PutMetricData(self, p: dict, region: str) -> dict:
        return {}  # accepted and dropped: the traffic model is the only metric source

    def op_DescribeAlarmHistory(self, p: dict, region: str) -> dict:
        return {"AlarmHistoryItems": []}

    # --- GetMetricData: traffic model -------------------------------------------------
    def op_GetMetricData(self, p: dict, region: str) -> dict:
        """One datapoint per period of the query, timestamped at the period's start, like
        CloudWatch. A period's datapoint appears only once the period has ended and the
        publication delay has passed; until then it is simply absent, as on AWS."""
        start, end = to_epoch(p.get("StartTime")), to_epoch(p.get("EndTime"))
        if start is None or end is None:
            raise ApiError("MissingParameter", "StartTime and EndTime are required")
        with self.s.lock:
            published_until = time.time() - self.s.publication_delay
        results = []
        for q in p.get("MetricDataQueries") or []:
            if q.get("ReturnData") is False:
                continue
            stat = q.get("MetricStat") or {}
            metric = stat.get("Metric") or {}
            label = q.get("Label") or metric.get("MetricName") or q.get("Id")
            period = max(1, int(stat.get("Period") or 60))
            first = math.ceil(start / period) * period
            stamps, values = [], []
            # the model serves the live weights, so every period of one query has the same value
            value = self.model_value(metric, stat.get("Stat", ""), period, region) if metric else None
            t = first
            while value is not None and t + period <= min(end, published_until) and len(values) < 1440:
                stamps.append(Ts(t))
                values.append(float(value))
                t += period
            # CloudWatch returns the newest datapoint first (ScanBy TimestampDescending).
            results.append({
                "Id": q.get("Id"), "Label": label,
                "Timestamps": stamps[::-1], "Values": values[::-1],
                "StatusCode": "Complete", "Messages": [],
            })
        return {"MetricDataResults": results, "Messages": []}

    def model_value(self, metric: dict, stat: str, seconds: float, region: str) -> float | None:
        if metric.get("Namespace") != "AWS/ApplicationELB":
            return None
        dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
        tg_suffix = dims.get("TargetGroup")
        if not tg_suffix:
            return None
        tg_arn = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:{tg_suffix}"
        lb_suffix = dims.get("LoadBalancer")
        lb_arn = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/{lb_suffix}" if lb_suffix else None
        weight = self.live_weight(tg_arn, lb_arn, region)
        with self.s.lock:
            rps = self.s.rps
            prof = dict(self.s.profiles.get(tg_arn) or {})
        if prof and weight < float(prof.get("from_weight", 0)):
            prof = {}
        error_rate = float(prof.get("error_rate", DEFAULT_ERROR_RATE))
        p99_ms = float(prof.get("p99_ms", DEFAULT_P99_MS))
        requests = round(rps * seconds * weight / 100.0)
        if requests <= 0:
            return None
        name = metric.get("MetricName")
        if name == "RequestCount":
            return float(requests)
        if name == "HTTPCode_Target_5XX_Count":
            return float(round(requests * error_rate))
        if name in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_4XX_Count", "HTTPCode_ELB_4XX_Count"):
            return 0.0
        if name == "TargetResponseTime":
            return p99_ms / 1000.0  # ALB reports seconds; the model serves p99 for any statistic
        return None

    def live_weight(self, tg_arn: str, lb_arn: str | None, region: str) -> float:
        """Percentage of the listener traffic forwarded to tg_arn, read live from moto."""
        elb = self.s.client("elbv2", region)
        try:
            if lb_arn:
                lbs = [lb_arn]
            else:
                tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
                lbs = tg.get("LoadBalancerArns", [])
            best = 0.0
            for lb in lbs:
                for listener in elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
                    actions = [listener.get("DefaultActions", [])]
                    for rule in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                        actions.append(rule.get("Actions", []))
                    for acts in actions:
                        share = forward_share(acts, tg_arn)
                        if share is not None:
                            best = max(best, share)
            return best
        except Exception as exc:  # noqa: BLE001 - unknown LB/TG reads as no traffic
            log(f"traffic model: cannot read weights for {tg_arn}: {exc}")
            return 0.0


def forward_share(actions: list, tg_arn: str) -> float | None:
    for act in actions:
        if act.get("Type") != "forward":
            continue
        groups = (act.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            total = sum(int(g.get("Weight", 1)) for g in groups)
            for g in groups:
                if g.get("TargetGroupArn") == tg_arn:
                    return 100.0 * int(g.get("Weight", 1)) / total if total else 0.0
        elif act.get("TargetGroupArn") == tg_arn:
            return 100.0
    return None


# --------------------------------------------------------------------------------------
# ECS / ELBv2 stand-in
# --------------------------------------------------------------------------------------
def short_name(name_or_arn: str | None, default: str = "default") -> str:
    if not name_or_arn:
        return default
    return name_or_arn.rsplit("/", 1)[-1]


class Ecs:
    def __init__(self, state: State):
        self.s = state

    def after_write(self, op: str, req: dict, resp: dict, region: str) -> None:
        svc = resp.get("service") or {}
        if not svc.get("loadBalancers"):
            return
        cluster = short_name(svc.get("clusterArn") or req.get("cluster"))
        key = (cluster, svc["serviceName"])
        with self.s.lock:
            prev = self.s.deployments.get(key)
        changed = (
            op == "CreateService" or prev is None or req.get("forceNewDeployment")
            or prev["taskDefinition"] != svc.get("taskDefinition")
            or prev["desiredCount"] != svc.get("desiredCount")
        )
        if changed:
            self.roll_out(key, svc, region)

    def roll_out(self, key: tuple[str, str], svc: dict, region: str) -> None:
        """Do what ECS does for a new deployment: start desiredCount tasks, register their
        IPs in the service's target groups and drain the previous ones."""
        desired = int(svc.get("desiredCount") or 0)
        with self.s.lock:
            self.s.ip_block = self.s.ip_block % 250 + 1
            block = self.s.ip_block
        tasks = [uuid.uuid4().hex for _ in range(desired)]
        elb = self.s.client("elbv2", region)
        for lb in svc["loadBalancers"]:
            tg = lb.get("targetGroupArn")
            if not tg:
                continue
            port = int(lb.get("containerPort") or 80)
            new = [{"Id": f"10.0.{block}.{i + 1}", "Port": port} for i in range(desired)]
            old = [d["Target"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
            old = [t for t in old if t not in new]
            if old:
                elb.deregister_targets(TargetGroupArn=tg, Targets=old)
            if new:
                elb.register_targets(TargetGroupArn=tg, Targets=new)
            log(f"ecs stand-in: {key[0]}/{key[1]} -> {len(new)} targets in {tg.rsplit(':', 1)[-1]}, {len(old)} drained")
        with self.s.lock:
            self.s.deployments[key] = {
                "id": f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
                "taskDefinition": svc.get("taskDefinition"),
                "desiredCount": svc.get("desiredCount"),
                "startedAt": time.time(), "tasks": tasks,
            }

    def rewrite_describe(self, resp: dict) -> dict:
        for svc in resp.get("services") or []:
            key = (short_name(svc.get("clusterArn")), svc.get("serviceName"))
            with self.s.lock:
                dep = dict(self.s.deployments.get(key) or {})
                sick_tgs = self.s.never_healthy.get(key)
            desired = int(svc.get("desiredCount") or 0)
            primary = next((d for d in svc.get("deployments") or [] if d.get("status") == "PRIMARY"), None)
            if primary is None:
                continue
            svc["deployments"] = [primary]
            primary["taskDefinition"] = svc.get("taskDefinition")
            primary["desiredCount"] = desired
            if dep:
                primary["id"] = dep["id"]
                primary["createdAt"] = primary["updatedAt"] = dep["startedAt"]
            events = list(svc.get("events") or [])
            name = svc.get("serviceName")
            now = time.time()
            if sick_tgs is not None:
                tasks = dep.get("tasks") or [uuid.uuid4().hex for _ in range(desired)]
                primary.update(runningCount=0, pendingCount=desired, failedTasks=len(tasks),
                               rolloutState="IN_PROGRESS",
                               rolloutStateReason=f"ECS deployment {primary['id']} in progress.")
                svc.update(runningCount=0, pendingCount=desired)
                new_events = [
                    f"(service {name}) has stopped {len(tasks)} running tasks: "
                    + " ".join(f"(task {t})" for t in tasks) + ".",
                ] + [
                    f"(service {name}) (task {t}) failed ELB health checks in (target-group {tg})."
                    for t in tasks for tg in sick_tgs
                ] + [
                    f"(service {name}) has started {len(tasks)} tasks: "
                    + " ".join(f"(task {t})" for t in tasks) + ".",
                ]
            else:
                primary.update(runningCount=desired, pendingCount=0, failedTasks=0,
                               rolloutState="COMPLETED",
                               rolloutStateReason=f"ECS deployment {primary['id']} completed.")
                svc.update(runningCount=desired, pendingCount=0)
                new_events = [f"(service {name}) has reached a steady state."]
            svc["events"] = [
                {"id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{name}/{primary['id']}/{i}/{m}")),
                 "createdAt": now - i, "message": m}
                for i, m in enumerate(new_events)
            ] + events
        return resp

    def mark_never_healthy(self, cluster: str, service: str, region: str, on: bool = True) -> list[str]:
        key = (short_name(cluster), short_name(service))
        if not on:
            with self.s.lock:
                self.s.never_healthy.pop(key, None)
            return []
        ecs = self.s.client("ecs", region)
        found = ecs.describe_services(cluster=key[0], services=[key[1]])["services"]
        if not found:
            raise ApiError("ServiceNotFoundException", f"service {key[0]}/{key[1]} not found", status=404)
        tgs = [lb["targetGroupArn"] for lb in found[0].get("loadBalancers", []) if lb.get("targetGroupArn")]
        with self.s.lock:
            self.s.never_healthy[key] = tgs
        return tgs

    def sick_target_groups(self) -> set[str]:
        with self.s.lock:
            return {tg for tgs in self.s.never_healthy.values() for tg in tgs}


UNHEALTHY = (
    "<TargetHealth><State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason>"
    "<Description>Health checks failed</Description></TargetHealth>"
)


def rewrite_target_health(xml: str) -> str:
    return re.sub(r"<TargetHealth>.*?</TargetHealth>", UNHEALTHY, xml, flags=re.S)


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bluegreen-local-router"
    state: State
    cw: CloudWatch
    ecs: Ecs
    last_sent: bytes = b""

    def log_message(self, fmt, *args):  # silence the default access log; we log our own line
        pass

    # one line per request
    def _log(self, status: int, note: str, started: float) -> None:
        log(f"{self.command} {self.path[:120]} {note} -> {status} ({(time.time() - started) * 1000:.0f} ms)")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] | dict | None = None) -> None:
        self.last_sent = body
        self.send_response(status)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(json_ready(obj), indent=None).encode(), {"Content-Type": "application/json"})

    def signing_service(self) -> str | None:
        """The service the request is signed for (SigV4 credential scope), e.g. eks."""
        m = SIGNING_SERVICE.search(self.headers.get("Authorization", ""))
        return m.group(1) if m else None

    def region(self) -> str:
        m = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
        return m.group(1) if m else DEFAULT_REGION

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def dispatch(self):
        started = time.time()
        body = self._read_body()
        path = urllib.parse.urlsplit(self.path).path
        target = self.headers.get("X-Amz-Target", "")
        fault = None
        if not path.startswith("/_local/") and not LAMBDA_INVOKE.match(path):
            if self.calling_function():
                fault = self.state.draw_fault()
        if fault in ("throttle", "5xx", "timeout"):
            self.inject(fault, path, target)
            self._log(0, f"FAULT {fault} {self._op_note(target, body)}", started)
            return
        real_wfile = self.wfile
        if fault == "succeed-then-fail":
            self.wfile = io.BytesIO()  # carry the call out, then throw its answer away
        try:
            self.route(path, target, body, started)
        finally:
            self.wfile = real_wfile
        if fault == "succeed-then-fail":
            self.inject("5xx", path, target)
            self._log(500, f"FAULT succeed-then-fail {self._op_note(target, body)}", started)

    def inject(self, kind: str, path: str, target: str) -> None:
        """Answers an AWS call with an injected fault, in the protocol the caller speaks."""
        if kind == "timeout":
            time.sleep(1)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        code, status = ("ThrottlingException", 400) if kind == "throttle" else ("InternalFailure", 500)
        message = f"injected by the local router ({kind})"
        if CW_CBOR_PATH.match(path):
            self._send(status, cbor2.dumps({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message}),
                       {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                        "x-amzn-query-error": f"{code};{'Sender' if status < 500 else 'Receiver'}"})
        elif target:
            self._send(status, json.dumps({"__type": code, "message": message}).encode(),
                       {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code})
        else:
            fault_type = "Sender" if status < 500 else "Receiver"
            xml = (f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{code}</Code><Message>{message}</Message>"
                   f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
            self._send(status, xml.encode(), {"Content-Type": "text/xml"})

    def route(self, path: str, target: str, body: bytes, started: float) -> None:
        self.extra: dict[str, float] = {}
        try:
            if path.startswith("/_local/"):
                status, note = self.local(path, body), "control"
            elif m := LAMBDA_INVOKE.match(path):
                status, note = self.lambda_invoke(urllib.parse.unquote(m.group(1)), body), "lambda"
            elif m := CW_CBOR_PATH.match(path):
                status, note = self.cloudwatch(m.group(1), body, cbor=True), f"cloudwatch.{m.group(1)}"
            elif target.startswith(CW_JSON_TARGET):
                op = target[len(CW_JSON_TARGET):]
                status, note = self.cloudwatch(op, body, cbor=False), f"cloudwatch.{op}(json)"
            elif target.startswith(ECS_TARGET):
                op = target[len(ECS_TARGET):]
                status, note = self.ecs_call(op, body), f"ecs.{op}"
            elif self.command == "GET" and EKS_CLUSTER.match(path) and self.signing_service() == "eks":
                status, note = self.eks_describe_cluster(body), "eks.DescribeCluster"
            else:
                status, note = self.elb_or_proxy(body), self._op_note(target, body)
        except Exception as exc:  # noqa: BLE001 - report, never kill the server
            log(f"ERROR {self.command} {self.path}: {exc!r}")
            status, note = 500, "error"
            try:
                self._json(500, {"__type": "InternalFailure", "message": f"local router: {exc}"})
            except OSError:
                pass
        function = self.calling_function()
        if function:
            self.state.count(note, **self.extra)
            if not path.startswith("/_local/"):
                self.record_call(function, path, target, body, status)
        self._log(status, note, started)

    def calling_function(self) -> str | None:
        """The controller function making this call, from the app id in its user agent."""
        ua = self.headers.get("User-Agent", "") + " " + self.headers.get("x-amz-user-agent", "")
        return next((m.group(1) for m in APP_ID.finditer(ua) if m.group(1) in KNOWN_FUNCTIONS), None)

    def record_call(self, function: str, path: str, target: str, body: bytes, status: int) -> None:
        """Records the call with what IAM authorizes for it (authz.py), for the role check."""
        if not authz.calls_log_path():
            return
        try:
            cw = CW_CBOR_PATH.match(path)
            cw_op = cw.group(1) if cw else (target[len(CW_JSON_TARGET):] if target.startswith(CW_JSON_TARGET) else None)
            service, op, params = authz.operation_of(path, "" if cw_op else target, body,
                                                     urllib.parse.urlsplit(self.path).query, cw_op)
            if cw_op and body:
                params = cbor2.loads(body) if cw else json.loads(body)
            if LAMBDA_INVOKE.match(path):
                service, op, params = "lambda", "Invoke", {"FunctionName": LAMBDA_INVOKE.match(path).group(1)}
            elif self.signing_service() == "eks":  # REST-JSON: the operation is the method and path
                m = EKS_CLUSTER.match(path)
                if m and self.command == "GET":
                    service, op, params = "eks", "DescribeCluster", {"name": urllib.parse.unquote(m.group(1))}
                else:
                    service, op, params = "eks", f"{self.command} {path}", {}
            response = None
            if service == "ecs" and op == "RegisterTaskDefinition" and self.last_sent:
                try:
                    response = json.loads(self.last_sent)
                except ValueError:
                    response = None
            found = authz.authorizations(service, op, params, self.region(), response, self.state.state_machine_arn)
            authz.record(function, service, op, status, found)
        except Exception as exc:  # noqa: BLE001 - record what happened; the check fails on it
            log(f"recording {function}'s call failed: {exc!r}")
            authz.record(function, "unknown", f"{self.command} {path}", status,
                         [authz.auth(None, "*", error=repr(exc))])

    def _op_note(self, target: str, body: bytes) -> str:
        if target:
            return target.split(".")[-1]
        m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body) or re.search(r"Action=([A-Za-z]+)", self.path)
        if m:
            a = m.group(1)
            return a.decode() if isinstance(a, bytes) else a
        return "proxy"

    # --- moto proxy ---------------------------------------------------------------------
    def moto(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        u = urllib.parse.urlsplit(self.state.moto_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def proxy(self, body: bytes) -> int:
        target = self.headers.get("X-Amz-Target", "")
        if target.removeprefix("DynamoDB_20120810.") in DYNAMODB_WRITES:
            with self.state.dynamodb_writes:
                status, headers, data = self.moto(body)
        else:
            status, headers, data = self.moto(body)
        if status == 200 and target.startswith("DynamoDB_20120810."):
            try:
                out = json.loads(data or b"{}")
                if "Count" in out:  # Query: items the table read (ScannedCount) vs returned (Count)
                    self.extra = {"dynamodb_items_returned": out["Count"],
                                  "dynamodb_items_scanned": out.get("ScannedCount", out["Count"])}
            except ValueError:
                pass
        self._send(status, data, headers)
        return status

    def elb_or_proxy(self, body: bytes) -> int:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if params.get("Action") == "DescribeTargetHealth" and params.get("TargetGroupArn") in self.ecs.sick_target_groups():
            status, headers, data = self.moto(body)
            if status == 200:
                data = rewrite_target_health(data.decode()).encode()
            self._send(status, data, headers)
            return status
        return self.proxy(body)

    # --- Lambda --------------------------------------------------------------------------
    def lambda_invoke(self, name_or_arn: str, body: bytes) -> int:
        if name_or_arn.startswith("arn:"):
            parts = name_or_arn.split(":")
            name = parts[6] if len(parts) > 6 else name_or_arn
        else:
            name = name_or_arn.split(":")[0]
        if self.headers.get("X-Amz-Invocation-Type") == "Event":
            threading.Thread(target=self._call_lambda, args=(name, body), daemon=True).start()
            self._send(202, b"", {"X-Amz-Executed-Version": "$LATEST"})
            return 202
        began = time.time()
        try:
            status, data = self._call_lambda(name, body)
            ended = time.time()
            with self.state.stats_lock:
                # start/end (epoch seconds) let a test see invocations that really overlapped
                self.state.invocations.append({"function": name, "ms": round((ended - began) * 1000, 1),
                                               "status": status, "start": began, "end": ended})
        except OSError as exc:
            self._send(500, json.dumps({"Type": "Service", "message": f"cargo lambda watch unreachable at {self.state.lambda_url}: {exc}"}).encode(),
                       {"Content-Type": "application/json", "x-amzn-ErrorType": "ServiceException"})
            return 500
        if status == 404:
            self._send(404, json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode(),
                       {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"})
            return 404
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if status >= 500:
            headers["X-Amz-Function-Error"] = "Unhandled"
        elif "Boto" in self.headers.get("User-Agent", "") and self.state.draw_fault(lambda_call=True):
            # The function ran (its side effects stand); its process "died" before answering.
            log(f"FAULT lambda-crash {name}")
            headers["X-Amz-Function-Error"] = "Unhandled"
            data = json.dumps({"errorType": "Runtime.ExitError",
                               "errorMessage": "Runtime exited with error: signal: killed (injected by the local router)"}).encode()
        self._send(200, data, headers)
        return 200

    def _call_lambda(self, name: str, body: bytes) -> tuple[int, bytes]:
        u = urllib.parse.urlsplit(self.state.lambda_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=900)
        try:
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 300:
                log(f"lambda {name}: HTTP {resp.status} {data[:300]!r}")
            return resp.status, data
        finally:
            conn.close()

    # --- CloudWatch ----------------------------------------------------------------------
    def cloudwatch(self, op: str, body: bytes, cbor: bool) -> int:
        def encode(obj) -> bytes:
            return cbor2.dumps(cbor_ready(obj)) if cbor else json.dumps(json_ready(obj)).encode()

        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"} if cbor \
            else {"Content-Type": "application/x-amz-json-1.0"}
        headers["x-amzn-RequestId"] = str(uuid.uuid4())
        try:
            params = (cbor2.loads(body) if cbor else json.loads(body)) if body else {}
            if op == "GetMetricData":
                self.extra = {"cloudwatch_metrics_requested": len(params.get("MetricDataQueries") or [])}
            out = self.cw.call(op, params, self.region())
            self._send(200, encode(out), headers)
            return 200
        except ApiError as e:
            headers["x-amzn-query-error"] = f"{e.code};{e.fault}"
            err = {"__type": f"com.amazonaws.cloudwatch#{e.code}", "message": e.message}
            status = 400 if cbor or e.status < 500 else e.status
            self._send(status, encode(err), headers)
            return status

    # --- ECS -------------------------------------------------------------------------------
    def ecs_call(self, op: str, body: bytes) -> int:
        status, headers, data = self.moto(body)
        if status == 200 and op in ("CreateService", "UpdateService", "DescribeServices"):
            try:
                req, resp = json.loads(body or b"{}"), json.loads(data)
                if op == "DescribeServices":
                    data = json.dumps(self.ecs.rewrite_describe(resp)).encode()
                else:
                    self.ecs.after_write(op, req, resp, self.region())
            except Exception as exc:  # noqa: BLE001 - never hide moto's answer
                log(f"ecs stand-in failed on {op}: {exc!r}")
        self._send(status, data, headers)
        return status

    # --- EKS ---------------------------------------------------------------------------------
    def eks_describe_cluster(self, body: bytes) -> int:
        """moto's DescribeCluster, with the cluster's API server being the Kubernetes stand-in:
        its https endpoint and, as EKS gives it, the base64 of its CA certificate's PEM."""
        status, headers, data = self.moto(body)
        if status == 200 and self.state.kube_url:
            try:
                out = json.loads(data)
                with open(self.state.kube_ca, "rb") as f:
                    ca = f.read()
                cluster = out.get("cluster") or {}
                cluster["endpoint"] = self.state.kube_url
                cluster["certificateAuthority"] = {"data": base64.b64encode(ca).decode()}
                data = json.dumps(out).encode()
            except (OSError, ValueError, TypeError) as exc:
                log(f"eks: cannot point DescribeCluster at the Kubernetes stand-in: {exc!r}")
        self._send(status, data, headers)
        return status

    def kube_control(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        """Forwards a scenario control to the Kubernetes API stand-in."""
        s = self.state
        if not s.kube_url:
            return 503, {"error": "no Kubernetes API stand-in configured (router --kube)"}
        u = urllib.parse.urlsplit(s.kube_url)
        ctx = ssl.create_default_context(cafile=s.kube_ca)
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30, context=ctx)
        try:
            conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            try:
                return resp.status, json.loads(data or b"{}")
            except ValueError:
                return resp.status, {"error": data.decode("utf-8", "replace")}
        except (OSError, ssl.SSLError) as exc:
            return 502, {"error": f"Kubernetes API stand-in unreachable at {s.kube_url}: {exc}"}
        finally:
            conn.close()

    # --- control -----------------------------------------------------------------------------
    def local(self, path: str, body: bytes) -> int:
        try:
            req = json.loads(body) if body else {}
        except json.JSONDecodeError as exc:
            self._json(400, {"error": f"invalid JSON: {exc}"})
            return 400
        s = self.state
        if path.startswith("/_local/eks/"):
            status, out = self.kube_control(self.command, path, body)
            self._json(status, out)
            return status
        try:
            if path == "/_local/health":
                self._json(200, {"ok": True, "moto": s.moto_url, "lambda": s.lambda_url})
            elif path == "/_local/state" and self.command == "GET":
                self._json(200, self.snapshot())
            elif path == "/_local/traffic" and self.command == "POST":
                with s.lock:
                    if "rps" in req:
                        s.rps = float(req["rps"])
                    if "publication_delay_seconds" in req:
                        delay = float(req["publication_delay_seconds"])
                        if not 0 <= delay <= 900:
                            raise ApiError("InvalidParameterValue", "publication_delay_seconds must be 0..900", status=400)
                        s.publication_delay = delay
                    tg = req.get("target_group_arn")
                    if tg:
                        if req.get("clear"):
                            s.profiles.pop(tg, None)
                        else:
                            prof = s.profiles.setdefault(tg, {})
                            for k in ("error_rate", "p99_ms", "from_weight"):
                                if k in req and req[k] is not None:
                                    prof[k] = float(req[k])
                self._json(200, self.snapshot()["traffic"])
            elif path == "/_local/alarm" and self.command == "POST":
                name, state_value = req.get("name"), req.get("state", "ALARM")
                if not name or state_value not in VALID_STATES:
                    self._json(400, {"error": f"need name and state in {sorted(VALID_STATES)}"})
                    return 400
                now = time.time()
                with s.lock:
                    alarm = s.alarms.get(name) or self.cw.new_alarm(name, self.region(), now)
                    s.alarms[name] = alarm
                    set_alarm_state(alarm, state_value, req.get("reason") or f"Set to {state_value} by the local scenario", now)
                    out = dict(alarm)
                self._json(200, alarm_view(out))
            elif path == "/_local/ecs/never-healthy" and self.command == "POST":
                tgs = self.ecs.mark_never_healthy(req.get("cluster", "default"), req["service"], self.region(),
                                                  on=req.get("never_healthy", True))
                self._json(200, {"cluster": short_name(req.get("cluster")), "service": short_name(req["service"]),
                                 "never_healthy": bool(req.get("never_healthy", True)), "target_group_arns": tgs})
            elif path == "/_local/stats" and self.command == "GET":
                self._json(200, s.stats())
            elif path == "/_local/stats/reset" and self.command == "POST":
                s.reset_stats()
                self._json(200, s.stats())
            elif path == "/_local/faults" and self.command == "POST":
                rate, crash = float(req.get("rate", 0)), float(req.get("lambda_crash_rate", 0))
                kinds = req.get("kinds") or list(FAULT_KINDS)
                if not (0 <= rate <= 1 and 0 <= crash <= 1) or any(k not in FAULT_KINDS for k in kinds):
                    self._json(400, {"error": f"rate and lambda_crash_rate in 0..1, kinds from {list(FAULT_KINDS)}"})
                    return 400
                with s.stats_lock:
                    s.faults = None if rate == 0 and crash == 0 else {
                        "rate": rate, "lambda_crash_rate": crash, "kinds": kinds,
                        "rng": random.Random(req.get("seed", 0))}
                self._json(200, {"rate": rate, "lambda_crash_rate": crash, "kinds": kinds, "seed": req.get("seed", 0)})
            elif path == "/_local/reset" and self.command == "POST":
                s.reset()
                if s.kube_url:
                    status, out = self.kube_control("POST", "/_local/reset", b"")
                    if status != 200:
                        self._json(status, {"error": f"Kubernetes API stand-in reset failed: {out}"})
                        return status
                self._json(200, self.snapshot())
            else:
                self._json(404, {"error": f"no control endpoint {self.command} {path}"})
                return 404
        except ApiError as e:
            self._json(e.status, {"error": e.message})
            return e.status
        except KeyError as e:
            self._json(400, {"error": f"missing field {e}"})
            return 400
        return 200

    def snapshot(self) -> dict:
        s = self.state
        with s.lock:
            return {
                "traffic": {"rps": s.rps, "publication_delay_seconds": s.publication_delay, "defaults": {"error_rate": DEFAULT_ERROR_RATE, "p99_ms": DEFAULT_P99_MS},
                            "profiles": {k: dict(v) for k, v in s.profiles.items()}},
                "alarms": [alarm_view(a) for a in s.alarms.values()],
                "never_healthy": [{"cluster": c, "service": n, "target_group_arns": t} for (c, n), t in s.never_healthy.items()],
                "ecs_deployments": [{"cluster": c, "service": n, **{k: v for k, v in d.items() if k != "tasks"}}
                                    for (c, n), d in s.deployments.items()],
            }


def alarm_view(alarm: dict) -> dict:
    return {"name": alarm["AlarmName"], "arn": alarm["AlarmArn"], "state": alarm["StateValue"],
            "reason": alarm.get("StateReason"), "updated": iso(alarm["StateUpdatedTimestamp"])}


class Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5. A burst of concurrent callers (CI fanning out
    # 100 API requests at once) overflows it; the kernel then falls back to SYN cookies and some
    # callers see "connection reset by peer". AWS endpoints take bursts, so the router must too.
    request_queue_size = 1024
    daemon_threads = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("BLUEGREEN_ROUTER_PORT", "4566")))
    ap.add_argument("--moto", default=os.environ.get("BLUEGREEN_MOTO_URL", "http://127.0.0.1:4567"))
    ap.add_argument("--lambda", dest="lambda_url", default=os.environ.get("BLUEGREEN_LAMBDA_URL", "http://127.0.0.1:9000"))
    ap.add_argument("--kube", dest="kube_url", default=os.environ.get("BLUEGREEN_KUBE_URL"),
                    help="the Kubernetes API stand-in (https) that EKS DescribeCluster points at")
    ap.add_argument("--kube-ca", default=os.environ.get("BLUEGREEN_KUBE_CA"), help="its CA certificate (PEM)")
    args = ap.parse_args()
    if bool(args.kube_url) != bool(args.kube_ca):
        sys.exit("router: --kube and --kube-ca go together")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("router: refusing to listen on anything but loopback")
    state = State(args.moto, args.lambda_url, args.kube_url, args.kube_ca)
    Handler.state, Handler.cw, Handler.ecs = state, CloudWatch(state), Ecs(state)
    server = Server((args.host, args.port), Handler)
    log(f"router listening on http://{args.host}:{args.port} (moto {state.moto_url}, lambda {state.lambda_url})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
