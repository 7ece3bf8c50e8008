"""What IAM authorizes for each AWS call a controller function makes on the local stack.

The router records every call a function makes (`record`), with what AWS would check before
carrying it out: one or more authorizations, each an IAM action, the resource ARN it is
authorized on ("*" for actions without a resource type) and the request's condition keys that
the template's policies can test (ecs:CreateAction, iam:PassedToService, aws:RequestTag/...,
ecs:cluster). tests/tests/iam_calls.rs then evaluates each against the role that the calling
function has in the SAM-transformed template.yaml.

Sources: the Service Authorization Reference of each service (actions, resource types,
condition keys) and, where one API call needs more than its own action, the service's guide:
  * DynamoDB TransactWriteItems/TransactGetItems: authorized as the action of each item
    (PutItem, UpdateItem, DeleteItem, ConditionCheckItem, GetItem) on that item's table;
    a Query on an index is authorized on the index ARN (table/NAME/index/INDEX).
  * ECS RegisterTaskDefinition with tags: also ecs:TagResource on the new revision with
    ecs:CreateAction = RegisterTaskDefinition ("Grant permission to tag resources on creation");
    a task or execution role in it: iam:PassRole on that role with iam:PassedToService =
    ecs-tasks.amazonaws.com.
  * CloudWatch DescribeAlarms asking for composite alarms is authorized only on "*".
  * Step Functions SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat: on the state machine
    whose execution issued the token (the local stack runs one state machine).
  * EKS DescribeCluster: on the cluster; the calls to the cluster's Kubernetes API that follow
    are authorized by Kubernetes RBAC, not IAM (kube.py records them with no authorizations).

An operation this module does not know is recorded with action None, so the check fails on it
instead of letting a new kind of call go unchecked.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse

ACCOUNT = os.environ.get("BLUEGREEN_ACCOUNT_ID", "123456789012")

_lock = threading.Lock()


def calls_log_path() -> str | None:
    """Where the router appends one JSON line per recorded call (None: recording is off)."""
    return os.environ.get("BLUEGREEN_CALLS_LOG") or None


def auth(action: str | None, resource: str, **context) -> dict:
    out = {"action": action, "resource": resource}
    if context:
        out["context"] = context
    return out


def record(function: str, service: str, operation: str, status: int, authorizations: list[dict]) -> None:
    path = calls_log_path()
    if not path:
        return
    line = json.dumps({"function": function, "service": service, "operation": operation,
                       "status": status, "authorizations": authorizations}, sort_keys=True)
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


# ------------------------------------------------------------------------------------ protocols
def operation_of(path: str, target: str, body: bytes, query: str, cw_op: str | None) -> tuple[str, str, dict]:
    """(service, operation, request parameters) of one AWS call as the router received it."""
    if cw_op:
        return "cloudwatch", cw_op, {}
    if target:
        prefix, _, op = target.rpartition(".")
        service = {
            "DynamoDB_20120810": "dynamodb",
            "AmazonEC2ContainerServiceV20141113": "ecs",
            "AWSStepFunctions": "states",
            "AmazonEC2ContainerRegistry_V20150921": "ecr",
            "GraniteServiceVersion20100801": "cloudwatch",
        }.get(prefix, prefix)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return service, op, params if isinstance(params, dict) else {}
    params = dict(urllib.parse.parse_qsl(query))
    params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    action = params.get("Action", "")
    version = params.get("Version", "")
    service = {"2015-12-01": "elasticloadbalancing", "2011-06-15": "sts", "2010-03-31": "sns"}.get(version, "unknown")
    return service, action or path, params


# ---------------------------------------------------------------------------------- per service
def arn(service: str, region: str, rest: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{rest}"


def short(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def dynamodb(op: str, p: dict, region: str) -> list[dict]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else arn("dynamodb", region, f"table/{name}")

    if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan", "DescribeTable"):
        return [auth(f"dynamodb:{op}", table(p.get("TableName", "")))]
    if op == "Query":
        t = table(p.get("TableName", ""))
        return [auth("dynamodb:Query", f"{t}/index/{p['IndexName']}" if p.get("IndexName") else t)]
    if op == "TransactWriteItems":
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
        out = []
        for item in p.get("TransactItems") or []:
            for kind, spec in item.items():
                out.append(auth(f"dynamodb:{kinds.get(kind, kind)}" if kind in kinds else None,
                                table(spec.get("TableName", ""))))
        return out
    if op == "TransactGetItems":
        return [auth("dynamodb:GetItem", table(i.get("Get", {}).get("TableName", ""))) for i in p.get("TransactItems") or []]
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [auth(f"dynamodb:{op}", table(t)) for t in (p.get("RequestItems") or {})]
    return [auth(None, "*")]


def ecs(op: str, p: dict, region: str, response: dict | None) -> list[dict]:
    cluster_name = short(p.get("cluster") or "default")
    cluster = arn("ecs", region, f"cluster/{cluster_name}")

    def service(s: str) -> str:
        return s if s.startswith("arn:") else arn("ecs", region, f"service/{cluster_name}/{s}")

    def task(t: str) -> str:
        return t if t.startswith("arn:") else arn("ecs", region, f"task/{cluster_name}/{t}")

    def role(r: str) -> str:
        return r if r.startswith("arn:") else arn("iam", "", f"role/{r}")

    if op == "DescribeServices":
        return [auth("ecs:DescribeServices", service(s), **{"ecs:cluster": cluster}) for s in p.get("services") or []]
    if op == "UpdateService":
        ctx = {"ecs:cluster": cluster}
        if p.get("taskDefinition"):
            td = p["taskDefinition"]
            ctx["ecs:task-definition"] = td if td.startswith("arn:") else arn("ecs", region, f"task-definition/{td}")
        return [auth("ecs:UpdateService", service(p.get("service", "")), **ctx)]
    if op in ("DescribeTaskDefinition", "ListTaskDefinitions"):
        return [auth(f"ecs:{op}", "*")]
    if op == "ListTasks":
        return [auth("ecs:ListTasks", "*", **{"ecs:cluster": cluster})]
    if op == "DescribeTasks":
        return [auth("ecs:DescribeTasks", task(t), **{"ecs:cluster": cluster}) for t in p.get("tasks") or []]
    if op == "RegisterTaskDefinition":
        out = [auth("ecs:RegisterTaskDefinition", "*")]
        tags = [t for t in p.get("tags") or [] if isinstance(t, dict)]
        if tags:
            new_revision = ((response or {}).get("taskDefinition") or {}).get("taskDefinitionArn") \
                or arn("ecs", region, f"task-definition/{p.get('family', '')}:*")
            ctx = {"ecs:CreateAction": "RegisterTaskDefinition", "aws:TagKeys": [t.get("key") for t in tags]}
            for t in tags:
                ctx[f"aws:RequestTag/{t.get('key')}"] = t.get("value")
            out.append(auth("ecs:TagResource", new_revision, **ctx))
        for key in ("taskRoleArn", "executionRoleArn"):
            if p.get(key):
                out.append(auth("iam:PassRole", role(p[key]), **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}))
        return out
    return [auth(None, "*")]


def elb(op: str, p: dict, region: str) -> list[dict]:
    if op.startswith("Describe"):
        return [auth(f"elasticloadbalancing:{op}", "*")]
    if op == "ModifyListener":
        return [auth("elasticloadbalancing:ModifyListener", p.get("ListenerArn", ""))]
    if op == "ModifyRule":
        return [auth("elasticloadbalancing:ModifyRule", p.get("RuleArn", ""))]
    return [auth(None, "*")]


def cloudwatch(op: str, p: dict, region: str) -> list[dict]:
    if op == "DescribeAlarms":
        types = p.get("AlarmTypes") or ["MetricAlarm"]
        names = p.get("AlarmNames") or []
        if "CompositeAlarm" in types or not names:
            return [auth("cloudwatch:DescribeAlarms", "*")]
        return [auth("cloudwatch:DescribeAlarms", arn("cloudwatch", region, f"alarm:{n}")) for n in names]
    if op == "GetMetricData":
        return [auth("cloudwatch:GetMetricData", "*")]
    if op == "PutMetricData":
        return [auth("cloudwatch:PutMetricData", "*", **{"cloudwatch:namespace": p.get("Namespace", "")})]
    return [auth(None, "*")]


def states(op: str, p: dict, region: str, state_machine: str) -> list[dict]:
    if op in ("StartExecution", "ListExecutions", "DescribeStateMachine"):
        return [auth(f"states:{op}", p.get("stateMachineArn", ""))]
    if op in ("DescribeExecution", "StopExecution", "GetExecutionHistory"):
        return [auth(f"states:{op}", p.get("executionArn", ""))]
    if op in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        return [auth(f"states:{op}", state_machine)]
    return [auth(None, "*")]


def ecr(op: str, p: dict, region: str) -> list[dict]:
    if op in ("DescribeImages", "DescribeImageScanFindings", "BatchGetImage", "ListImages", "DescribeRepositories"):
        repos = [p["repositoryName"]] if p.get("repositoryName") else p.get("repositoryNames") or []
        account = p.get("registryId") or ACCOUNT
        return [auth(f"ecr:{op}", arn("ecr", region, f"repository/{r}", account)) for r in repos] or [auth(f"ecr:{op}", "*")]
    return [auth(None, "*")]


def eks(op: str, p: dict, region: str) -> list[dict]:
    """Service Authorization Reference, Amazon EKS: DescribeCluster on the cluster resource
    arn:${Partition}:eks:${Region}:${Account}:cluster/${ClusterName}. The calls to the cluster's
    Kubernetes API need no IAM action (Kubernetes RBAC authorizes them; kube.py records them
    with no authorizations)."""
    if op == "DescribeCluster":
        return [auth("eks:DescribeCluster", arn("eks", region, f"cluster/{p.get('name', '')}"))]
    return [auth(None, "*")]


def sts(op: str, p: dict) -> list[dict]:
    if op == "AssumeRole":
        return [auth("sts:AssumeRole", p.get("RoleArn", ""))]
    if op == "GetCallerIdentity":
        return []  # needs no permission
    return [auth(None, "*")]


def authorizations(service: str, op: str, params: dict, region: str, response: dict | None,
                   state_machine: str) -> list[dict]:
    if service == "dynamodb":
        return dynamodb(op, params, region)
    if service == "ecs":
        return ecs(op, params, region, response)
    if service == "elasticloadbalancing":
        return elb(op, params, region)
    if service == "cloudwatch":
        return cloudwatch(op, params, region)
    if service == "states":
        return states(op, params, region, state_machine)
    if service == "ecr":
        return ecr(op, params, region)
    if service == "sts":
        return sts(op, params)
    if service == "eks":
        return eks(op, params, region)
    return [auth(None, "*")]
