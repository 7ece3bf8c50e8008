"""Compliance as code: the cfn-guard rules in compliance/rules/ on the SAM-transformed template
and on environment-account.yaml (plain CloudFormation, deployed in environment accounts).

1. every rule passes on the transformed template.yaml and on environment-account.yaml;
2. every rule file has a test file, every rule there has a passing and a failing case, and
   `cfn-guard test` agrees with every expectation;
3. broken copies of both templates (a wildcard action, PITR off, a route without auth, a
   wildcard trust, ...) each fail the named rule.

    python compliance/check.py --guard PATH/TO/cfn-guard
Exit 0 when all hold; the last line counts checks as "N passed, N failed".
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sam_transform import transformed  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RULES = os.path.join(HERE, "rules")
TESTS = os.path.join(HERE, "tests")
GUARD_FAILED = 19  # cfn-guard validate: at least one rule failed

# (what is broken, text in template.yaml, its replacement, the rule that must fail)
BROKEN_COPIES = [
    ("a wildcard action", "- dynamodb:GetItem\n", "- dynamodb:*\n", "IAM_NO_WILDCARD_ACTIONS"),
    ("PITR off", "PointInTimeRecoveryEnabled: true", "PointInTimeRecoveryEnabled: false",
     "DYNAMODB_POINT_IN_TIME_RECOVERY"),
    ("a route without auth",
     'Method: POST, Path: "/services/{service}/environments/{environment}/promotions", Auth: { Authorizer: AWS_IAM }',
     'Method: POST, Path: "/services/{service}/environments/{environment}/promotions", Auth: { Authorizer: NONE }',
     "API_BODY_ROUTES_USE_IAM"),
    ("the table on the AWS-owned key",
     "        SSEType: KMS\n        KMSMasterKeyId: !GetAtt ControllerKey.Arn\n", "",
     "DYNAMODB_ENCRYPTED_WITH_CUSTOMER_KEY"),
    ("an inline policy on a function",
     "      Role: !GetAtt ApiRole.Arn\n",
     "      Policies:\n        - Statement:\n            - Effect: Allow\n"
     "              Action: states:StartExecution\n              Resource: arn:aws:states:::x\n",
     "IAM_NO_INLINE_POLICIES"),
    ("tracing off", "    Tracing: Active\n", "    Tracing: PassThrough\n", "LAMBDA_TRACING_ACTIVE"),
    ("no dead-letter queue",
     "    DeadLetterQueue:\n      Type: SQS\n      TargetArn: !GetAtt FailedEventsQueue.Arn\n", "",
     "LAMBDA_DEAD_LETTER_QUEUE"),
    ("API access logs without retention",
     "      LogGroupName: !Sub \"/aws/apigateway/${AWS::StackName}-api\"\n"
     "      RetentionInDays: !Ref LogRetentionDays\n",
     "      LogGroupName: !Sub \"/aws/apigateway/${AWS::StackName}-api\"\n",
     "LOG_GROUP_RETENTION"),
    ("state machine logging errors only", "        Level: ALL\n", "        Level: ERROR\n",
     "STATE_MACHINE_LOGGING"),
    ("an unencrypted topic",
     "      DisplayName: Blue/Green deployments\n      KmsMasterKeyId: !Ref ControllerKey\n",
     "      DisplayName: Blue/Green deployments\n",
     "SNS_ENCRYPTED_WITH_CUSTOMER_KEY"),
]


# The same for environment-account.yaml (no transform: it is plain CloudFormation).
ENVIRONMENT_BROKEN_COPIES = [
    ("a wildcard action", "- elasticloadbalancing:DescribeRules\n",
     "- elasticloadbalancing:Describe*\n", "IAM_NO_WILDCARD_ACTIONS"),
    ("the controller's roles as a wildcard principal",
     'Principal: { AWS: !Sub "arn:${AWS::Partition}:iam::${ControllerAccountId}:root" }',
     'Principal: { AWS: !Sub "arn:${AWS::Partition}:iam::${ControllerAccountId}:role/*Role-*" }',
     "IAM_TRUST_NAMES_ITS_PRINCIPALS"),
    ("the controller's whole account trusted",
     "              ArnLike:\n                aws:PrincipalArn: !Ref ControllerRoleArns\n",
     "", "IAM_TRUST_NAMES_ITS_PRINCIPALS"),
    ("alarms forwarded without a role", "          RoleArn: !GetAtt AlarmForwardingRole.Arn\n", "",
     "EVENTS_FOREIGN_TARGET_HAS_ROLE"),
    ("an inline policy on the environment role",
     "      MaxSessionDuration: 3600\n",
     "      MaxSessionDuration: 3600\n      Policies:\n        - PolicyName: inline\n"
     "          PolicyDocument:\n            Statement:\n              - Effect: Allow\n"
     "                Action: ecs:ListTasks\n                Resource: \"*\"\n",
     "IAM_NO_INLINE_POLICIES"),
]


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def record(self, ok: bool, what: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}\n{detail}".rstrip())


def guard_validate(guard: str, template: dict, workdir: str) -> subprocess.CompletedProcess:
    path = os.path.join(workdir, "template.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(template, f)
    return subprocess.run(
        [guard, "validate", "--rules", RULES, "--data", path, "--show-summary", "fail"],
        capture_output=True, text=True, check=False)


def rule_names(rule_file: str) -> list[str]:
    with open(rule_file, encoding="utf-8") as f:
        return re.findall(r"^rule\s+([A-Z0-9_]+)", f.read(), flags=re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guard", required=True, help="path of the cfn-guard binary")
    parser.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    parser.add_argument("--environment-template",
                        default=os.path.join(ROOT, "environment-account.yaml"))
    args = parser.parse_args()
    checks = Checks()
    with open(args.template, encoding="utf-8") as f:
        text = f.read()
    with open(args.environment_template, encoding="utf-8") as f:
        environment_text = f.read()

    with tempfile.TemporaryDirectory(prefix="compliance-") as work:
        # 1. the template itself
        out = guard_validate(args.guard, transformed(text, ROOT), work)
        checks.record(out.returncode == 0, "template.yaml passes every rule", out.stdout + out.stderr)
        out = guard_validate(args.guard, yaml_parse(environment_text), work)
        checks.record(out.returncode == 0, "environment-account.yaml passes every rule",
                      out.stdout + out.stderr)

        # 2. the rules' own tests
        for name in sorted(os.listdir(RULES)):
            if not name.endswith(".guard"):
                continue
            rules = os.path.join(RULES, name)
            tests = os.path.join(TESTS, name.replace(".guard", "_tests.yaml"))
            if not os.path.exists(tests):
                checks.record(False, f"{name} has tests", f"missing {tests}")
                continue
            with open(tests, encoding="utf-8") as f:
                cases = f.read()
            for rule in rule_names(rules):
                for outcome in ("PASS", "FAIL"):
                    checks.record(
                        re.search(rf"^\s+{rule}: {outcome}\s*$", cases, flags=re.M) is not None,
                        f"{rule} has a {outcome.lower()}ing case")
            out = subprocess.run([args.guard, "test", "--rules-file", rules, "--test-data", tests],
                                 capture_output=True, text=True, check=False)
            checks.record(out.returncode == 0, f"cfn-guard test {name}", out.stdout + out.stderr)

        # 3. broken copies
        for what, old, new, rule in BROKEN_COPIES:
            if old not in text:
                checks.record(False, f"broken copy ({what})", f"template.yaml no longer has {old!r}")
                continue
            out = guard_validate(args.guard, transformed(text.replace(old, new, 1), ROOT), work)
            report = out.stdout + out.stderr
            checks.record(out.returncode == GUARD_FAILED and rule in report,
                          f"broken copy ({what}) fails {rule}",
                          f"exit {out.returncode}, expected {GUARD_FAILED} naming {rule}:\n{report}")

        for what, old, new, rule in ENVIRONMENT_BROKEN_COPIES:
            if old not in environment_text:
                checks.record(False, f"broken environment-account.yaml ({what})",
                              f"environment-account.yaml no longer has {old!r}")
                continue
            out = guard_validate(args.guard, yaml_parse(environment_text.replace(old, new, 1)), work)
            report = out.stdout + out.stderr
            checks.record(out.returncode == GUARD_FAILED and rule in report,
                          f"broken environment-account.yaml ({what}) fails {rule}",
                          f"exit {out.returncode}, expected {GUARD_FAILED} naming {rule}:\n{report}")

    print(f"compliance: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
