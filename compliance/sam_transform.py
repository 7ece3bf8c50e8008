"""Print the CloudFormation template that the SAM transform makes of a SAM template (JSON).

Runs offline: the transform is the same library the SAM CLI and CloudFormation's
AWS::Serverless transform use (samtranslator); the template names no AWS managed policies by
name, so the policy loader that would call IAM is never needed.

    python compliance/sam_transform.py template.yaml > transformed.json
    python compliance/sam_transform.py - --base DIR < variant.yaml   # relative paths from DIR
"""

import json
import logging
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template attaches only its own managed policies; looking up AWS's is an error."""

    def load(self):
        raise SystemExit("the template names an AWS managed policy by name; attach by ARN")


def packaged(template: dict, base: str) -> dict:
    """What `sam package` hands CloudFormation: code in S3, the definition alongside."""
    functions = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in functions:
        functions["CodeUri"] = "s3://artifacts/code.zip"
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = f"s3://artifacts/{name}.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            with open(os.path.join(base, props.pop("DefinitionUri")), encoding="utf-8") as f:
                props["Definition"] = json.load(f)
    return template


def transformed(text: str, base: str) -> dict:
    """The transformed template of SAM template `text` whose relative paths start at `base`."""
    # A region is all the transform asks of the environment (for pseudo parameters); any will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    return transform(packaged(yaml_parse(text), base), {}, NoManagedPolicies())


def main(path: str, base: str | None) -> None:
    if path == "-":
        text, base = sys.stdin.read(), base or os.getcwd()
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        base = base or os.path.dirname(os.path.abspath(path))
    json.dump(transformed(text, base), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    base_dir = None
    if len(args) == 3 and args[1] == "--base":
        base_dir = args[2]
        args = args[:1]
    if len(args) != 1:
        raise SystemExit("usage: sam_transform.py TEMPLATE|- [--base DIR]")
    main(args[0], base_dir)
