#!/usr/bin/env python3
"""Checks the local stack's EKS side against the real APIs' behaviour, on a running stack
(python3 local-stack/stack.py up [--no-watch]); `make kube-check` starts one.

Provisions an EKS environment, then, as the controller would: DescribeCluster through the router
(endpoint and CA of the Kubernetes stand-in), an `aws eks get-token` token, and over TLS verified
against that CA: get the green Deployment, patch its image and watch the pods roll and the
target group's targets change in moto; an image that cannot be pulled and a container that
crashes, with their pods, events and ProgressDeadlineExceeded; 401 without a valid token; 403
for a forbidden verb; the calls recorded for the IAM/RBAC checks. Exits 1 on the first failure.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import kube  # noqa: E402

REGION = "us-east-1"
SERVICE, ENV = "kube-check", "t"
NS = SERVICE
FUNCTION = "deploy-green"  # the calls are made in its name, so they are recorded
CHECKS = 0


def check(cond: bool, what: str, detail=None) -> None:
    global CHECKS
    CHECKS += 1
    if not cond:
        extra = "" if detail is None else f"\n  got: {json.dumps(detail, default=str)[:1500]}"
        sys.exit(f"kube-check: FAILED: {what}{extra}")


def wait(what: str, probe, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = probe()
        if ok:
            return last
        time.sleep(0.2)
    check(False, f"{what} (within {timeout:.0f} s)", last)


def main() -> None:
    state = json.loads((ROOT / ".local-stack" / "stack.json").read_text())
    router, kube_url = state["endpoints"]["aws"], state["endpoints"]["kube"]
    calls_log = ROOT / ".local-stack" / "calls.jsonl"
    env = dict(os.environ, BLUEGREEN_ENDPOINT=router)
    out = subprocess.run([sys.executable, str(HERE / "provision.py"), "environment", "--platform", "eks",
                          "--service", SERVICE, "--environment", ENV, "--version", "1.0.0"],
                         env=env, capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, "provision.py environment --platform eks", out.stderr[-2000:])
    e = json.loads(out.stdout)
    compute = e["compute"]
    check(compute == {"platform": "eks", "cluster": f"{SERVICE}-{ENV}", "namespace": NS,
                      "blue_deployment": f"{SERVICE}-blue", "green_deployment": f"{SERVICE}-green",
                      "container": SERVICE}, "the environment's compute", compute)
    cluster, green, tg = compute["cluster"], compute["green_deployment"], e["green_target_group_arn"]

    def aws(service: str):
        return boto3.client(service, endpoint_url=router, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))

    # EKS DescribeCluster: the stand-in's endpoint and CA, as EKS gives them ----------------------
    described = aws("eks").describe_cluster(name=cluster)["cluster"]
    ca_pem = base64.b64decode(described["certificateAuthority"]["data"])
    check(described["endpoint"] == kube_url, "DescribeCluster endpoint is the stand-in", described["endpoint"])
    check(ca_pem.startswith(b"-----BEGIN CERTIFICATE-----") and
          ca_pem == (ROOT / ".local-stack" / "kube-ca.pem").read_bytes(), "certificateAuthority.data = base64(CA PEM)")
    try:
        aws("eks").describe_cluster(name="no-such-cluster")
        check(False, "DescribeCluster of an unknown cluster fails")
    except ClientError as err:
        check(err.response["Error"]["Code"] == "ResourceNotFoundException", "unknown cluster: ResourceNotFoundException",
              err.response["Error"])

    client = kube.Client(described["endpoint"], ca_pem, lambda: kube.eks_token(cluster),
                         user_agent=f"aws-sdk-rust/1.3 os/linux lang/rust app/{FUNCTION}")
    apps = f"/apis/apps/v1/namespaces/{NS}/deployments"
    elb = aws("elbv2")

    def targets() -> list[str]:
        return sorted(d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                      if d["TargetHealth"]["State"] == "healthy")

    def pods(selector: str) -> list[dict]:
        status, body = client.request("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector={urllib.parse.quote(selector)}")
        check(status == 200 and body.get("kind") == "PodList", "list pods", body)
        return body["items"]

    def events(field_selector: str) -> list[dict]:
        status, body = client.request("GET", f"/api/v1/namespaces/{NS}/events?fieldSelector="
                                      f"{urllib.parse.quote(field_selector)}")
        check(status == 200 and body.get("kind") == "EventList", "list events", body)
        return body["items"]

    # GET the deployment ----------------------------------------------------------------------
    status, d = client.request("GET", f"{apps}/{green}")
    check(status == 200 and d["kind"] == "Deployment" and d["apiVersion"] == "apps/v1", "GET deployment", d)
    meta, spec, st = d["metadata"], d["spec"], d["status"]
    check(meta["name"] == green and meta["namespace"] == NS and meta["uid"] and meta["resourceVersion"]
          and meta["generation"] == 1 and meta["annotations"]["deployment.kubernetes.io/revision"] == "1",
          "deployment metadata", meta)
    container = spec["template"]["spec"]["containers"][0]
    check(spec["replicas"] == 3 and spec["selector"]["matchLabels"] == {"app": SERVICE, "color": "green"}
          and spec["progressDeadlineSeconds"] == 600 and container["name"] == SERVICE
          and container["image"] == f"{e['image_repository']}:1.0.0" and container["ports"], "deployment spec", spec)
    check(st["observedGeneration"] == 1 and st["replicas"] == st["updatedReplicas"] == st["readyReplicas"]
          == st["availableReplicas"] == 3 and "unavailableReplicas" not in st, "deployment status", st)
    conds = {c["type"]: c for c in st["conditions"]}
    check(conds["Available"]["status"] == "True" and conds["Progressing"]["reason"] == "NewReplicaSetAvailable",
          "conditions after the first rollout", conds)
    first_pods = pods("app=kube-check,color=green")
    check(len(first_pods) == 3 and all(p["status"]["phase"] == "Running" for p in first_pods),
          "three Running pods", first_pods)
    old_ips = sorted(p["status"]["podIP"] for p in first_pods)
    check(targets() == old_ips, "green's target group holds the pods' IPs", {"targets": targets(), "pods": old_ips})
    p0 = first_pods[0]
    h = p0["metadata"]["labels"]["pod-template-hash"]
    check(p0["metadata"]["name"].startswith(f"{green}-{h}-") and len(p0["metadata"]["name"]) == len(f"{green}-{h}-") + 5
          and p0["metadata"]["ownerReferences"][0] == {**p0["metadata"]["ownerReferences"][0],
                                                       "kind": "ReplicaSet", "name": f"{green}-{h}"},
          "pod name and owner", p0["metadata"])
    cs = p0["status"]["containerStatuses"][0]
    check(cs["ready"] and "running" in cs["state"] and cs["restartCount"] == 0
          and any(c["type"] == "Ready" and c["status"] == "True" for c in p0["status"]["conditions"]),
          "a Ready pod's status", p0["status"])
    status, body = client.request("GET", f"{apps}/nope")
    check(status == 404 and body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": 'deployments.apps "nope" not found', "reason": "NotFound",
                                     "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404},
          "404 NotFound Status", body)

    # 401 ---------------------------------------------------------------------------------------
    unauthorized = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    good = kube.eks_token(cluster)
    url = base64.urlsafe_b64decode(good[len("k8s-aws-v1."):] + "==").decode()

    def token_of(u: str) -> str:
        return "k8s-aws-v1." + base64.urlsafe_b64encode(u.encode()).decode().rstrip("=")

    stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    bad_tokens = {
        "no token": "",
        "not an EKS token": "abc.def",
        "an expired token": token_of(url.replace(q["X-Amz-Date"], stale)),
        "a token valid for 900 s": token_of(url.replace("X-Amz-Expires=60", "X-Amz-Expires=900")),
        "another host": token_of(url.replace("sts.us-east-1.amazonaws.com", "sts.example.com")),
        "no x-k8s-aws-id signed": token_of(url.replace("x-k8s-aws-id", "x-other")),
        "no signature": token_of(url.split("&X-Amz-Signature=")[0]),
        "padded base64": good + "==",
    }
    for what, token in bad_tokens.items():
        status, body = client.request("GET", f"{apps}/{green}", token=token)
        check(status == 401 and body == unauthorized, f"401 for {what}", body)
    status, _ = client.request("GET", f"{apps}/{green}", token=good)
    check(status == 200, "the unaltered token is accepted")

    # PATCH --------------------------------------------------------------------------------------
    patch_path = f"{apps}/{green}?fieldManager=bluegreen"
    status, body = client.request("PATCH", patch_path, {"spec": {}}, content_type="application/json")
    check(status == 415 and body["reason"] == "UnsupportedMediaType", "415 for application/json", body)
    smp = "application/strategic-merge-patch+json"
    status, same = client.request("PATCH", patch_path, {"spec": {"template": {"spec": {"containers": [
        {"name": SERVICE, "image": container["image"]}]}}}}, content_type=smp)
    check(status == 200 and same["metadata"]["generation"] == 1
          and same["metadata"]["resourceVersion"] == meta["resourceVersion"], "a patch that changes nothing", same)
    image2 = f"{e['image_repository']}:1.1.0"
    status, patched = client.request("PATCH", patch_path, {
        "metadata": {"annotations": {"bluegreen/deployment-id": "d-1", "bluegreen/version": "1.1.0"}},
        "spec": {"template": {"metadata": {"annotations": {"bluegreen/deployment-id": "d-1"}},
                              "spec": {"containers": [{"name": SERVICE, "image": image2}]}}}}, content_type=smp)
    pc = patched["spec"]["template"]["spec"]["containers"]
    check(status == 200 and patched["metadata"]["generation"] == 2
          and patched["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
          and patched["metadata"]["annotations"]["bluegreen/version"] == "1.1.0"
          and len(pc) == 1 and pc[0]["image"] == image2 and pc[0]["ports"] == container["ports"]
          and any(m["manager"] == "bluegreen" for m in patched["metadata"]["managedFields"]),
          "the image patch (merged by container name, fieldManager kept)", patched)
    d = wait("the rollout completes", lambda: (lambda s_d: (
        s_d[1]["status"].get("observedGeneration") == 2 and s_d[1]["status"].get("updatedReplicas") == 3
        and s_d[1]["status"].get("availableReplicas") == 3 and s_d[1]["status"].get("replicas") == 3, s_d[1]))(
        client.request("GET", f"{apps}/{green}")))
    check({c["type"]: c["reason"] for c in d["status"]["conditions"]}
          == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}, "conditions", d)
    new_pods = pods("app=kube-check,color=green")
    new_ips = sorted(p["status"]["podIP"] for p in new_pods)
    new_hash = new_pods[0]["metadata"]["labels"]["pod-template-hash"]
    check(new_hash != h and all(p["spec"]["containers"][0]["image"] == image2 for p in new_pods)
          and not set(new_ips) & set(old_ips), "new pods with a new pod-template-hash", new_pods)
    wait("green's targets are the new pods", lambda: (targets() == new_ips, {"targets": targets(), "pods": new_ips}))
    evs = events(f"involvedObject.kind=Pod,involvedObject.name={new_pods[0]['metadata']['name']}")
    check([ev["reason"] for ev in evs] == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
          and all(ev["involvedObject"]["namespace"] == NS and ev["count"] == 1 and ev["firstTimestamp"]
                  and ev["lastTimestamp"] and ev["type"] == "Normal" for ev in evs), "a new pod's events", evs)
    evs = events(f"involvedObject.kind=Deployment,involvedObject.name={green},reason=ScalingReplicaSet")
    msgs = [ev["message"] for ev in evs]
    check(f"Scaled up replica set {green}-{new_hash} from 0 to 3" in msgs
          and f"Scaled down replica set {green}-{h} from 3 to 0" in msgs, "ScalingReplicaSet events", msgs)
    status, rsl = client.request("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3Dkube-check,color%3Dgreen")
    check(status == 200 and sorted(r["metadata"]["name"] for r in rsl["items"]) == sorted([f"{green}-{h}", f"{green}-{new_hash}"]),
          "replicasets", rsl)

    # ImagePullBackOff ----------------------------------------------------------------------------
    req = urllib.request.Request(router + "/_local/eks/scenario", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"namespace": NS, "deployment": green, "mode": "image-pull-backoff",
                                                  "progress_deadline_seconds": 3}).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        check(resp.status == 200, "scenario image-pull-backoff through the router")
    image3 = f"{e['image_repository']}:9.9.9"
    status, _ = client.request("PATCH", patch_path, {"spec": {"template": {"spec": {"containers": [
        {"name": SERVICE, "image": image3}]}}}}, content_type=smp)
    check(status == 200, "patch to an image that cannot be pulled")

    def backoff():
        bad = [p for p in pods("app=kube-check,color=green") if p["spec"]["containers"][0]["image"] == image3]
        waiting = [((p["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting", {}).get("reason")
                   for p in bad]
        return len(bad) == 3 and waiting == ["ImagePullBackOff"] * 3, bad
    bad = wait("pods in ImagePullBackOff", backoff)
    check(all(p["status"]["phase"] == "Pending" and not p["status"]["containerStatuses"][0]["ready"] for p in bad),
          "pods Pending, not ready", bad)
    check(targets() == new_ips, "no target for the pods that cannot pull; the old ones stay", targets())
    check(len(pods("app=kube-check,color=green")) == 6, "the old pods stay")
    evs = events(f"involvedObject.name={bad[0]['metadata']['name']},type=Warning")
    msgs = [ev["message"] for ev in evs]
    check(any(m.startswith(f'Failed to pull image "{image3}"') and "not found" in m for m in msgs)
          and any(ev["reason"] == "BackOff" and ev["message"] == f'Back-off pulling image "{image3}"' for ev in
                  events(f"involvedObject.name={bad[0]['metadata']['name']}")), "Failed and BackOff events", evs)

    def deadline():
        _, dd = client.request("GET", f"{apps}/{green}")
        prog = next(c for c in dd["status"]["conditions"] if c["type"] == "Progressing")
        return prog["status"] == "False" and prog["reason"] == "ProgressDeadlineExceeded", dd
    dd = wait("Progressing False ProgressDeadlineExceeded", deadline, 10)
    check(dd["status"]["updatedReplicas"] == 3 and dd["status"]["availableReplicas"] == 3
          and dd["status"]["replicas"] == 6 and dd["status"]["unavailableReplicas"] == 3, "counts while stuck", dd["status"])

    # CrashLoopBackOff (blue) ------------------------------------------------------------------------
    blue = compute["blue_deployment"]
    req = urllib.request.Request(router + "/_local/eks/scenario", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"namespace": NS, "deployment": blue, "mode": "crash-loop-backoff"}).encode())
    with urllib.request.urlopen(req, timeout=10):
        pass
    status, _ = client.request("PATCH", f"{apps}/{blue}?fieldManager=bluegreen", {"spec": {"template": {"spec": {
        "containers": [{"name": SERVICE, "image": image2}]}}}}, content_type="application/merge-patch+json")
    check(status == 200, "merge-patch accepted")

    def crashing():
        cp = [p for p in pods("app=kube-check,color=blue") if p["spec"]["containers"][0]["image"] == image2]
        css = [(p["status"].get("containerStatuses") or [{}])[0] for p in cp]
        return len(cp) == 3 and all((c.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
                                    and c.get("restartCount", 0) >= 2 for c in css), cp
    cp = wait("pods in CrashLoopBackOff with restarts", crashing)
    cs = cp[0]["status"]["containerStatuses"][0]
    check(cp[0]["status"]["phase"] == "Running" and not cs["ready"] and cs["lastState"]["terminated"]["exitCode"] == 1,
          "Running, not ready, last terminated with exit 1", cp[0]["status"])
    evs = events(f"involvedObject.name={cp[0]['metadata']['name']},reason=BackOff")
    check(len(evs) == 1 and evs[0]["count"] >= 2 and evs[0]["message"].startswith(
        f"Back-off restarting failed container {SERVICE} in pod {cp[0]['metadata']['name']}"), "BackOff event, counted", evs)

    # 403 -------------------------------------------------------------------------------------------
    def control(path: str, body: dict) -> dict:
        r = urllib.request.Request(router + path, method="POST", headers={"Content-Type": "application/json"},
                                   data=json.dumps(body).encode())
        with urllib.request.urlopen(r, timeout=10) as resp:
            return json.loads(resp.read())
    control("/_local/eks/forbid", {"namespace": NS, "verb": "patch", "resource": "deployments"})
    control("/_local/eks/forbid", {"namespace": NS, "verb": "list", "resource": "pods"})
    status, body = client.request("PATCH", patch_path, {"metadata": {"labels": {"x": "y"}}}, content_type=smp)
    check(status == 403 and body["reason"] == "Forbidden" and body["code"] == 403 and body["message"].startswith(
        f'deployments.apps "{green}" is forbidden: User "') and body["message"].endswith(
        f'" cannot patch resource "deployments" in API group "apps" in the namespace "{NS}"')
        and body["details"] == {"name": green, "group": "apps", "kind": "deployments"}, "403 on patch", body)
    status, body = client.request("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dkube-check")
    check(status == 403 and body["message"].startswith("pods is forbidden: User ")
          and body["message"].endswith(f'cannot list resource "pods" in API group "" in the namespace "{NS}"'),
          "403 on list pods", body)
    status, _ = client.request("GET", f"{apps}/{green}")
    check(status == 200, "get is still allowed")
    control("/_local/reset", {})
    status, _ = client.request("PATCH", patch_path, {"metadata": {"labels": {"x": "y"}}}, content_type=smp)
    check(status == 200, "POST /_local/reset lifts the forbidden verbs")

    # recorded calls ---------------------------------------------------------------------------------
    if calls_log.exists():
        lines = [json.loads(line) for line in calls_log.read_text().splitlines() if line.strip()]
        # this check's own calls (its namespace): after `make test` the log also holds the
        # functions' calls in the end-to-end tests' namespaces
        kube_calls = [c for c in lines if c.get("service") == "kubernetes" and c.get("namespace") == NS]
        seen = {(c["verb"], c["group"], c["resource"], c["status"]) for c in kube_calls}
        check(all(c["function"] == FUNCTION and c["authorizations"] == [] for c in kube_calls)
              and {("get", "apps", "deployments", 200), ("patch", "apps", "deployments", 200),
                   ("patch", "apps", "deployments", 403), ("patch", "apps", "deployments", 415),
                   ("list", "", "pods", 200), ("list", "", "events", 200), ("get", "apps", "deployments", 401),
                   ("list", "", "pods", 403)} <= seen
              and any(c["operation"] == "patch apps/deployments" for c in kube_calls), "the recorded calls", sorted(seen))
    print(f"kube-check: ok ({CHECKS} checks)")


if __name__ == "__main__":
    main()
