#!/usr/bin/env python3
"""Kubernetes API stand-in for the local stack: what an EKS cluster's API server serves to the
controller, over HTTPS, for every cluster the local EKS knows (moto has no Kubernetes API).

Serves the real REST paths and JSON:
  * apps/v1 Deployments   GET, PATCH (strategic-merge-patch+json, merge-patch+json), POST, DELETE
                          /apis/apps/v1/namespaces/{ns}/deployments[/{name}]
  * apps/v1 ReplicaSets   GET (list, labelSelector)  /apis/apps/v1/namespaces/{ns}/replicasets
  * core/v1 Pods          GET (list, labelSelector)  /api/v1/namespaces/{ns}/pods
  * core/v1 Events        GET (list, fieldSelector)  /api/v1/namespaces/{ns}/events
  * elbv2.k8s.aws/v1beta1 TargetGroupBindings  GET, POST, DELETE
                          /apis/elbv2.k8s.aws/v1beta1/namespaces/{ns}/targetgroupbindings[/{name}]
Errors are `Status` objects with the real reason and code.

Authentication as EKS does it: `Authorization: Bearer k8s-aws-v1.<base64url of a presigned STS
GetCallerIdentity URL>` (what `aws eks get-token` prints). The URL's shape, expiry and date are
checked; its signature is not (the stand-in cannot call STS). Anything else: 401 Unauthorized.

Rollouts: a change to a Deployment's pod template starts a new ReplicaSet; all its pods start at
once (maxSurge 100%, maxUnavailable 0), become Running and Ready after --ready-seconds, and the
AWS Load Balancer Controller's part is played too: every TargetGroupBinding whose serviceRef names
the Deployment gets the Ready pods' IPs registered in its target group (in moto) and the others
deregistered. Then the old pods are removed. Events as the scheduler, the kubelet and the
deployment controller write them.

Scenario control (JSON, no authentication; the router forwards its /_local/eks/... here):
  POST /_local/eks/scenario {"namespace", "deployment", "mode": "image-pull-backoff" |
       "crash-loop-backoff" | null, "progress_deadline_seconds"?}
  POST /_local/eks/forbid   {"namespace", "verb", "resource", "forbid"?: true}
  POST /_local/reset        clears scenarios and forbidden verbs
  GET  /_local/eks/state, GET /healthz

Each request a controller function makes (recognised by app/<function> in its User-Agent) is
appended as one JSON line to BLUEGREEN_CALLS_LOG, like the router's AWS calls.

Usage: kube.py --port 4568 --moto http://127.0.0.1:4567 --certs-dir .local-stack
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import ipaddress
import json
import os
import random
import re
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

ACCOUNT = os.environ.get("BLUEGREEN_ACCOUNT_ID", "123456789012")
REGION = os.environ.get("AWS_REGION", "us-east-1")
# The controller's functions name themselves in their user agent (app/<function>).
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
KNOWN_FUNCTIONS = frozenset(d.name for d in FUNCTIONS_DIR.iterdir() if (d / "Cargo.toml").is_file()) \
    if FUNCTIONS_DIR.is_dir() else frozenset()
APP_ID = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+.^_`|~-]+)")
TOKEN_PREFIX = "k8s-aws-v1."
# kube-controller-manager's alphabet for generated names and hashes (no vowels, no 0/1/3)
SAFE = "bcdfghjklmnpqrstvwxz2456789"
SCENARIO_MODES = ("image-pull-backoff", "crash-loop-backoff")
MERGE_TYPES = ("application/strategic-merge-patch+json", "application/merge-patch+json")
ACCEPTED_PATCHES = ("application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json")
KINDS = {  # (group, resource) -> (kind, apiVersion, list kind)
    ("apps", "deployments"): ("Deployment", "apps/v1", "DeploymentList"),
    ("apps", "replicasets"): ("ReplicaSet", "apps/v1", "ReplicaSetList"),
    ("", "pods"): ("Pod", "v1", "PodList"),
    ("", "events"): ("Event", "v1", "EventList"),
    ("elbv2.k8s.aws", "targetgroupbindings"): ("TargetGroupBinding", "elbv2.k8s.aws/v1beta1", "TargetGroupBindingList"),
}
VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-eks-local", "gitTreeState": "clean",
           "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}
PATHS = [
    (re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|replicasets)(?:/([^/]+))?$"), "apps"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(pods|events)(?:/([^/]+))?$"), ""),
    (re.compile(r"^/apis/elbv2\.k8s\.aws/v1beta1/namespaces/([^/]+)/(targetgroupbindings)(?:/([^/]+))?$"), "elbv2.k8s.aws"),
]


def log(msg: str) -> None:
    sys.stderr.write(f"{dt.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {msg}\n")
    sys.stderr.flush()


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def suffix(n: int = 5) -> str:
    return "".join(random.choice(SAFE) for _ in range(n))


def template_hash(template: dict) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    value = int.from_bytes(digest[:8], "big")
    out = ""
    for _ in range(10):
        value, r = divmod(value, len(SAFE))
        out += SAFE[r]
    return out


# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------
def make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default.svc")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "kube-ca.pem", directory / "kube-server.pem", directory / "kube-server.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp = ca_path.with_suffix(".tmp")  # written last: its presence means the set is complete
    tmp.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tmp.replace(ca_path)
    return ca_path, cert_path, key_path


# --------------------------------------------------------------------------------------------
# errors and selectors
# --------------------------------------------------------------------------------------------
class KubeError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason}
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{qualified(group, resource)} "{name}" not found',
                     {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource})


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def split_requirements(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str | None):
    """A predicate over a label map for a Kubernetes label selector (=, ==, !=, in, notin, exists)."""
    tests = []
    for req in split_requirements(selector or ""):
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            tests.append(lambda l, k=key, o=op, vs=values: (l.get(k) in vs) if o == "in" else (l.get(k) not in vs))
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", req):
            key, op, value = m.groups()
            tests.append(lambda l, k=key, o=op, v=value: (l.get(k) == v) if o != "!=" else (l.get(k) != v))
        elif m := re.fullmatch(r"(!?)([\w./-]+)", req):
            neg, key = m.groups()
            tests.append(lambda l, k=key, n=neg: (k in l) != bool(n))
        else:
            raise bad_request(f"unable to parse requirement: {req!r}")
    return lambda labels: all(t(labels or {}) for t in tests)


EVENT_FIELDS = {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.fieldPath", "involvedObject.resourceVersion",
                "reason", "type", "source", "metadata.name", "metadata.namespace", "reportingComponent"}


def field_matcher(selector: str | None, fields: set[str]):
    tests = []
    for req in split_requirements(selector or ""):
        m = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", req)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{req}'")
        key, op, value = m.groups()
        if key not in fields:
            raise bad_request(f'"{key}" is not a known field selector: only "{", ".join(sorted(fields))}"')
        tests.append((key, op, value))

    def get(obj: dict, key: str):
        if key == "source":
            return (obj.get("source") or {}).get("component", "")
        cur = obj
        for part in key.split("."):
            cur = (cur or {}).get(part)
        return "" if cur is None else str(cur)

    return lambda obj: all((get(obj, k) == v) if o != "!=" else (get(obj, k) != v) for k, o, v in tests)


# --------------------------------------------------------------------------------------------
# merge patches
# --------------------------------------------------------------------------------------------
def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: maps merged, null deletes, everything else (lists too) replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# list fields that a strategic merge patch merges by key (k8s.io/api patchMergeKey) rather than replaces
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ports": "containerPort", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name", "tolerations": None}


def strategic_merge(target, patch, field: str = ""):
    if isinstance(patch, list):
        key = MERGE_KEYS.get(field)
        if key and isinstance(target, list):
            out = [copy.deepcopy(t) for t in target]
            for item in patch:
                if not isinstance(item, dict) or key not in item:
                    raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
                directive = item.get("$patch")
                idx = next((i for i, t in enumerate(out) if isinstance(t, dict) and t.get(key) == item[key]), None)
                if directive == "delete":
                    if idx is not None:
                        out.pop(idx)
                    continue
                clean = {k: v for k, v in item.items() if k != "$patch"}
                if idx is None:
                    out.append(strategic_merge({}, clean))
                else:
                    out[idx] = strategic_merge(out[idx], clean)
            return out
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = strategic_merge(out.get(k), v, k)
    return out


# --------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------
class Kube:
    def __init__(self, moto_url: str, ready_seconds: float, calls_log: str | None):
        self.moto_url = moto_url.rstrip("/")
        self.ready_seconds = ready_seconds
        self.calls_log = calls_log
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.rv = 1000
        self.deployments: dict[tuple[str, str], dict] = {}   # (ns, name) -> record
        self.bindings: dict[tuple[str, str], dict] = {}      # (ns, name) -> TargetGroupBinding
        self.events: dict[str, list[dict]] = {}              # ns -> events
        self.scenarios: dict[tuple[str, str], dict] = {}     # (ns, deployment) -> next rollout's mode
        self.forbidden: set[tuple[str, str, str]] = set()    # (ns, verb, resource)
        self.ip_block = 0
        self._elb = None

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def elb(self):
        if self._elb is None:
            self._elb = boto3.client("elbv2", endpoint_url=self.moto_url, region_name=REGION,
                                     aws_access_key_id="testing", aws_secret_access_key="testing",
                                     config=Config(retries={"max_attempts": 2}))
        return self._elb

    def reset(self) -> None:
        with self.lock:
            self.scenarios.clear()
            self.forbidden.clear()

    # --- events ---------------------------------------------------------------------------
    def event(self, ns: str, obj: dict, reason: str, message: str, etype: str = "Normal",
              component: str = "kubelet", field_path: str | None = None, now: float | None = None) -> None:
        """Records an event; a repeat of the same one (object, reason, message) counts up, as the
        kubelet's event correlator does."""
        now = now or time.time()
        meta = obj["metadata"]
        kind, api_version = obj["kind"], obj["apiVersion"]
        with self.lock:
            events = self.events.setdefault(ns, [])
            for ev in events:
                io = ev["involvedObject"]
                if io["uid"] == meta["uid"] and ev["reason"] == reason and ev["message"] == message:
                    ev["count"] += 1
                    ev["lastTimestamp"] = rfc3339(now)
                    ev["metadata"]["resourceVersion"] = self.next_rv()
                    return
            involved = {"kind": kind, "namespace": ns, "name": meta["name"], "uid": meta["uid"],
                        "apiVersion": api_version, "resourceVersion": meta.get("resourceVersion", "")}
            if field_path:
                involved["fieldPath"] = field_path
            host = "ip-10-1-0-10.ec2.internal"
            events.append({
                "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": ns,
                             "uid": str(uuid.uuid4()), "resourceVersion": self.next_rv(),
                             "creationTimestamp": rfc3339(now)},
                "involvedObject": involved, "reason": reason, "message": message,
                "source": {"component": component, **({"host": host} if component == "kubelet" else {})},
                "firstTimestamp": rfc3339(now), "lastTimestamp": rfc3339(now), "count": 1, "type": etype,
                "eventTime": None, "reportingComponent": component,
                "reportingInstance": host if component == "kubelet" else "",
            })

    # --- deployments -------------------------------------------------------------------------
    def create_deployment(self, ns: str, body: dict, manager: str | None = None) -> dict:
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 253:
            raise KubeError(422, "Invalid", f'Deployment.apps "{name or ""}" is invalid: metadata.name: '
                            "Required value: name or generateName is required" if not name else
                            f'Deployment.apps "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                            "'-' or '.'", {"name": name or "", "group": "apps", "kind": "Deployment"})
        if meta.get("namespace") not in (None, ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        spec = copy.deepcopy(body.get("spec") or {})
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        self.validate(name, spec)
        now = time.time()
        with self.lock:
            if (ns, name) in self.deployments:
                raise KubeError(409, "AlreadyExists", f'deployments.apps "{name}" already exists',
                                {"name": name, "group": "apps", "kind": "deployments"})
            annotations = dict(meta.get("annotations") or {})
            annotations["deployment.kubernetes.io/revision"] = "1"
            obj = {
                "kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                             "resourceVersion": self.next_rv(), "generation": 1,
                             "creationTimestamp": rfc3339(now), "labels": dict(meta.get("labels") or {}),
                             "annotations": annotations, "managedFields": []},
                "spec": spec, "status": {},
            }
            self.record_manager(obj, manager, "Update", now)
            rec = {"obj": obj, "replicasets": {}, "pods": [], "observed": 0, "conditions": {},
                   "rollout": None}
            self.deployments[(ns, name)] = rec
            self.start_rollout(ns, rec, now)
            return self.view(rec)

    def validate(self, name: str, spec: dict) -> None:
        def invalid(field: str, what: str) -> KubeError:
            return KubeError(422, "Invalid", f'Deployment.apps "{name}" is invalid: {field}: {what}',
                             {"name": name, "group": "apps", "kind": "Deployment",
                              "causes": [{"reason": "FieldValueInvalid", "message": what, "field": field}]})

        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if not selector:
            raise invalid("spec.selector", "Required value")
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            raise invalid("spec.template.metadata.labels", f"Invalid value: {json.dumps(labels)}: "
                          "`selector` does not match template `labels`")
        containers = (tmpl.get("spec") or {}).get("containers")
        if not containers:
            raise invalid("spec.template.spec.containers", "Required value")
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name"):
                raise invalid(f"spec.template.spec.containers[{i}].name", "Required value")
            if not c.get("image"):
                raise invalid(f"spec.template.spec.containers[{i}].image", "Required value")
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 0:
            raise invalid("spec.replicas", "Invalid value: must be greater than or equal to 0")
        if not isinstance(spec.get("progressDeadlineSeconds"), int) or spec["progressDeadlineSeconds"] <= 0:
            raise invalid("spec.progressDeadlineSeconds", "Invalid value: must be greater than minReadySeconds")

    def record_manager(self, obj: dict, manager: str | None, operation: str, now: float) -> None:
        managers = obj["metadata"].setdefault("managedFields", [])
        entry = next((m for m in managers if m["manager"] == manager and m["operation"] == operation), None)
        if entry is None:
            entry = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1"}
            managers.append(entry)
        entry["time"] = rfc3339(now)

    def get_deployment(self, ns: str, name: str) -> dict:
        with self.lock:
            rec = self.deployments.get((ns, name))
            if rec is None:
                raise not_found("apps", "deployments", name)
            return self.view(rec)

    def patch_deployment(self, ns: str, name: str, patch, content_type: str, manager: str | None) -> dict:
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        with self.lock:
            rec = self.deployments.get((ns, name))
            if rec is None:
                raise not_found("apps", "deployments", name)
            obj = rec["obj"]
            before = {"metadata": {k: obj["metadata"].get(k) for k in ("labels", "annotations")},
                      "spec": obj["spec"]}
            merge = strategic_merge if content_type == MERGE_TYPES[0] else merge_patch
            allowed = {"metadata": {k: v for k, v in (patch.get("metadata") or {}).items()
                                    if k in ("labels", "annotations")}}
            if "spec" in patch:
                allowed["spec"] = patch["spec"]
            after = merge(copy.deepcopy(before), allowed)
            spec = after.get("spec") or {}
            if spec.get("selector") != obj["spec"].get("selector"):
                raise KubeError(422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.selector: Invalid value: '
                                f"{json.dumps(spec.get('selector'))}: field is immutable",
                                {"name": name, "group": "apps", "kind": "Deployment",
                                 "causes": [{"reason": "FieldValueInvalid", "message": "field is immutable",
                                             "field": "spec.selector"}]})
            self.validate(name, spec)
            now = time.time()
            template_changed = spec.get("template") != obj["spec"].get("template")
            spec_changed = spec != obj["spec"]
            meta = after.get("metadata") or {}
            labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
            meta_changed = labels != (obj["metadata"].get("labels") or {}) or \
                annotations != (obj["metadata"].get("annotations") or {})
            if not (spec_changed or meta_changed):
                return self.view(rec)  # a no-op patch changes nothing, not even resourceVersion
            obj["metadata"]["labels"] = labels
            obj["metadata"]["annotations"] = annotations
            obj["spec"] = spec
            obj["metadata"]["resourceVersion"] = self.next_rv()
            self.record_manager(obj, manager, "Update", now)
            if spec_changed:
                obj["metadata"]["generation"] += 1
            if template_changed:
                self.start_rollout(ns, rec, now)
            return self.view(rec)

    def delete_deployment(self, ns: str, name: str) -> dict:
        with self.lock:
            rec = self.deployments.pop((ns, name), None)
            if rec is None:
                raise not_found("apps", "deployments", name)
            uids = {rec["obj"]["metadata"]["uid"]} | {p["metadata"]["uid"] for p in rec["pods"]}
            # The stand-in drops the events of the objects it deletes (a cluster keeps them an hour),
            # so an environment provisioned again starts clean.
            self.events[ns] = [e for e in self.events.get(ns, []) if e["involvedObject"]["uid"] not in uids]
            self.scenarios.pop((ns, name), None)  # a scenario was for that Deployment's next rollout
            rec["pods"] = []
        self.reconcile_bindings(ns, name, [])
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": "apps", "kind": "deployments", "uid": rec["obj"]["metadata"]["uid"]}}

    # --- rollouts -----------------------------------------------------------------------------
    def start_rollout(self, ns: str, rec: dict, now: float) -> None:
        obj = rec["obj"]
        name = obj["metadata"]["name"]
        template = obj["spec"]["template"]
        h = template_hash(template)
        revisions = [int(rs["revision"]) for rs in rec["replicasets"].values()]
        revision = max(revisions, default=0) + 1
        if rec["replicasets"]:  # the first ReplicaSet is revision 1 (set at create)
            obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(revision)
        scenario = self.scenarios.pop((ns, name), None)
        rs = rec["replicasets"].get(h)
        if rs is None:
            rs = {"name": f"{name}-{h}", "hash": h, "uid": str(uuid.uuid4()), "created": now}
            rec["replicasets"][h] = rs
        rs.update(revision=str(revision), template=copy.deepcopy(template))
        with_block = self.ip_block = self.ip_block % 250 + 1
        rec["rollout"] = {"hash": h, "started": now, "mode": (scenario or {}).get("mode"), "block": with_block,
                          "index": 0, "complete": False, "last_progress": now}
        if scenario and scenario.get("progress_deadline_seconds"):
            obj["spec"]["progressDeadlineSeconds"] = int(scenario["progress_deadline_seconds"])
        self.set_condition(rec, "Progressing", "True", "NewReplicaSetCreated" if revision == 1 else "ReplicaSetUpdated",
                           f'Created new replica set "{rs["name"]}"' if revision == 1
                           else f'ReplicaSet "{rs["name"]}" is progressing.', now)
        log(f"rollout {ns}/{name} -> {rs['name']} (revision {revision}, mode {rec['rollout']['mode'] or 'normal'})")

    def set_condition(self, rec: dict, ctype: str, status: str, reason: str, message: str, now: float) -> None:
        cond = rec["conditions"].get(ctype)
        if cond is None or cond["status"] != status:
            cond = {"type": ctype, "status": status, "lastTransitionTime": rfc3339(now)}
            rec["conditions"][ctype] = cond
        if cond.get("reason") != reason or cond.get("message") != message:
            cond["lastUpdateTime"] = rfc3339(now)
        cond.setdefault("lastUpdateTime", rfc3339(now))
        cond.update(reason=reason, message=message)

    def new_pod(self, ns: str, rec: dict, rs: dict, now: float) -> dict:
        ro = rec["rollout"]
        ro["index"] += 1
        tmpl = rs["template"]
        labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = rs["hash"]
        name = f"{rs['name']}-{suffix()}"
        pod = {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "generateName": f"{rs['name']}-", "namespace": ns, "uid": str(uuid.uuid4()),
                         "resourceVersion": self.next_rv(), "creationTimestamp": rfc3339(now), "labels": labels,
                         "annotations": dict((tmpl.get("metadata") or {}).get("annotations") or {}),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["name"],
                                              "uid": rs["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": copy.deepcopy(tmpl.get("spec") or {}),
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        pod["spec"].setdefault("restartPolicy", "Always")
        pod["spec"]["nodeName"] = "ip-10-1-0-10.ec2.internal"
        pod["_"] = {"hash": rs["hash"], "created": now, "mode": ro["mode"], "stage": "pending",
                    "ip": f"10.1.{ro['block']}.{ro['index']}", "restarts": 0, "next": now}
        self.event(ns, pod, "Scheduled", f"Successfully assigned {ns}/{name} to ip-10-1-0-10.ec2.internal",
                   component="default-scheduler", now=now)
        return pod

    def tick(self) -> None:
        now = time.time()
        changed: list[tuple[str, str, list[dict]]] = []
        with self.lock:
            for (ns, name), rec in list(self.deployments.items()):
                before = self.ready_targets(rec)
                self.advance(ns, rec, now)
                after = self.ready_targets(rec)
                if before != after:
                    changed.append((ns, name, after))
        for ns, name, targets in changed:
            self.reconcile_bindings(ns, name, targets)

    def advance(self, ns: str, rec: dict, now: float) -> None:
        obj = rec["obj"]
        spec = obj["spec"]
        ro = rec["rollout"]
        if ro is None:
            return
        rs = rec["replicasets"][ro["hash"]]
        desired = int(spec.get("replicas") or 0)
        current = [p for p in rec["pods"] if p["_"]["hash"] == ro["hash"]]
        if len(current) < desired:
            if not current:
                self.event(ns, obj, "ScalingReplicaSet", f"Scaled up replica set {rs['name']} from 0 to {desired}",
                           component="deployment-controller", now=now)
            for _ in range(desired - len(current)):
                pod = self.new_pod(ns, rec, rs, now)
                rec["pods"].append(pod)
                current.append(pod)
        elif len(current) > desired:
            extra = current[desired:]
            rec["pods"] = [p for p in rec["pods"] if p not in extra]
            current = current[:desired]
        for pod in current:
            self.advance_pod(ns, pod, now)
        ready = [p for p in current if p["_"]["stage"] == "ready"]
        old = [p for p in rec["pods"] if p["_"]["hash"] != ro["hash"]]
        settled = now - max(p["_"].get("ready_at", now) for p in ready) if ready else float("inf")
        if len(ready) == desired and old and settled >= min(0.5, self.ready_seconds / 2):
            # the new pods have been Ready a moment (their targets registered): remove the old ones
            by_rs: dict[str, int] = {}
            for p in old:
                by_rs[p["_"]["hash"]] = by_rs.get(p["_"]["hash"], 0) + 1
                for c in p["spec"].get("containers") or []:
                    self.event(ns, p, "Killing", f"Stopping container {c.get('name')}",
                               field_path=f"spec.containers{{{c.get('name')}}}", now=now)
            for h, count in by_rs.items():
                self.event(ns, obj, "ScalingReplicaSet",
                           f"Scaled down replica set {rec['replicasets'][h]['name']} from {count} to 0",
                           component="deployment-controller", now=now)
            rec["pods"] = current
            old = []
        if len(ready) > len(ro.get("seen_ready", [])):
            ro["last_progress"] = now
        ro["seen_ready"] = [p["metadata"]["name"] for p in ready]
        # the deployment controller's view
        rec["observed"] = obj["metadata"]["generation"]
        available = len([p for p in rec["pods"] if p["_"]["stage"] == "ready"])
        if available >= desired:
            self.set_condition(rec, "Available", "True", "MinimumReplicasAvailable",
                               "Deployment has minimum availability.", now)
        else:
            self.set_condition(rec, "Available", "False", "MinimumReplicasUnavailable",
                               "Deployment does not have minimum availability.", now)
        done = len(ready) == desired and not old
        if done and not ro["complete"]:
            ro["complete"] = True
            log(f"rollout {ns}/{obj['metadata']['name']} -> {rs['name']} complete")
        if ro["complete"]:
            self.set_condition(rec, "Progressing", "True", "NewReplicaSetAvailable",
                               f'ReplicaSet "{rs["name"]}" has successfully progressed.', now)
        elif now - ro["last_progress"] > int(spec.get("progressDeadlineSeconds") or 600):
            self.set_condition(rec, "Progressing", "False", "ProgressDeadlineExceeded",
                               f'ReplicaSet "{rs["name"]}" has timed out progressing.', now)
        else:
            self.set_condition(rec, "Progressing", "True", "ReplicaSetUpdated",
                               f'ReplicaSet "{rs["name"]}" is progressing.', now)

    def advance_pod(self, ns: str, pod: dict, now: float) -> None:
        st = pod["_"]
        if now < st["next"] or st["stage"] == "ready":
            return
        d = self.ready_seconds
        spec_containers = pod["spec"].get("containers") or []
        first = spec_containers[0] if spec_containers else {"name": "app", "image": ""}
        cname, image = first.get("name", "app"), first.get("image", "")
        fp = f"spec.containers{{{cname}}}"
        pod_id = f"{pod['metadata']['name']}_{ns}({pod['metadata']['uid']})"
        if st["stage"] == "pending":
            pod["status"].update(hostIP="10.1.0.10", podIP=st["ip"], podIPs=[{"ip": st["ip"]}],
                                 startTime=rfc3339(now))
            self.event(ns, pod, "Pulling", f'Pulling image "{image}"', field_path=fp, now=now)
            st["stage"], st["next"] = "pulling", now + d / 2
        elif st["stage"] == "pulling":
            if st["mode"] == "image-pull-backoff":
                self.event(ns, pod, "Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
                           f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
                           f"{image}: not found", "Warning", field_path=fp, now=now)
                self.event(ns, pod, "Failed", "Error: ErrImagePull", "Warning", field_path=fp, now=now)
                st["stage"], st["next"], st["waiting"] = "pull-backoff", now + d / 2, \
                    ("ErrImagePull", f'failed to pull and unpack image "{image}": failed to resolve reference '
                                     f'"{image}": {image}: not found')
            else:
                self.event(ns, pod, "Pulled", f'Successfully pulled image "{image}" in 412ms (412ms including waiting). '
                           "Image size: 48312412 bytes.", field_path=fp, now=now)
                self.event(ns, pod, "Created", f"Created container {cname}", field_path=fp, now=now)
                self.event(ns, pod, "Started", f"Started container {cname}", field_path=fp, now=now)
                st["started"] = now
                if st["mode"] == "crash-loop-backoff":
                    st["stage"], st["next"] = "crashing", now + d / 2
                else:
                    st["stage"], st["next"] = "starting", now + d / 2
        elif st["stage"] == "pull-backoff":
            self.event(ns, pod, "BackOff", f'Back-off pulling image "{image}"', field_path=fp, now=now)
            self.event(ns, pod, "Failed", "Error: ImagePullBackOff", "Warning", field_path=fp, now=now)
            st["waiting"] = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
            st["next"] = now + d
        elif st["stage"] == "starting":
            st["stage"], st["ready_at"] = "ready", now
        elif st["stage"] == "crashing":
            st["restarts"] += 1
            st["last_terminated"] = (st.get("started", now), now)
            st["waiting"] = ("CrashLoopBackOff",
                             f"back-off {min(300, 10 * 2 ** (st['restarts'] - 1))}s restarting failed "
                             f"container={cname} pod={pod_id}")
            self.event(ns, pod, "BackOff", f"Back-off restarting failed container {cname} in pod {pod_id}",
                       "Warning", field_path=fp, now=now)
            st["next"] = now + d
        self.render_pod_status(pod, now)

    def render_pod_status(self, pod: dict, now: float) -> None:
        st = pod["_"]
        status = pod["status"]
        stage = st["stage"]
        ready = stage == "ready"
        scheduled = rfc3339(st["created"])
        status["phase"] = "Running" if stage in ("ready", "starting", "crashing") else "Pending"
        status["conditions"] = [
            {"type": "PodReadyToStartContainers", "status": "True" if stage != "pending" else "False",
             "lastProbeTime": None, "lastTransitionTime": scheduled},
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
            {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None,
             "lastTransitionTime": rfc3339(st.get("ready_at", st["created"])),
             **({} if ready else {"reason": "ContainersNotReady",
                                  "message": "containers with unready status: ["
                                  + " ".join(c.get("name", "") for c in pod["spec"].get("containers") or []) + "]"})},
            {"type": "ContainersReady", "status": "True" if ready else "False", "lastProbeTime": None,
             "lastTransitionTime": rfc3339(st.get("ready_at", st["created"])),
             **({} if ready else {"reason": "ContainersNotReady",
                                  "message": "containers with unready status: ["
                                  + " ".join(c.get("name", "") for c in pod["spec"].get("containers") or []) + "]"})},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": scheduled},
        ]
        statuses = []
        for c in pod["spec"].get("containers") or []:
            cs = {"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": ready,
                  "restartCount": st["restarts"], "started": stage in ("ready", "starting"), "lastState": {}}
            if stage in ("ready", "starting"):
                cs["state"] = {"running": {"startedAt": rfc3339(st.get("started", now))}}
                cs["imageID"] = f"{c.get('image', '').split(':')[0]}@sha256:" + \
                    hashlib.sha256(c.get("image", "").encode()).hexdigest()
                cs["containerID"] = "containerd://" + hashlib.sha256(pod["metadata"]["uid"].encode()).hexdigest()
            elif "waiting" in st:
                cs["state"] = {"waiting": {"reason": st["waiting"][0], "message": st["waiting"][1]}}
            else:
                cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            if "last_terminated" in st:
                began, ended = st["last_terminated"]
                cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": rfc3339(began),
                                                  "finishedAt": rfc3339(ended),
                                                  "containerID": "containerd://" + uuid.uuid4().hex * 2}}
            statuses.append(cs)
        status["containerStatuses"] = statuses
        pod["metadata"]["resourceVersion"] = self.next_rv()

    def ready_targets(self, rec: dict) -> list[str]:
        return sorted(p["_"]["ip"] for p in rec["pods"] if p["_"]["stage"] == "ready")

    # --- the load balancer controller's part ---------------------------------------------------
    def reconcile_bindings(self, ns: str, deployment: str, ips: list[str]) -> None:
        with self.lock:
            bindings = [copy.deepcopy(b) for (bns, _), b in self.bindings.items()
                        if bns == ns and ((b.get("spec") or {}).get("serviceRef") or {}).get("name") == deployment]
        for b in bindings:
            self.reconcile(b, ips)

    def reconcile(self, binding: dict, ips: list[str]) -> None:
        spec = binding["spec"]
        tg, port = spec["targetGroupARN"], int(spec["serviceRef"]["port"])
        try:
            elb = self.elb()
            current = [d["Target"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]
            wanted = [{"Id": ip, "Port": port} for ip in ips]
            new = [t for t in wanted if t not in current]
            gone = [t for t in current if t not in wanted]
            if new:
                elb.register_targets(TargetGroupArn=tg, Targets=new)
            if gone:
                elb.deregister_targets(TargetGroupArn=tg, Targets=gone)
            if new or gone:
                log(f"targetgroupbinding {binding['metadata']['namespace']}/{binding['metadata']['name']}: "
                    f"{len(new)} registered, {len(gone)} deregistered in {tg.rsplit(':', 1)[-1]}")
        except Exception as exc:  # noqa: BLE001 - the controller retries on the next change
            log(f"targetgroupbinding {binding['metadata']['name']}: cannot reconcile {tg}: {exc!r}")

    def create_binding(self, ns: str, body: dict) -> dict:
        meta = body.get("metadata") or {}
        name = meta.get("name")
        spec = body.get("spec") or {}
        ref = spec.get("serviceRef") or {}

        def invalid(field: str, what: str) -> KubeError:
            return KubeError(422, "Invalid", f'TargetGroupBinding.elbv2.k8s.aws "{name or ""}" is invalid: {field}: {what}',
                             {"name": name or "", "group": "elbv2.k8s.aws", "kind": "TargetGroupBinding"})
        if not name:
            raise invalid("metadata.name", "Required value")
        if not str(spec.get("targetGroupARN", "")).startswith("arn:aws:elasticloadbalancing:"):
            raise invalid("spec.targetGroupARN", "Required value")
        if spec.get("targetType", "ip") not in ("ip", "instance"):
            raise invalid("spec.targetType", 'Unsupported value: supported values: "instance", "ip"')
        if not ref.get("name") or not isinstance(ref.get("port"), int):
            raise invalid("spec.serviceRef", "Required value")
        now = time.time()
        with self.lock:
            if (ns, name) in self.bindings:
                raise KubeError(409, "AlreadyExists", f'targetgroupbindings.elbv2.k8s.aws "{name}" already exists',
                                {"name": name, "group": "elbv2.k8s.aws", "kind": "targetgroupbindings"})
            obj = {"apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
                   "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "generation": 1,
                                "resourceVersion": self.next_rv(), "creationTimestamp": rfc3339(now),
                                "labels": dict(meta.get("labels") or {}), "annotations": dict(meta.get("annotations") or {})},
                   "spec": {**copy.deepcopy(spec), "targetType": spec.get("targetType", "ip")},
                   "status": {"observedGeneration": 1}}
            self.bindings[(ns, name)] = obj
            rec = self.deployments.get((ns, ref["name"]))
            ips = self.ready_targets(rec) if rec else []
        self.reconcile(obj, ips)
        return copy.deepcopy(obj)

    def delete_binding(self, ns: str, name: str) -> dict:
        with self.lock:
            obj = self.bindings.pop((ns, name), None)
        if obj is None:
            raise not_found("elbv2.k8s.aws", "targetgroupbindings", name)
        self.reconcile(obj, [])  # the controller deregisters the targets of a deleted binding
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": "elbv2.k8s.aws", "kind": "targetgroupbindings",
                            "uid": obj["metadata"]["uid"]}}

    # --- views ------------------------------------------------------------------------------------
    def view(self, rec: dict) -> dict:
        obj = copy.deepcopy(rec["obj"])
        ro = rec["rollout"]
        pods = rec["pods"]
        updated = [p for p in pods if ro and p["_"]["hash"] == ro["hash"]]
        ready = [p for p in pods if p["_"]["stage"] == "ready"]
        status = {"observedGeneration": rec["observed"], "replicas": len(pods), "updatedReplicas": len(updated),
                  "readyReplicas": len(ready), "availableReplicas": len(ready),
                  "unavailableReplicas": max(0, max(len(pods), int(obj["spec"].get("replicas") or 0)) - len(ready)),
                  "conditions": [copy.deepcopy(rec["conditions"][t]) for t in ("Available", "Progressing")
                                 if t in rec["conditions"]]}
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if status[k] == 0:
                del status[k]  # the API server omits zero counts
        obj["status"] = status
        return obj

    def pod_view(self, pod: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in pod.items() if k != "_"}

    def list(self, ns: str, group: str, resource: str, labels: str | None, fields: str | None) -> dict:
        kind, api_version, list_kind = KINDS[(group, resource)]
        with self.lock:
            if resource == "deployments":
                items = [self.view(r) for (n, _), r in sorted(self.deployments.items()) if n == ns]
            elif resource == "pods":
                items = [self.pod_view(p) for (n, _), r in sorted(self.deployments.items()) if n == ns for p in r["pods"]]
            elif resource == "replicasets":
                items = [self.rs_view(ns, r, rs) for (n, _), r in sorted(self.deployments.items()) if n == ns
                         for rs in r["replicasets"].values()]
            elif resource == "events":
                items = copy.deepcopy(self.events.get(ns, []))
            else:
                items = [copy.deepcopy(b) for (n, _), b in sorted(self.bindings.items()) if n == ns]
            rv = str(self.rv)
        match_labels = label_matcher(labels)
        if resource == "events":
            match_fields = field_matcher(fields, EVENT_FIELDS)
        else:
            match_fields = field_matcher(fields, {"metadata.name", "metadata.namespace"}
                                         | ({"status.phase", "spec.nodeName"} if resource == "pods" else set()))
        items = [i for i in items if match_labels((i.get("metadata") or {}).get("labels")) and match_fields(i)]
        for i in items:  # items of a list carry no kind/apiVersion
            i.pop("kind", None)
            i.pop("apiVersion", None)
        return {"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv}, "items": items}

    def rs_view(self, ns: str, rec: dict, rs: dict) -> dict:
        dep = rec["obj"]
        pods = [p for p in rec["pods"] if p["_"]["hash"] == rs["hash"]]
        ready = [p for p in pods if p["_"]["stage"] == "ready"]
        labels = dict((rs["template"].get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = rs["hash"]
        selector = dict(dep["spec"]["selector"]["matchLabels"], **{"pod-template-hash": rs["hash"]})
        template = copy.deepcopy(rs["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = rs["hash"]
        return {"kind": "ReplicaSet", "apiVersion": "apps/v1",
                "metadata": {"name": rs["name"], "namespace": ns, "uid": rs["uid"], "labels": labels,
                             "creationTimestamp": rfc3339(rs["created"]), "resourceVersion": str(self.rv),
                             "annotations": {"deployment.kubernetes.io/revision": rs["revision"],
                                             "deployment.kubernetes.io/desired-replicas": str(dep["spec"].get("replicas")),
                                             "deployment.kubernetes.io/max-replicas": str(dep["spec"].get("replicas"))},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": dep["metadata"]["name"], "uid": dep["metadata"]["uid"],
                                                  "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": len(pods), "selector": {"matchLabels": selector}, "template": template},
                "status": {"replicas": len(pods), "readyReplicas": len(ready), "availableReplicas": len(ready),
                           "fullyLabeledReplicas": len(pods), "observedGeneration": 1}}

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "deployments": [{"namespace": ns, "name": n, "generation": r["obj"]["metadata"]["generation"],
                                 "rollout": {k: v for k, v in (r["rollout"] or {}).items() if k != "seen_ready"},
                                 "pods": [{"name": p["metadata"]["name"], "ip": p["_"]["ip"], "stage": p["_"]["stage"]}
                                          for p in r["pods"]]}
                                for (ns, n), r in sorted(self.deployments.items())],
                "target_group_bindings": [{"namespace": ns, "name": n, "spec": b["spec"]}
                                          for (ns, n), b in sorted(self.bindings.items())],
                "scenarios": [{"namespace": ns, "deployment": d, **s} for (ns, d), s in sorted(self.scenarios.items())],
                "forbidden": [{"namespace": ns, "verb": v, "resource": r} for ns, v, r in sorted(self.forbidden)],
            }

    def record(self, function: str, verb: str, group: str, resource: str, namespace: str, name: str | None,
               status: int) -> None:
        if not self.calls_log:
            return
        op = f"{verb} {group}/{resource}" if group else f"{verb} {resource}"
        line = {"function": function, "service": "kubernetes", "operation": op, "verb": verb, "group": group,
                "resource": resource, "namespace": namespace, "name": name, "status": status,
                # IAM authorizes nothing on the cluster's API (Kubernetes RBAC does): the role
                # check sees no IAM action to evaluate for these calls.
                "authorizations": []}
        with self.log_lock, open(self.calls_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
# authentication
# --------------------------------------------------------------------------------------------
def check_token(header: str) -> str:
    """The access key of a valid EKS bearer token; raises KubeError(401) otherwise."""
    unauthorized = KubeError(401, "Unauthorized", "Unauthorized")
    if not header.startswith("Bearer "):
        raise unauthorized
    token = header[len("Bearer "):].strip()
    if not token.startswith(TOKEN_PREFIX):
        raise unauthorized
    encoded = token[len(TOKEN_PREFIX):]
    if "=" in encoded or not re.fullmatch(r"[A-Za-z0-9_-]+", encoded or "!"):
        raise unauthorized  # base64url without padding
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise unauthorized from None
    u = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    host_ok = u.scheme == "https" and (u.netloc == "sts.amazonaws.com" or
                                        re.fullmatch(r"sts\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com", u.netloc or ""))
    try:
        expires = int(q.get("X-Amz-Expires", ""))
        signed = dt.datetime.strptime(q.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise unauthorized from None
    age = (dt.datetime.now(dt.timezone.utc) - signed).total_seconds()
    ok = (host_ok and u.path in ("", "/") and q.get("Action") == "GetCallerIdentity"
          and q.get("Version") == "2011-06-15" and q.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256"
          and 0 < expires <= 60 and "x-k8s-aws-id" in q.get("X-Amz-SignedHeaders", "").lower().split(";")
          and -300 <= age <= 15 * 60 and re.fullmatch(r"[0-9a-f]{64}", q.get("X-Amz-Signature", ""))
          and q.get("X-Amz-Credential", "").count("/") == 4)
    if not ok:
        raise unauthorized
    return q["X-Amz-Credential"].split("/", 1)[0]


# --------------------------------------------------------------------------------------------
# a small client (provision.py, kube_check.py): what `aws eks get-token` and kubectl do
# --------------------------------------------------------------------------------------------
def eks_token(cluster: str, region: str = REGION, access_key: str = "testing", secret_key: str = "testing") -> str:
    """A bearer token as `aws eks get-token` makes it: a presigned STS GetCallerIdentity URL
    (60 s, signed with the x-k8s-aws-id header naming the cluster), base64url without padding."""
    sts = boto3.client("sts", region_name=region, endpoint_url=f"https://sts.{region}.amazonaws.com",
                       aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    def add_cluster_header(request, **_kwargs):
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class Client:
    """HTTPS to a cluster's API server, verified against its CA, with an EKS token."""

    def __init__(self, endpoint: str, ca_pem: bytes, token, user_agent: str = "bluegreen-local-stack"):
        import http.client  # noqa: PLC0415 - client side only
        self._http = http.client
        self.url = urllib.parse.urlsplit(endpoint)
        self.ctx = ssl.create_default_context(cadata=ca_pem.decode())
        self.token = token  # a callable: a fresh token per request, as kubectl's exec plugin does
        self.user_agent = user_agent

    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                token: str | None = None) -> tuple[int, dict]:
        conn = self._http.HTTPSConnection(self.url.hostname, self.url.port or 443, timeout=30, context=self.ctx)
        try:
            headers = {"Authorization": f"Bearer {token if token is not None else self.token()}",
                       "Accept": "application/json", "User-Agent": self.user_agent}
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            try:
                return resp.status, json.loads(raw or b"{}")
            except ValueError:
                return resp.status, {"raw": raw.decode("utf-8", "replace")}
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bluegreen-local-kube"
    timeout = 60  # seconds a connection may stall (the TLS handshake included)
    kube: Kube

    def setup(self):
        super().setup()
        # the listening socket does not shake hands on accept (one slow client would stall
        # every other): each connection does, on its own thread
        self.connection.do_handshake()

    def log_message(self, fmt, *args):
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def calling_function(self) -> str | None:
        ua = self.headers.get("User-Agent", "")
        return next((m.group(1) for m in APP_ID.finditer(ua) if m.group(1) in KNOWN_FUNCTIONS), None)

    def dispatch(self):
        started = time.time()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, dict(urllib.parse.parse_qsl(split.query))
        body = self._read_body()
        if path.startswith("/_local/") or path in ("/healthz", "/livez", "/readyz"):
            status = self.local(path, body)
            log(f"{self.command} {path} -> {status}")
            return
        call = None
        try:
            for pattern, group in PATHS:
                if m := pattern.match(path):
                    ns, resource, name = m.group(1), m.group(2), m.group(3)
                    verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch",
                            "PUT": "update", "DELETE": "delete"}.get(self.command, self.command.lower())
                    if verb == "list" and query.get("watch") in ("1", "true"):
                        verb = "watch"
                    call = (verb, group, resource, ns, name)
                    break
            user_key = check_token(self.headers.get("Authorization", ""))
            if call is None and path == "/version" and self.command == "GET":
                self._send(200, VERSION)
                log("GET /version -> 200")
                return
            if call is None:
                raise KubeError(404, "NotFound", "the server could not find the requested resource",
                                {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
            status, out = self.serve(call, query, body, user_key)
        except KubeError as e:
            status, out = e.code, e.status()
        except Exception as exc:  # noqa: BLE001 - answer, never kill the server
            log(f"ERROR {self.command} {self.path}: {exc!r}")
            status, out = 500, KubeError(500, "InternalError", f"local kube stand-in: {exc}").status()
        self._send(status, out)
        function = self.calling_function()
        if function and call:
            verb, group, resource, ns, name = call
            self.kube.record(function, verb, group, resource, ns, name, status)
        log(f"{self.command} {self.path[:140]} {function or '-'} -> {status} ({(time.time() - started) * 1000:.0f} ms)")

    def field_manager(self, query: dict) -> str:
        """?fieldManager=, else what the API server takes: the user agent up to its first '/'."""
        return query.get("fieldManager") or self.headers.get("User-Agent", "unknown").split("/", 1)[0] or "unknown"

    def serve(self, call: tuple, query: dict, body: bytes, user_key: str) -> tuple[int, dict]:
        verb, group, resource, ns, name = call
        k = self.kube
        with k.lock:
            forbidden = (ns, verb, resource) in k.forbidden
        if forbidden:
            function = self.calling_function() or "caller"
            user = f"arn:aws:sts::{ACCOUNT}:assumed-role/{function}/{user_key}"
            what = f'{qualified(group, resource)} "{name}" is forbidden' if name else f"{qualified(group, resource)} is forbidden"
            details = {"group": group, "kind": resource}
            if name:
                details = {"name": name, **details}
            raise KubeError(403, "Forbidden", f'{what}: User "{user}" cannot {verb} resource "{resource}" in API group '
                            f'"{group}" in the namespace "{ns}"', details)
        if verb in ("create", "patch", "update"):
            try:
                doc = json.loads(body or b"null")
            except ValueError as exc:
                raise bad_request(f"error decoding patch: {exc}" if verb == "patch"
                                  else f"the object provided is unrecognized: {exc}") from None
        if resource == "deployments":
            if verb == "get":
                return 200, k.get_deployment(ns, name)
            if verb == "list":
                return 200, k.list(ns, group, resource, query.get("labelSelector"), query.get("fieldSelector"))
            if verb == "patch":
                ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype not in MERGE_TYPES:
                    raise KubeError(415, "UnsupportedMediaType",
                                    f"the body of the request was in an unknown format - accepted media types include: "
                                    f"{ACCEPTED_PATCHES}")
                return 200, k.patch_deployment(ns, name, doc, ctype, self.field_manager(query))
            if verb == "create" and not name:
                return 201, k.create_deployment(ns, doc if isinstance(doc, dict) else {}, self.field_manager(query))
            if verb == "delete":
                return 200, k.delete_deployment(ns, name)
        elif resource in ("pods", "events", "replicasets") and verb == "list":
            return 200, k.list(ns, group, resource, query.get("labelSelector"), query.get("fieldSelector"))
        elif resource in ("pods", "events", "replicasets") and verb == "get":
            items = k.list(ns, group, resource, None, f"metadata.name={name}")["items"]
            if not items:
                raise not_found(group, resource, name)
            kind, api_version, _ = KINDS[(group, resource)]
            return 200, {"kind": kind, "apiVersion": api_version, **items[0]}
        elif resource == "targetgroupbindings":
            if verb == "create" and not name:
                return 201, k.create_binding(ns, doc if isinstance(doc, dict) else {})
            if verb == "list":
                return 200, k.list(ns, group, resource, query.get("labelSelector"), query.get("fieldSelector"))
            if verb == "get":
                with k.lock:
                    obj = k.bindings.get((ns, name))
                if obj is None:
                    raise not_found(group, resource, name)
                return 200, copy.deepcopy(obj)
            if verb == "delete":
                return 200, k.delete_binding(ns, name)
        raise KubeError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource "
                        f"({verb} {qualified(group, resource)}) in the local stand-in",
                        {"group": group, "kind": resource})

    def local(self, path: str, body: bytes) -> int:
        k = self.kube
        if path in ("/healthz", "/livez", "/readyz"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return 200
        try:
            req = json.loads(body) if body else {}
            if not isinstance(req, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._send(400, {"error": f"invalid JSON: {exc}"})
            return 400
        if path == "/_local/eks/state" and self.command == "GET":
            self._send(200, k.snapshot())
            return 200
        if path == "/_local/reset" and self.command == "POST":
            k.reset()
            self._send(200, k.snapshot())
            return 200
        if path == "/_local/eks/scenario" and self.command == "POST":
            ns, dep, mode = req.get("namespace"), req.get("deployment"), req.get("mode")
            deadline = req.get("progress_deadline_seconds")
            if not ns or not dep or (mode is not None and mode not in SCENARIO_MODES) or \
                    (deadline is not None and (not isinstance(deadline, int) or deadline <= 0)):
                self._send(400, {"error": f"need namespace, deployment and mode in {list(SCENARIO_MODES)} or null; "
                                          "progress_deadline_seconds a positive integer"})
                return 400
            with k.lock:
                if (ns, dep) not in k.deployments:
                    self._send(404, {"error": f"no deployment {ns}/{dep}"})
                    return 404
                if mode is None:
                    k.scenarios.pop((ns, dep), None)
                else:
                    k.scenarios[(ns, dep)] = {"mode": mode, "progress_deadline_seconds": deadline}
            self._send(200, {"namespace": ns, "deployment": dep, "mode": mode, "progress_deadline_seconds": deadline})
            return 200
        if path == "/_local/eks/forbid" and self.command == "POST":
            ns, verb, resource = req.get("namespace"), req.get("verb"), req.get("resource")
            verbs = ("get", "list", "watch", "create", "update", "patch", "delete")
            if not ns or verb not in verbs or resource not in {r for _, r in KINDS}:
                self._send(400, {"error": f"need namespace, verb in {list(verbs)} and resource in "
                                          f"{sorted(r for _, r in KINDS)}"})
                return 400
            with k.lock:
                if req.get("forbid", True):
                    k.forbidden.add((ns, verb, resource))
                else:
                    k.forbidden.discard((ns, verb, resource))
            self._send(200, {"namespace": ns, "verb": verb, "resource": resource, "forbid": bool(req.get("forbid", True))})
            return 200
        self._send(404, {"error": f"no control endpoint {self.command} {path}"})
        return 404


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request, client_address):
        log(f"connection from {client_address[0]}:{client_address[1]} failed: {sys.exc_info()[1]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("BLUEGREEN_KUBE_PORT", "4568")))
    ap.add_argument("--moto", default=os.environ.get("BLUEGREEN_MOTO_URL", "http://127.0.0.1:4567"))
    ap.add_argument("--certs-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".local-stack")
    ap.add_argument("--ready-seconds", type=float,
                    default=float(os.environ.get("BLUEGREEN_KUBE_READY_SECONDS", "1")),
                    help="seconds a new pod takes to become Ready")
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("kube: refusing to listen on anything but loopback")
    ca, cert, key = make_certs(args.certs_dir)
    kube = Kube(args.moto, args.ready_seconds, os.environ.get("BLUEGREEN_CALLS_LOG") or None)
    Handler.kube = kube
    server = Server((args.host, args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

    def ticker() -> None:
        while True:
            try:
                kube.tick()
            except Exception as exc:  # noqa: BLE001 - keep rolling
                log(f"ERROR tick: {exc!r}")
            time.sleep(0.1)

    threading.Thread(target=ticker, daemon=True).start()
    log(f"kube stand-in listening on https://{args.host}:{args.port} (CA {ca}, moto {kube.moto_url}, "
        f"pods Ready after {args.ready_seconds}s)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
