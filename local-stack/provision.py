#!/usr/bin/env python3
"""Create the project's AWS resources in the local stack (moto behind the router).

  provision.py base [--definition statemachine/blue-green.asl.json]
      DynamoDB table `bluegreen`, the state machine role, the `bluegreen-blue-green` STANDARD state
      machine (created, or its definition updated). Prints {"state_machine_arn", "table"}.

  provision.py environment --service checkout --environment dev --version 1.2.0 [--desired 2]
      ALB + blue/green target groups + HTTP:80 listener (blue 100 / green 0), ECS cluster, task
      definitions and services (both colors on --version, targets registered and healthy),
      CloudWatch alarms (OK) in the router's stand-in, ECR repository. Idempotent by names: an
      existing environment is reused and reset to that fresh state. Prints the environment JSON.

  provision.py environment --platform eks --service infra-agent --environment prd --version 1.2.0
      [--cluster NAME (<service>-<environment>)] [--namespace NS (<service>)] [--desired 3]
      The same load balancer, alarms and repository; an EKS cluster (moto) whose API server is the
      Kubernetes stand-in (kube.py); in it the Deployments <service>-blue and <service>-green
      (one container named after the service, image <repository>:<version>, rolled out: pods
      Ready, their IPs in their color's target group) and one TargetGroupBinding per color.

JSON goes to stdout only; progress goes to stderr. Endpoint: --endpoint, else $BLUEGREEN_ENDPOINT,
else http://127.0.0.1:$BLUEGREEN_ROUTER_PORT (4566).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import json
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "bluegreen"
# the names template.yaml gives them in a stack named bluegreen (the role check resolves the
# template's policies with that stack name)
STATE_MACHINE = "bluegreen-blue-green"
ROLE = "bluegreen-statemachine"
FUNCTIONS = {
    "DeployGreenFunctionArn": "deploy-green",
    "ShiftTrafficFunctionArn": "shift-traffic",
    "EvaluateFunctionArn": "evaluate",
    "FinalizeFunctionArn": "finalize",
    "RollbackFunctionArn": "rollback",
    "RequestApprovalFunctionArn": "request-approval",
}
CONTAINER_PORT = 8080

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kube  # noqa: E402 - local module, next to this file


def log(msg: str) -> None:
    print(f"provision: {msg}", file=sys.stderr, flush=True)


def endpoint_from_env() -> str:
    return os.environ.get("BLUEGREEN_ENDPOINT") or f"http://127.0.0.1:{os.environ.get('BLUEGREEN_ROUTER_PORT', '4566')}"


class Aws:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self._c = {}

    def __call__(self, service: str):
        if service not in self._c:
            self._c[service] = boto3.client(
                service, endpoint_url=self.endpoint, region_name=REGION,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 2}),
            )
        return self._c[service]

    def control(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.endpoint + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


def code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


# The stack parameters an operator deploys template.yaml with, so that the controller may act on
# these environments (README, "Parameters"): every environment provisioned here adds its
# listener, services, task roles and repository. The role check (tests/tests/iam_calls.rs)
# resolves the template's policies with them. stack.py empties the file when the stack starts.
PARAMETERS_FILE = ROOT / ".local-stack" / "parameters.json"


def add_operator_parameters(**lists: list[str]) -> None:
    PARAMETERS_FILE.parent.mkdir(exist_ok=True)
    with open(PARAMETERS_FILE, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # environments are provisioned concurrently
        f.seek(0)
        text = f.read().strip()
        current = json.loads(text) if text else {}
        for name, values in lists.items():
            current[name] = sorted(set(current.get(name, [])) | set(values))
        f.seek(0)
        f.truncate()
        f.write(json.dumps(current, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------
# base
# ------------------------------------------------------------------------------------------
def provision_base(aws: Aws, definition_path: Path) -> dict:
    ddb = aws("dynamodb")
    try:
        ddb.describe_table(TableName=TABLE)
        log(f"table {TABLE} exists")
    except ClientError as e:
        if code(e) != "ResourceNotFoundException":
            raise
        s = {"AttributeType": "S"}
        ddb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, **s} for n in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {"IndexName": idx, "Projection": {"ProjectionType": "ALL"},
                 "KeySchema": [{"AttributeName": f"{idx}pk", "KeyType": "HASH"},
                               {"AttributeName": f"{idx}sk", "KeyType": "RANGE"}]}
                for idx in ("gsi1", "gsi2")
            ],
        )
        log(f"table {TABLE} created")

    iam = aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    try:
        role_arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except ClientError as e:
        if code(e) != "NoSuchEntity":
            raise
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="invoke-phases", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                           "Resource": [lambda_arn(f) for f in FUNCTIONS.values()]}]}))
        log(f"role {ROLE} created")

    if not definition_path.is_file():
        raise SystemExit(f"provision: state machine definition not found: {definition_path}")
    definition = definition_path.read_text()
    for key, fn in FUNCTIONS.items():
        definition = definition.replace("${" + key + "}", lambda_arn(fn))
    # the service integrations, which template.yaml writes in the stack's partition
    for key, arn in SERVICE_INTEGRATIONS.items():
        definition = definition.replace("${" + key + "}", arn)
    # the topic the state machine tells "waiting for approval" (moto's Step Functions publishes
    # to moto's SNS itself)
    topic_arn = aws("sns").create_topic(Name="bluegreen-notifications")["TopicArn"]
    definition = definition.replace("${NotificationTopicArn}", topic_arn)
    json.loads(definition)  # fail here, not in moto, on a broken definition

    sfn = aws("stepfunctions")
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
        log(f"state machine {STATE_MACHINE} updated from {definition_path}")
    except ClientError as e:
        if code(e) != "StateMachineDoesNotExist":
            raise
        arn = sfn.create_state_machine(name=STATE_MACHINE, definition=definition, roleArn=role_arn,
                                       type="STANDARD")["stateMachineArn"]
        log(f"state machine {STATE_MACHINE} created from {definition_path}")
    return {"state_machine_arn": arn, "table": TABLE}


SERVICE_INTEGRATIONS = {
    "LambdaInvokeArn": "arn:aws:states:::lambda:invoke",
    "LambdaInvokeWaitForTaskTokenArn": "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "SnsPublishArn": "arn:aws:states:::sns:publish",
}


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


# ------------------------------------------------------------------------------------------
# environment
# ------------------------------------------------------------------------------------------
def check_name(kind: str, name: str, limit: int = 32) -> str:
    if len(name) > limit:
        raise SystemExit(f"provision: {kind} name {name!r} is longer than {limit} characters; use shorter service/environment names")
    return name


def load_balancer(aws: Aws, base: str) -> dict:
    """The environment's ALB, its blue/green target groups (IP targets) and the HTTP:80 listener
    forwarding blue 100 / green 0 (created, or reset to that)."""
    ec2, elb = aws("ec2"), aws("elbv2")
    lb_name = check_name("load balancer", f"bg-{base}")
    tg_names = {c: check_name("target group", f"{base}-{c}") for c in ("blue", "green")}

    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = sorted(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
                     key=lambda s: s["AvailabilityZone"])
    subnet_ids = [s["SubnetId"] for s in subnets[:2]]
    sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                               {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]

    # load balancer, target groups, listener ------------------------------------------------
    try:
        lb = elb.describe_load_balancers(Names=[lb_name])["LoadBalancers"][0]
    except ClientError as e:
        if code(e) != "LoadBalancerNotFound":
            raise
        lb = elb.create_load_balancer(Name=lb_name, Subnets=subnet_ids, SecurityGroups=[sg], Scheme="internal",
                                      Type="application", IpAddressType="ipv4")["LoadBalancers"][0]
        log(f"load balancer {lb_name} created")
    tgs = {}
    for color, name in tg_names.items():
        try:
            tgs[color] = elb.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
        except ClientError as e:
            if code(e) != "TargetGroupNotFound":
                raise
            tgs[color] = elb.create_target_group(
                Name=name, Protocol="HTTP", Port=CONTAINER_PORT, VpcId=vpc, TargetType="ip",
                HealthCheckProtocol="HTTP", HealthCheckPath="/health", HealthCheckIntervalSeconds=10,
                HealthyThresholdCount=2, UnhealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            log(f"target group {name} created")
    actions = [{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": tgs["blue"], "Weight": 100}, {"TargetGroupArn": tgs["green"], "Weight": 0}],
        "TargetGroupStickinessConfig": {"Enabled": False}}}]
    listener = next((l for l in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"] if l["Port"] == 80), None)
    if listener:
        elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=actions)
        listener_arn = listener["ListenerArn"]
        log("listener reset to blue 100 / green 0")
    else:
        listener_arn = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                           DefaultActions=actions)["Listeners"][0]["ListenerArn"]
        log("listener created (blue 100 / green 0)")
    return {"lb": lb, "tgs": tgs, "listener_arn": listener_arn, "subnet_ids": subnet_ids, "sg": sg}


def provision_environment(aws: Aws, service: str, env: str, version: str, desired: int) -> dict:
    ecs = aws("ecs")
    base = f"{service}-{env}"
    traffic = load_balancer(aws, base)
    lb, tgs, listener_arn = traffic["lb"], traffic["tgs"], traffic["listener_arn"]
    subnet_ids, sg = traffic["subnet_ids"], traffic["sg"]

    # ECS ----------------------------------------------------------------------------------------
    cluster = base
    if not [c for c in ecs.describe_clusters(clusters=[cluster])["clusters"] if c.get("status") == "ACTIVE"]:
        ecs.create_cluster(clusterName=cluster)
        log(f"cluster {cluster} created")
    image_repo = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{service}"
    # A Fargate service's usual roles (pull and log; the app's own) and tags: a new revision
    # passes the roles to ECS again and carries the tags (tagging on create).
    roles = task_roles(aws, base)
    services = {}
    for color in ("blue", "green"):
        td = ecs.register_task_definition(
            family=f"{base}-{color}", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512", taskRoleArn=roles["task"], executionRoleArn=roles["execution"],
            tags=[{"key": "service", "value": service}, {"key": "environment", "value": env}],
            containerDefinitions=[{"name": service, "image": f"{image_repo}:{version}", "essential": True,
                                   "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}]}],
        )["taskDefinition"]["taskDefinitionArn"]
        svc_name = f"{service}-{color}"
        aws.control("/_local/ecs/never-healthy", {"cluster": cluster, "service": svc_name, "never_healthy": False})
        existing = [s for s in ecs.describe_services(cluster=cluster, services=[svc_name])["services"] if s.get("status") == "ACTIVE"]
        if existing:
            ecs.update_service(cluster=cluster, service=svc_name, taskDefinition=td, desiredCount=desired,
                               forceNewDeployment=True)
            log(f"service {svc_name} reset to {version}")
        else:
            ecs.create_service(
                cluster=cluster, serviceName=svc_name, taskDefinition=td, desiredCount=desired, launchType="FARGATE",
                loadBalancers=[{"targetGroupArn": tgs[color], "containerName": service, "containerPort": CONTAINER_PORT}],
                networkConfiguration={"awsvpcConfiguration": {"subnets": subnet_ids, "securityGroups": [sg],
                                                              "assignPublicIp": "DISABLED"}},
            )
            log(f"service {svc_name} created on {version}")
        services[color] = svc_name
        aws.control("/_local/traffic", {"target_group_arn": tgs[color], "clear": True})

    alarms = alarms_and_repository(aws, service, env, lb, tgs)
    add_operator_parameters(
        ListenerArns=[listener_arn],
        EcsServiceArns=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{services[c]}" for c in ("blue", "green")],
        EcsTaskRoleArns=list(roles.values()),
        EcrRepositoryArns=[f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{service}"],
    )
    return {
        "service": service, "environment": env,
        "listener_arn": listener_arn, "load_balancer_arn": lb["LoadBalancerArn"],
        "blue_target_group_arn": tgs["blue"], "green_target_group_arn": tgs["green"],
        "cluster": cluster, "blue_service": services["blue"], "green_service": services["green"],
        "alarm_names": alarms, "image_repository": image_repo,
        "compute": {"platform": "ecs", "cluster": cluster, "blue_service": services["blue"],
                    "green_service": services["green"]},
    }


def alarms_and_repository(aws: Aws, service: str, env: str, lb: dict, tgs: dict) -> list[str]:
    """The environment's alarms (OK, in the router's CloudWatch stand-in), its ECR repository, and
    no recorded colors or lock; returns the alarms' names."""
    base = f"{service}-{env}"

    # CloudWatch alarms (router stand-in) ---------------------------------------------------------
    cw = aws("cloudwatch")
    tg_dim = [{"Name": "TargetGroup", "Value": tgs["green"].split(":", 5)[5]},
              {"Name": "LoadBalancer", "Value": lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]}]
    alarms = {
        f"{base}-green-5xx": dict(MetricName="HTTPCode_Target_5XX_Count", Statistic="Sum", Threshold=5.0,
                                  AlarmDescription=f"{service} {env}: green 5xx during a deployment"),
        f"{base}-latency": dict(MetricName="TargetResponseTime", ExtendedStatistic="p99", Threshold=0.5,
                                AlarmDescription=f"{service} {env}: green p99 latency"),
    }
    for name, spec in alarms.items():
        cw.put_metric_alarm(AlarmName=name, Namespace="AWS/ApplicationELB", Dimensions=tg_dim, Period=60,
                            EvaluationPeriods=2, DatapointsToAlarm=2, ComparisonOperator="GreaterThanThreshold",
                            TreatMissingData="notBreaching", **spec)
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="Provisioned by local-stack/provision.py")

    # ECR (optional) ---------------------------------------------------------------------------------
    try:
        ecr = aws("ecr")
        try:
            ecr.describe_repositories(repositoryNames=[service])
        except ClientError as e:
            if code(e) != "RepositoryNotFoundException":
                raise
            ecr.create_repository(repositoryName=service)
            log(f"ECR repository {service} created")
    except Exception as exc:  # noqa: BLE001 - ECR is optional locally
        log(f"ECR skipped: {exc}")

    # A fresh environment has no recorded colors or lock: forget what earlier runs recorded,
    # as the listener was just put back on blue.
    try:
        aws("dynamodb").delete_item(TableName=TABLE, Key={"pk": {"S": f"ENV#{service}#{env}"}, "sk": {"S": "STATE"}})
    except ClientError as e:
        if code(e) != "ResourceNotFoundException":
            raise
    return list(alarms)


# ------------------------------------------------------------------------------------------
# environment on EKS
# ------------------------------------------------------------------------------------------
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
EKS_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9\-_]*")


def provision_eks_environment(aws: Aws, service: str, env: str, version: str, desired: int,
                              cluster: str, namespace: str) -> dict:
    if not EKS_CLUSTER_NAME.fullmatch(cluster) or len(cluster) > 100:
        raise SystemExit(f"provision: {cluster!r} is not an EKS cluster name (letters, digits, - and _, at most 100)")
    if not DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise SystemExit(f"provision: {namespace!r} is not a Kubernetes namespace name (an RFC 1123 label)")
    if not DNS_LABEL.fullmatch(service) or len(service) > 63 - len("-green"):
        raise SystemExit(f"provision: {service!r} cannot name a container and Deployments (an RFC 1123 label)")
    base = f"{service}-{env}"
    traffic = load_balancer(aws, base)
    lb, tgs, listener_arn = traffic["lb"], traffic["tgs"], traffic["listener_arn"]

    # the cluster (moto); its API server is the Kubernetes stand-in ----------------------------------
    eks = aws("eks")
    try:
        eks.describe_cluster(name=cluster)
    except ClientError as e:
        if code(e) != "ResourceNotFoundException":
            raise
        eks.create_cluster(name=cluster, version=kube.VERSION["major"] + "." + kube.VERSION["minor"], roleArn=f"arn:aws:iam::{ACCOUNT}:role/bg-{base}-eks-cluster",
                           resourcesVpcConfig={"subnetIds": traffic["subnet_ids"], "securityGroupIds": [traffic["sg"]]})
        log(f"EKS cluster {cluster} created")
    described = eks.describe_cluster(name=cluster)["cluster"]
    client = kube.Client(described["endpoint"], base64.b64decode(described["certificateAuthority"]["data"]),
                         lambda: kube.eks_token(cluster), user_agent="bluegreen-local-stack/provision")

    def call(method: str, path: str, body=None, ok=(200, 201)) -> dict:
        status, out = client.request(method, path, body)
        if status not in ok:
            raise SystemExit(f"provision: {method} {path} -> {status}: {out.get('message', out)}")
        return out

    image_repo = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{service}"
    deployments = {c: f"{service}-{c}" for c in ("blue", "green")}
    apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    bindings = f"/apis/elbv2.k8s.aws/v1beta1/namespaces/{namespace}/targetgroupbindings"
    for color, name in deployments.items():
        # An existing environment is reset: its Deployments and bindings made again on --version.
        call("DELETE", f"{bindings}/{name}", ok=(200, 404))
        call("DELETE", f"{apps}/{name}", ok=(200, 404))
        selector = {"app": service, "color": color}
        call("POST", apps, {
            "apiVersion": "apps/v1", "kind": "Deployment",
            # as the reference's Helm chart installs it
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {**selector, "app.kubernetes.io/managed-by": "Helm"},
                         "annotations": {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": namespace}},
            "spec": {
                "replicas": desired, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": selector},
                # the stand-in starts all new pods at once; say so
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": dict(selector)},
                    "spec": {"containers": [{
                        "name": service, "image": f"{image_repo}:{version}",
                        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/health", "port": CONTAINER_PORT}, "periodSeconds": 5},
                    }]},
                },
            },
        })
        call("POST", bindings, {
            "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
            "metadata": {"name": name, "namespace": namespace},
            # serviceRef names the Deployment in the stand-in (a Service selecting its pods, in a cluster)
            "spec": {"targetGroupARN": tgs[color], "targetType": "ip",
                     "serviceRef": {"name": name, "port": CONTAINER_PORT}},
        })
        aws.control("/_local/eks/scenario", {"namespace": namespace, "deployment": name, "mode": None})
        aws.control("/_local/traffic", {"target_group_arn": tgs[color], "clear": True})
        log(f"deployment {namespace}/{name} created on {version} ({desired} replicas)")

    # rolled out: every pod Ready and registered in its target group
    elb = aws("elbv2")
    deadline = time.monotonic() + 60
    pending = dict(deployments)
    while pending:
        for color, name in list(pending.items()):
            d = call("GET", f"{apps}/{name}")
            st = d.get("status") or {}
            targets = elb.describe_target_health(TargetGroupArn=tgs[color])["TargetHealthDescriptions"]
            healthy = [t for t in targets if t["TargetHealth"]["State"] == "healthy"]
            if st.get("observedGeneration") == d["metadata"]["generation"] and \
                    st.get("updatedReplicas") == st.get("availableReplicas") == st.get("replicas") == desired and \
                    len(targets) == len(healthy) == desired:
                del pending[color]
                log(f"deployment {namespace}/{name} rolled out, {desired} targets healthy")
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"provision: {', '.join(pending.values())} did not roll out within 60 s "
                             "(see .local-stack/kube.log)")
        if pending:
            time.sleep(0.2)

    alarms = alarms_and_repository(aws, service, env, lb, tgs)
    add_operator_parameters(
        ListenerArns=[listener_arn],
        EcrRepositoryArns=[f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{service}"],
        EksClusterArns=[f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"],
    )
    return {
        "service": service, "environment": env,
        "listener_arn": listener_arn, "load_balancer_arn": lb["LoadBalancerArn"],
        "blue_target_group_arn": tgs["blue"], "green_target_group_arn": tgs["green"],
        "alarm_names": alarms, "image_repository": image_repo,
        "compute": {"platform": "eks", "cluster": cluster, "namespace": namespace,
                    "blue_deployment": deployments["blue"], "green_deployment": deployments["green"],
                    "container": service},
    }


def task_roles(aws: Aws, base: str) -> dict[str, str]:
    """The task role and the task execution role of an environment's services (created once)."""
    iam = aws("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    out = {}
    for kind, suffix in (("task", "task"), ("execution", "task-execution")):
        name = check_name("role", f"bg-{base}-{suffix}", 64)
        try:
            out[kind] = iam.get_role(RoleName=name)["Role"]["Arn"]
        except ClientError as e:
            if code(e) != "NoSuchEntity":
                raise
            try:
                out[kind] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            except ClientError as e2:  # provisioned concurrently by another run
                if code(e2) != "EntityAlreadyExists":
                    raise
                out[kind] = iam.get_role(RoleName=name)["Role"]["Arn"]
    return out


def push_image(aws: Aws, service: str, tag: str) -> dict:
    """Pushes an image manifest for `service:tag` to ECR and scans it, as CI's `docker push`
    and ECR's scan on push would. Idempotent for the same service and tag (same manifest, same
    digest). moto's scan reports one fixed HIGH finding."""
    ecr = aws("ecr")
    try:
        ecr.create_repository(repositoryName=service, imageScanningConfiguration={"scanOnPush": True})
    except ClientError as e:
        if code(e) != "RepositoryAlreadyExistsException":
            raise
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": "sha256:" + hashlib.sha256(f"{service}:{tag}:config".encode()).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                    "digest": "sha256:" + hashlib.sha256(f"{service}:{tag}:layer".encode()).hexdigest()}],
    }, sort_keys=True)
    try:
        out = ecr.put_image(repositoryName=service, imageManifest=manifest, imageTag=tag)
        digest = out["image"]["imageId"]["imageDigest"]
        log(f"pushed {service}:{tag} ({digest[:19]})")
    except ClientError as e:
        if code(e) != "ImageAlreadyExistsException":
            raise
        digest = ecr.describe_images(repositoryName=service, imageIds=[{"imageTag": tag}])["imageDetails"][0]["imageDigest"]
        log(f"{service}:{tag} was pushed before ({digest[:19]})")
    else:
        ecr.start_image_scan(repositoryName=service, imageId={"imageDigest": digest})
    add_operator_parameters(EcrRepositoryArns=[f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{service}"])
    return {"repository": service, "tag": tag, "digest": digest,
            "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{service}:{tag}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=endpoint_from_env())
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base")
    b.add_argument("--definition", type=Path, default=ROOT / "statemachine" / "blue-green.asl.json")
    e = sub.add_parser("environment")
    e.add_argument("--service", required=True)
    e.add_argument("--environment", required=True)
    e.add_argument("--version", required=True)
    e.add_argument("--platform", choices=("ecs", "eks"), default="ecs")
    e.add_argument("--desired", type=int, help="tasks (ECS, default 2) or replicas (EKS, default 3) per color")
    e.add_argument("--cluster", help="EKS cluster name (default <service>-<environment>)")
    e.add_argument("--namespace", help="Kubernetes namespace (default the service name)")
    i = sub.add_parser("image", help="push service:tag to ECR and scan it")
    i.add_argument("--service", required=True)
    i.add_argument("--tag", required=True)
    args = ap.parse_args()
    aws = Aws(args.endpoint)
    try:
        if args.cmd == "base":
            out = provision_base(aws, args.definition)
        elif args.cmd == "image":
            out = push_image(aws, args.service, args.tag)
        elif args.platform == "eks":
            out = provision_eks_environment(
                aws, args.service, args.environment, args.version, 3 if args.desired is None else args.desired,
                args.cluster or f"{args.service}-{args.environment}", args.namespace or args.service)
        else:
            out = provision_environment(aws, args.service, args.environment, args.version,
                                        2 if args.desired is None else args.desired)
    except (ClientError, OSError) as exc:
        raise SystemExit(f"provision: {exc} (is the local stack up? python local-stack/stack.py up)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
