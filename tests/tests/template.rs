//! The SAM template is part of the product: it deploys exactly the function crates, gives the
//! state machine every `${...}` substitution, grants least privilege (no wildcard action; `*`
//! resources only for the documented actions AWS cannot scope), encrypts and protects the
//! table, authorizes every API route with IAM, and sends failed asynchronous events somewhere.
//! Each check returns findings; the tests at the bottom break copies of the template and show
//! the checks catch each break for the named reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[path = "iam/stack.rs"]
#[allow(
    dead_code,
    reason = "template.rs uses only the SAM transform of this module"
)]
mod sam;

/// The template CloudFormation receives: template.yaml after the SAM transform.
fn transformed_template() -> Value {
    sam::transformed(&read("template.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) become their long form, so
/// the template reads as the JSON CloudFormation sees.
fn long_form(v: serde_yaml::Value) -> serde_yaml::Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Tagged(t) => {
            let name = t.tag.to_string();
            let name = name.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_string(),
                other => format!("Fn::{other}"),
            };
            let mut inner = long_form(t.value);
            if key == "Fn::GetAtt"
                && let Y::String(s) = &inner
            {
                inner = Y::Sequence(s.splitn(2, '.').map(|p| Y::String(p.into())).collect());
            }
            let mut m = serde_yaml::Mapping::new();
            m.insert(Y::String(key), inner);
            Y::Mapping(m)
        }
        Y::Sequence(s) => Y::Sequence(s.into_iter().map(long_form).collect()),
        Y::Mapping(m) => Y::Mapping(m.into_iter().map(|(k, v)| (k, long_form(v))).collect()),
        other => other,
    }
}

fn parse(text: &str) -> Value {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("template.yaml: {e}"));
    serde_json::to_value(long_form(yaml)).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn template() -> Value {
    parse(&read("template.yaml"))
}

fn resources(t: &Value) -> impl Iterator<Item = (&String, &Value)> {
    t["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.iter())
}

fn of_type<'a>(t: &'a Value, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(t).filter(move |(_, r)| r["Type"] == ty)
}

/// A value or a list of values, as IAM and CloudFormation allow.
fn one_or_many(v: &Value) -> Vec<&Value> {
    let items: Vec<&Value> = match given(v) {
        Some(Value::Array(a)) => a.iter().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    };
    items.into_iter().filter_map(given).collect()
}

/// What an item stands for when every optional parameter is given: an `Fn::If [condition,
/// then, else]` is its `then` (so the checks see everything the template can grant), and
/// `AWS::NoValue` is nothing.
fn given(v: &Value) -> Option<&Value> {
    match v["Fn::If"].as_array().map(Vec::as_slice) {
        Some([_, then, _]) => given(then),
        _ if v["Ref"] == "AWS::NoValue" => None,
        _ => Some(v),
    }
}

/// A function property, with the Globals the SAM transform merges in.
fn function_property<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"][name] {
        Value::Null => &t["Globals"]["Function"][name],
        v => v,
    }
}

// ------------------------------------------------------------------------------------- IAM

struct Allowlist(BTreeMap<String, String>);

fn allowlist() -> Allowlist {
    let doc: Value = serde_json::from_str(&read("compliance/unscoped-actions.json"))
        .unwrap_or_else(|e| panic!("compliance/unscoped-actions.json: {e}"));
    let actions = doc["actions"]
        .as_object()
        .unwrap_or_else(|| panic!("compliance/unscoped-actions.json has no `actions` object"));
    Allowlist(
        actions
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

/// Every identity-policy statement: (where, statement). Inline policies are findings of their
/// own (`inline_policy_findings`) but their statements are checked here too.
fn identity_statements(t: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (name, r) in resources(t) {
        let docs: Vec<&Value> = match r["Type"].as_str() {
            Some("AWS::IAM::ManagedPolicy" | "AWS::IAM::Policy") => {
                vec![&r["Properties"]["PolicyDocument"]]
            }
            Some("AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group") => {
                one_or_many(&r["Properties"]["Policies"])
                    .into_iter()
                    .map(|p| &p["PolicyDocument"])
                    .collect()
            }
            Some("AWS::Serverless::Function" | "AWS::Serverless::StateMachine") => {
                one_or_many(&r["Properties"]["Policies"])
                    .into_iter()
                    .filter(|p| p.get("Statement").is_some())
                    .collect()
            }
            _ => Vec::new(),
        };
        for doc in docs {
            for s in one_or_many(&doc["Statement"]) {
                out.push((name.clone(), s));
            }
        }
    }
    out
}

/// Statements of resource policies (key, topic, queue): "*" there means "this resource", so
/// only their actions are checked.
fn resource_policy_statements(t: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (name, r) in resources(t) {
        let doc = match r["Type"].as_str() {
            Some("AWS::KMS::Key") => &r["Properties"]["KeyPolicy"],
            Some("AWS::SNS::TopicPolicy" | "AWS::SQS::QueuePolicy") => {
                &r["Properties"]["PolicyDocument"]
            }
            _ => continue,
        };
        for s in one_or_many(&doc["Statement"]) {
            out.push((name.clone(), s));
        }
    }
    out
}

fn actions(statement: &Value) -> Vec<String> {
    one_or_many(&statement["Action"])
        .into_iter()
        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
        .collect()
}

/// Least privilege: no wildcard action anywhere, no NotAction/NotResource, and `*` as a
/// resource only for actions in the allowlist.
fn iam_findings(t: &Value, allowed: &Allowlist) -> Vec<String> {
    let mut findings = Vec::new();
    for (name, s) in identity_statements(t) {
        if s["Effect"] != "Allow" {
            continue;
        }
        for key in ["NotAction", "NotResource"] {
            if s.get(key).is_some() {
                findings.push(format!("{name}: {key} grants everything it does not name"));
            }
        }
        let unscoped = one_or_many(&s["Resource"]).iter().any(|r| *r == "*");
        let boundary = boundary_only(t, &name);
        for action in actions(s) {
            if action.contains('*') && boundary {
                // A permissions boundary grants nothing (boundary_use_findings keeps it one).
            } else if action.contains('*') {
                findings.push(format!("{name}: wildcard action {action}"));
            } else if unscoped && !allowed.0.contains_key(&action) {
                findings.push(format!(
                    "{name}: {action} on resource \"*\"; scope it, or document in \
                     compliance/unscoped-actions.json why AWS cannot"
                ));
            }
        }
    }
    for (name, s) in resource_policy_statements(t) {
        for action in actions(s) {
            if action.contains('*') {
                findings.push(format!("{name}: wildcard action {action}"));
            }
        }
    }
    findings
}

fn inline_policy_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    for (name, r) in resources(t) {
        let ty = r["Type"].as_str().unwrap_or_default();
        if ty == "AWS::IAM::Policy" {
            findings.push(format!("{name}: inline policy resource"));
        }
        let inline = match ty {
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
                !one_or_many(&r["Properties"]["Policies"]).is_empty()
            }
            // SAM turns statements (and policy templates) under Policies into an inline policy
            // on a role it makes; the functions and the state machine name their own roles.
            "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => {
                r["Properties"].get("Policies").is_some() || r["Properties"].get("Role").is_none()
            }
            _ => false,
        };
        if inline {
            findings.push(format!(
                "{name}: inline policies (use a managed policy on an explicit role)"
            ));
        }
    }
    findings
}

// ------------------------------------------------------------------------------- resources

fn table_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let tables: Vec<_> = of_type(t, "AWS::DynamoDB::Table").collect();
    if tables.is_empty() {
        findings.push("no DynamoDB table".to_string());
    }
    for (name, r) in tables {
        let p = &r["Properties"];
        let mut need = |ok: bool, what: &str| {
            if !ok {
                findings.push(format!("{name}: {what}"));
            }
        };
        need(p["BillingMode"] == "PAY_PER_REQUEST", "not on-demand");
        need(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] == true,
            "point-in-time recovery is off",
        );
        need(
            p["SSESpecification"]["SSEType"] == "KMS"
                && p["SSESpecification"]["KMSMasterKeyId"].is_object(),
            "not encrypted with the stack's customer-managed key",
        );
        need(
            p["DeletionProtectionEnabled"] == true && r["DeletionPolicy"] == "Retain",
            "can be deleted",
        );
        need(
            p["TimeToLiveSpecification"]["Enabled"] == true,
            "no TTL for expiring items",
        );
    }
    findings
}

fn api_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    for (name, api) in of_type(t, "AWS::Serverless::HttpApi") {
        let p = &api["Properties"];
        if p["Auth"]["DefaultAuthorizer"] != "AWS_IAM" || p["Auth"]["EnableIamAuthorizer"] != true {
            findings.push(format!("{name}: IAM is not the default authorizer"));
        }
        if !p["AccessLogSettings"]["DestinationArn"].is_object() {
            findings.push(format!("{name}: no access logs"));
        }
        if p["DefaultRouteSettings"]["ThrottlingRateLimit"]
            .as_u64()
            .is_none()
        {
            findings.push(format!("{name}: not throttled"));
        }
    }
    for (route, _, auth) in api_routes(t) {
        if auth != "AWS_IAM" {
            findings.push(format!("route {route}: authorizer {auth}, not AWS_IAM"));
        }
    }
    findings
}

/// (event name, "METHOD /path", authorizer) of every HttpApi event.
fn api_routes(t: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, f) in of_type(t, "AWS::Serverless::Function") {
        for (event, e) in f["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter())
        {
            if e["Type"] != "HttpApi" {
                continue;
            }
            let p = &e["Properties"];
            let route = format!(
                "{} {}",
                p["Method"].as_str().unwrap_or("?"),
                p["Path"].as_str().unwrap_or("?")
            );
            let auth = p["Auth"]["Authorizer"]
                .as_str()
                .unwrap_or("(none)")
                .to_string();
            out.push((route, event.clone(), auth));
        }
    }
    out
}

/// Functions invoked asynchronously (EventBridge rules, alarm actions) need somewhere for the
/// events they fail on: an on-failure destination and a dead-letter queue on the rule.
fn async_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let alarm_targets: BTreeSet<String> = of_type(t, "AWS::Lambda::Permission")
        .filter(|(_, p)| p["Properties"]["Principal"] != "apigateway.amazonaws.com")
        .filter_map(|(_, p)| {
            p["Properties"]["FunctionName"]["Fn::GetAtt"][0]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    for (name, f) in of_type(t, "AWS::Serverless::Function") {
        let rules: Vec<(&String, &Value)> = f["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, e)| e["Type"] == "EventBridgeRule")
            .collect();
        for (event, e) in &rules {
            if !e["Properties"]["DeadLetterConfig"]["Arn"].is_object() {
                findings.push(format!(
                    "{name}.{event}: rule target has no dead-letter queue"
                ));
            }
        }
        if (rules.is_empty() && !alarm_targets.contains(name.as_str()))
            || f["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]
                .is_object()
        {
            continue;
        }
        findings.push(format!(
            "{name}: invoked asynchronously without an on-failure destination"
        ));
    }
    for (name, f) in of_type(t, "AWS::Serverless::Function") {
        if !function_property(t, f, "DeadLetterQueue")["TargetArn"].is_object() {
            findings.push(format!("{name}: no dead-letter queue"));
        }
    }
    findings
}

fn function_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let log_groups: BTreeMap<&String, &Value> = of_type(t, "AWS::Logs::LogGroup").collect();
    for (name, f) in of_type(t, "AWS::Serverless::Function") {
        let mut need = |ok: bool, what: &str| {
            if !ok {
                findings.push(format!("{name}: {what}"));
            }
        };
        need(
            function_property(t, f, "Runtime") == "provided.al2023",
            "runtime is not provided.al2023",
        );
        need(
            function_property(t, f, "Architectures") == &json!(["arm64"]),
            "not arm64",
        );
        need(
            f["Metadata"]["BuildMethod"] == "rust-cargolambda",
            "not built with cargo-lambda",
        );
        need(
            function_property(t, f, "Tracing") == "Active",
            "X-Ray tracing is not active",
        );
        need(
            t["Globals"]["Function"]["LoggingConfig"]["LogFormat"] == "JSON"
                || f["Properties"]["LoggingConfig"]["LogFormat"] == "JSON",
            "does not log JSON",
        );
        let memory = function_property(t, f, "MemorySize").as_u64().unwrap_or(0);
        let timeout = function_property(t, f, "Timeout").as_u64().unwrap_or(0);
        need(
            (128..=1024).contains(&memory) && (3..=120).contains(&timeout),
            "memory or timeout out of the sensible range (128..=1024 MB, 3..=120 s)",
        );
        let group = f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .and_then(|g| log_groups.get(&g.to_string()));
        match group {
            Some(g) => need(
                g["Properties"]["RetentionInDays"].is_object()
                    && g["Properties"]["KmsKeyId"].is_object(),
                "its log group has no retention or no KMS key",
            ),
            None => need(false, "logs to no log group of this stack"),
        }
    }
    findings
}

// ------------------------------------------------------------ what AWS checks at deploy time

const ACCOUNT_ROOT: &str = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root";

/// The logical id a `!Ref X` or `!GetAtt X.Attr` names.
fn referenced(v: &Value) -> Option<&str> {
    v["Ref"].as_str().or_else(|| v["Fn::GetAtt"][0].as_str())
}

fn key_policy<'a>(t: &'a Value, key: &str) -> Vec<&'a Value> {
    one_or_many(&t["Resources"][key]["Properties"]["KeyPolicy"]["Statement"])
}

/// Whether the key policy lets this account's principals (CloudFormation acts as the deploying
/// principal, with its IAM permissions) call `action` on the key; with `via`, also when the call
/// must come through that service (`kms:ViaService` starting with `via.`).
fn account_may(t: &Value, key: &str, action: &str, via: Option<&str>) -> bool {
    key_policy(t, key).into_iter().any(|s| {
        let through = &s["Condition"]["StringEquals"]["kms:ViaService"];
        let via_ok = match (through, via) {
            (Value::Null, _) => true,
            (_, None) => false,
            (list, Some(service)) => one_or_many(list).iter().any(|v| {
                v["Fn::Sub"]
                    .as_str()
                    .or_else(|| v.as_str())
                    .is_some_and(|v| v.starts_with(&format!("{service}.")))
            }),
        };
        s["Effect"] == "Allow"
            && s["Principal"]["AWS"]["Fn::Sub"] == ACCOUNT_ROOT
            && actions(s).iter().any(|a| a == action)
            && via_ok
    })
}

/// The key policy must let the stack create, update and delete every alias of the key (AWS KMS
/// authorizes alias operations on the key too, from its key policy), and let the deploying
/// principal create the grants that services create on its behalf (a DynamoDB table encrypted
/// with the key: kms:CreateGrant and kms:DescribeKey through DynamoDB).
fn key_policy_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    for (alias, a) in of_type(t, "AWS::KMS::Alias") {
        let Some(key) = referenced(&a["Properties"]["TargetKeyId"]) else {
            findings.push(format!("{alias}: targets no key of this stack"));
            continue;
        };
        for action in ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"] {
            if !account_may(t, key, action, None) {
                findings.push(format!(
                    "{key}: the key policy does not let the account {action}, so {alias} \
                     cannot be managed by CloudFormation"
                ));
            }
        }
    }
    for (table, r) in of_type(t, "AWS::DynamoDB::Table") {
        let Some(key) = referenced(&r["Properties"]["SSESpecification"]["KMSMasterKeyId"]) else {
            continue;
        };
        for action in ["kms:CreateGrant", "kms:DescribeKey"] {
            if !account_may(t, key, action, Some("dynamodb")) {
                findings.push(format!(
                    "{key}: the key policy does not let the account {action} through DynamoDB, \
                     so {table} cannot be created"
                ));
            }
        }
    }
    findings
}

/// EventBridge rules delivering to a topic encrypted with the stack's key: the key policy must
/// let EventBridge use the key in its own statement, without the `aws:SourceAccount` or
/// `aws:SourceArn` conditions its delivery to SNS may not carry (SNS developer guide: AWS
/// services publishing to encrypted topics), and scoped to that topic if scoped at all.
fn eventbridge_key_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    for (rule, r) in of_type(t, "AWS::Events::Rule") {
        for target in one_or_many(&r["Properties"]["Targets"]) {
            let Some(topic) = referenced(&target["Arn"]) else {
                continue;
            };
            let topic_props = &t["Resources"][topic]["Properties"];
            if t["Resources"][topic]["Type"] != "AWS::SNS::Topic" {
                continue;
            }
            let Some(key) = referenced(&topic_props["KmsMasterKeyId"]) else {
                continue;
            };
            let topic_name = topic_props["TopicName"]["Fn::Sub"]
                .as_str()
                .unwrap_or("(unnamed)");
            let allowed = key_policy(t, key).into_iter().any(|s| {
                let condition = s["Condition"].to_string();
                let context =
                    &s["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"];
                s["Effect"] == "Allow"
                    && one_or_many(&s["Principal"]["Service"])
                        .iter()
                        .any(|p| *p == "events.amazonaws.com")
                    && ["kms:GenerateDataKey", "kms:Decrypt"]
                        .iter()
                        .all(|a| actions(s).iter().any(|x| x == a))
                    && !condition.contains("aws:SourceAccount")
                    && !condition.contains("aws:SourceArn")
                    && (context.is_null()
                        || context["Fn::Sub"]
                            .as_str()
                            .is_some_and(|arn| arn.ends_with(&format!(":{topic_name}"))))
            });
            if !allowed {
                findings.push(format!(
                    "{key}: the key policy does not let EventBridge deliver {rule}'s events to \
                     {topic} (events.amazonaws.com, kms:GenerateDataKey and kms:Decrypt, no \
                     source condition, at most scoped to the topic)"
                ));
            }
        }
    }
    findings
}

/// Every string CloudFormation uses (descriptions aside) that writes a partition into an ARN:
/// `${AWS::Partition}` makes the stack work in aws-cn and aws-us-gov too.
fn partition_findings(t: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, findings: &mut Vec<String>) {
        match v {
            Value::String(s) if s.contains("arn:aws:") || s.contains("arn:aws-") => {
                findings.push(format!("{at}: {s:?} names a partition"));
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}[{i}]"), findings);
                }
            }
            Value::Object(m) => {
                for (k, x) in m.iter().filter(|(k, _)| k.as_str() != "Description") {
                    walk(x, &format!("{at}.{k}"), findings);
                }
            }
            _ => {}
        }
    }
    let mut findings = Vec::new();
    walk(t, "template", &mut findings);
    findings
}

/// Names AWS limits, by resource type and property: the longest name it accepts.
const NAME_LIMITS: &[(&str, &str, usize)] = &[
    ("AWS::Serverless::Function", "FunctionName", 64),
    ("AWS::Lambda::Function", "FunctionName", 64),
    ("AWS::Events::Rule", "Name", 64),
    ("AWS::SQS::Queue", "QueueName", 80),
    ("AWS::SNS::Topic", "TopicName", 256),
    ("AWS::Serverless::StateMachine", "Name", 80),
    ("AWS::StepFunctions::StateMachine", "StateMachineName", 80),
    ("AWS::CloudWatch::Alarm", "AlarmName", 255),
    ("AWS::CloudWatch::Dashboard", "DashboardName", 255),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName", 128),
    ("AWS::IAM::Role", "RoleName", 64),
    ("AWS::KMS::Alias", "AliasName", 256),
    ("AWS::Logs::LogGroup", "LogGroupName", 512),
    ("AWS::Events::EventBusPolicy", "StatementId", 64),
];
/// CloudFormation's own limit on a stack name.
const STACK_NAME_LIMIT: usize = 128;

/// The longest stack name the README promises works.
fn stated_stack_name_limit() -> usize {
    let readme = read("README.md");
    let marker = "stack name may be at most ";
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md does not say \"{marker}N characters\""));
    readme[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|e| panic!("README.md: the stack name limit: {e}"))
}

/// Every name the stack gives a resource, with `stack` as the stack name, within the limit
/// AWS sets for it. A name property of a type the table does not know is a finding too, so
/// a new named resource cannot escape the check.
fn name_findings(t: &Value, stack: &str) -> Vec<String> {
    let mut findings = Vec::new();
    let mut names: Vec<(String, &str, &str, &Value)> = Vec::new();
    for (name, r) in resources(t) {
        let ty = r["Type"].as_str().unwrap_or_default();
        for (key, value) in r["Properties"].as_object().into_iter().flatten() {
            if key.ends_with("Name") || key == "StatementId" {
                names.push((name.clone(), ty, key, value));
            }
        }
        // SAM makes an AWS::Events::Rule named RuleName for each EventBridgeRule event
        for (event, e) in r["Properties"]["Events"].as_object().into_iter().flatten() {
            if e["Type"] == "EventBridgeRule" {
                names.push((
                    format!("{name}.{event}"),
                    "AWS::Events::Rule",
                    "Name",
                    &e["Properties"]["RuleName"],
                ));
            }
        }
    }
    for (name, ty, key, value) in names {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            // a reference to another resource's name (measured there)
            other if referenced(other).is_some() => continue,
            other => match other["Fn::Sub"].as_str() {
                Some(s) => s.replace("${AWS::StackName}", stack),
                None => {
                    findings.push(format!("{name}.{key}: {other} cannot be measured"));
                    continue;
                }
            },
        };
        let names_the_stack = text.contains(stack);
        match NAME_LIMITS.iter().find(|(t, k, _)| *t == ty && *k == key) {
            Some(_) if text.contains("${") => {
                findings.push(format!("{name}.{key}: {text:?} cannot be measured"));
            }
            Some((_, _, limit)) if text.len() > *limit => findings.push(format!(
                "{name}.{key}: {text:?} is {} characters, {ty} allows {limit}",
                text.len()
            )),
            Some(_) => {}
            None if names_the_stack => findings.push(format!(
                "{name}.{key}: no known length limit for {ty}.{key}; add it to NAME_LIMITS"
            )),
            None => {}
        }
    }
    findings
}

// ------------------------------------------------------- what AWS checks when a function calls

/// The Allow statements of a role's policies (its managed policies of this stack and any
/// inline ones).
fn role_statements<'a>(t: &'a Value, role: &str) -> Vec<&'a Value> {
    let r = &t["Resources"][role]["Properties"];
    let mut docs: Vec<&Value> = one_or_many(&r["ManagedPolicyArns"])
        .into_iter()
        .filter_map(referenced)
        .map(|policy| &t["Resources"][policy]["Properties"]["PolicyDocument"])
        .collect();
    docs.extend(
        one_or_many(&r["Policies"])
            .into_iter()
            .map(|p| &p["PolicyDocument"]),
    );
    docs.into_iter()
        .flat_map(|d| one_or_many(&d["Statement"]))
        .filter(|s| s["Effect"] == "Allow")
        .collect()
}

/// The roles of this stack granted `action` at all.
fn roles_granted(t: &Value, action: &str) -> Vec<String> {
    of_type(t, "AWS::IAM::Role")
        .filter(|(name, _)| {
            role_statements(t, name)
                .iter()
                .any(|s| actions(s).iter().any(|a| a == action))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A permission a role needs for a call its function makes, as AWS authorizes that call.
struct Need {
    role: String,
    action: &'static str,
    /// Only a grant on `"*"` works (the call is authorized on every resource).
    on_every_resource: bool,
    /// A condition the grant must carry: (operator, key, value).
    condition: Option<(&'static str, &'static str, &'static str)>,
    why: &'static str,
}

/// What the functions' calls need beyond the action itself. Some follow from what a role is
/// already granted (the same call needs a second permission); the rest name the role.
fn needs(t: &Value) -> Vec<Need> {
    let mut out = vec![Need {
        role: "ApiRole".into(),
        action: "ecs:DescribeTaskDefinition",
        on_every_resource: false,
        condition: None,
        why: "an environment rollback records the standby color's image, read from its \
              service's task definition",
    }];
    for role in roles_granted(t, "ecs:RegisterTaskDefinition") {
        out.push(Need {
            role,
            action: "ecs:TagResource",
            on_every_resource: false,
            condition: Some(("StringEquals", "ecs:CreateAction", "RegisterTaskDefinition")),
            why: "deploy-green copies the current revision's tags into RegisterTaskDefinition, \
                  which ECS then authorizes as tagging on create",
        });
    }
    for role in roles_granted(t, "ecr:DescribeImageScanFindings") {
        for action in ["inspector2:ListFindings", "inspector2:ListCoverage"] {
            out.push(Need {
                role: role.clone(),
                action,
                on_every_resource: true,
                condition: None,
                why: "with enhanced scanning, ECR reads an image's findings from Amazon \
                      Inspector as the caller",
            });
        }
    }
    for role in roles_granted(t, "cloudwatch:DescribeAlarms") {
        out.push(Need {
            role,
            action: "cloudwatch:DescribeAlarms",
            on_every_resource: true,
            condition: None,
            why: "DescribeAlarms returns composite alarms only to a grant on \"*\"",
        });
    }
    out
}

fn need_findings(t: &Value, needs: &[Need]) -> Vec<String> {
    let mut findings = Vec::new();
    for n in needs {
        let granted = role_statements(t, &n.role).into_iter().any(|s| {
            let resources = one_or_many(&s["Resource"]);
            let condition_ok = n.condition.is_none_or(|(op, key, value)| {
                one_or_many(&s["Condition"][op][key])
                    .iter()
                    .any(|v| *v == value)
            });
            actions(s).iter().any(|a| a == n.action)
                && (!n.on_every_resource || resources.iter().any(|r| *r == "*"))
                && condition_ok
        });
        if !granted {
            let scope = if n.on_every_resource { " on \"*\"" } else { "" };
            let condition = n
                .condition
                .map(|(op, key, value)| format!(" with {op} {key} = {value}"))
                .unwrap_or_default();
            findings.push(format!(
                "{}: not granted {}{scope}{condition} ({})",
                n.role, n.action, n.why
            ));
        }
    }
    findings
}

// ------------------------------------------------------------------ environment accounts

/// environment-account.yaml, deployed in each environment account.
fn environment_template() -> Value {
    parse(&read("environment-account.yaml"))
}

/// Whether a condition of the template holds for these parameter values (the intrinsic
/// functions conditions use: Fn::Not, Fn::And, Fn::Or, Fn::Equals, Fn::Join, Ref, Condition).
/// A CommaDelimitedList parameter is given as a JSON list.
fn condition_holds(t: &Value, name: &str, params: &BTreeMap<&str, Value>) -> Option<bool> {
    fn value(t: &Value, v: &Value, params: &BTreeMap<&str, Value>) -> Option<Value> {
        if let Some(p) = v["Ref"].as_str() {
            return params
                .get(p)
                .cloned()
                .or_else(|| Some(t["Parameters"][p]["Default"].clone()))
                .filter(|v| !v.is_null());
        }
        if let Some([sep, list]) = v["Fn::Join"].as_array().map(Vec::as_slice) {
            let items = match value(t, list, params)? {
                Value::Array(a) => a,
                Value::String(s) if s.is_empty() => Vec::new(),
                other => vec![other],
            };
            let parts: Option<Vec<String>> =
                items.iter().map(|i| i.as_str().map(String::from)).collect();
            return Some(Value::String(parts?.join(sep.as_str()?)));
        }
        match v {
            Value::String(_) => Some(v.clone()),
            _ => None,
        }
    }
    fn holds(t: &Value, c: &Value, params: &BTreeMap<&str, Value>) -> Option<bool> {
        if let Some(other) = c["Condition"].as_str() {
            return holds(t, &t["Conditions"][other], params);
        }
        if let Some([x]) = c["Fn::Not"].as_array().map(Vec::as_slice) {
            return holds(t, x, params).map(|b| !b);
        }
        if let Some([a, b]) = c["Fn::Equals"].as_array().map(Vec::as_slice) {
            return Some(value(t, a, params)? == value(t, b, params)?);
        }
        if let Some(all) = c["Fn::And"].as_array() {
            let each: Option<Vec<bool>> = all.iter().map(|x| holds(t, x, params)).collect();
            return each.map(|e| e.into_iter().all(|b| b));
        }
        if let Some(any) = c["Fn::Or"].as_array() {
            let each: Option<Vec<bool>> = any.iter().map(|x| holds(t, x, params)).collect();
            return each.map(|e| e.into_iter().any(|b| b));
        }
        None
    }
    holds(t, &t["Conditions"][name], params)
}

/// Whether a resource is created with these parameter values.
fn created(t: &Value, resource: &Value, params: &BTreeMap<&str, Value>) -> bool {
    match resource["Condition"].as_str() {
        None => true,
        Some(c) => condition_holds(t, c, params).unwrap_or(false),
    }
}

/// The environment role: assumed by the controller's function roles only. Its trust names the
/// controller's account as principal (a wildcard cannot stand in a principal) and the function
/// roles by an ArnLike condition on aws:PrincipalArn; its name is one the controller may
/// assume by default (`bluegreen-environment-*`), within IAM's 64 characters.
fn environment_role_findings(env: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let mut any_trusted_by_controller = false;
    for (name, r) in of_type(env, "AWS::IAM::Role") {
        let mut trusted_by_controller = false;
        let mut tags_sessions = false;
        let trust = &r["Properties"]["AssumeRolePolicyDocument"];
        for s in one_or_many(&trust["Statement"]) {
            let principal = &s["Principal"];
            if principal.to_string().contains('*') {
                findings.push(format!(
                    "{name}: a wildcard in the trusted principal {principal}"
                ));
            }
            if principal["AWS"].is_null() {
                continue;
            }
            trusted_by_controller = true;
            any_trusted_by_controller = true;
            if principal["AWS"]["Fn::Sub"]
                != "arn:${AWS::Partition}:iam::${ControllerAccountId}:root"
            {
                findings.push(format!(
                    "{name}: trusts {}, not the controller's account",
                    principal["AWS"]
                ));
            }
            if s["Condition"]["ArnLike"]["aws:PrincipalArn"]["Ref"] != "ControllerRoleArns" {
                findings.push(format!(
                    "{name}: the controller's account is trusted without an ArnLike \
                     aws:PrincipalArn condition naming ControllerRoleArns"
                ));
            }
            // the session must act for this role's own registry key (no confused deputy)
            let tags = &s["Condition"]["StringEquals"];
            if tags["aws:RequestTag/bluegreen:service"]["Ref"] != "ServiceName"
                || tags["aws:RequestTag/bluegreen:environment"]["Ref"] != "EnvironmentName"
            {
                findings.push(format!(
                    "{name}: {} is allowed without requiring the session tags \
                     bluegreen:service = ServiceName and bluegreen:environment = EnvironmentName",
                    s["Action"]
                ));
            }
            if one_or_many(&s["Action"])
                .iter()
                .any(|a| *a == "sts:TagSession")
            {
                tags_sessions = true;
            }
        }
        if trusted_by_controller && !tags_sessions {
            findings.push(format!(
                "{name}: the controller may not tag its sessions (sts:TagSession), so its \
                 AssumeRole with session tags is refused"
            ));
        }
        if !trusted_by_controller {
            continue;
        }
        let role_name = r["Properties"]["RoleName"]["Fn::Sub"]
            .as_str()
            .unwrap_or_default();
        if role_name != "bluegreen-environment-${ServiceName}-${EnvironmentName}" {
            findings.push(format!(
                "{name}: named {role_name:?}, not bluegreen-environment-${{ServiceName}}-${{EnvironmentName}} \
                 (the roles the controller may assume by default)"
            ));
        }
        let longest = |parameter: &str| -> (String, Option<usize>) {
            let pattern = env["Parameters"][parameter]["AllowedPattern"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let n = pattern
                .rsplit_once(',')
                .and_then(|(_, n)| n.trim_end_matches("}$").parse().ok());
            (pattern, n)
        };
        let (service_pattern, service) = longest("ServiceName");
        let (environment_pattern, environment) = longest("EnvironmentName");
        match service.zip(environment) {
            Some((s, e)) if "bluegreen-environment-".len() + s + 1 + e <= 64 => {}
            _ => findings.push(format!(
                "{name}: ServiceName's pattern {service_pattern:?} and EnvironmentName's \
                 {environment_pattern:?} let the role name exceed 64 characters"
            )),
        }
    }
    if !any_trusted_by_controller {
        findings.push("no role of environment-account.yaml is trusted by the controller".into());
    }
    findings
}

/// The environment role grants what the controller's own policies of the same names grant
/// (the controller makes the same calls there through the assumed role).
fn environment_grant_findings(t: &Value, env: &Value) -> Vec<String> {
    let granted = |template: &Value, policy: &str| -> BTreeSet<String> {
        one_or_many(&template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"])
            .into_iter()
            .filter(|s| s["Effect"] == "Allow")
            .flat_map(actions)
            .collect()
    };
    let mut findings = Vec::new();
    let attached: Vec<&str> = of_type(env, "AWS::IAM::Role")
        .filter(|(_, r)| r["Properties"]["RoleName"].is_object())
        .flat_map(|(_, r)| one_or_many(&r["Properties"]["ManagedPolicyArns"]))
        .filter_map(referenced)
        .collect();
    for policy in [
        "TrafficReadPolicy",
        "TrafficWritePolicy",
        "EcsDeployPolicy",
        "HealthSignalsPolicy",
        "TroubleshootPolicy",
        "EksClusterPolicy",
    ] {
        if !attached.contains(&policy) {
            findings.push(format!("the environment role has no {policy}"));
        }
        let (controller, environment) = (granted(t, policy), granted(env, policy));
        for missing in controller.difference(&environment) {
            findings.push(format!(
                "{policy}: the environment role lacks {missing}, which the controller uses"
            ));
        }
        for extra in environment.difference(&controller) {
            findings.push(format!(
                "{policy}: the environment role grants {extra}, which the controller never uses"
            ));
        }
    }
    findings
}

const ALARM_SOURCE: &str = "aws.cloudwatch";
const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// Whether an event pattern lets alarm state changes through (on the state, if at all, ALARM).
fn matches_alarm_changes(pattern: &Value) -> bool {
    one_or_many(&pattern["source"])
        .iter()
        .any(|s| *s == ALARM_SOURCE)
        && one_or_many(&pattern["detail-type"])
            .iter()
            .any(|d| *d == ALARM_DETAIL_TYPE)
        && (pattern["detail"]["state"]["value"].is_null()
            || one_or_many(&pattern["detail"]["state"]["value"])
                .iter()
                .any(|v| *v == "ALARM"))
}

/// An environment account's alarm state changes reach the controller: a rule there sends
/// them to the controller's bus with a role EventBridge assumes, allowed to put events on that
/// bus only; the controller's alarm rule, on its default bus, does not filter them out by
/// account; and the bus the environment is told to use is the controller's default bus.
fn alarm_forwarding_findings(t: &Value, env: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let forwarding: Vec<(&String, &Value)> = of_type(env, "AWS::Events::Rule")
        .filter(|(_, r)| matches_alarm_changes(&r["Properties"]["EventPattern"]))
        .collect();
    if forwarding.is_empty() {
        findings.push("environment-account.yaml: no rule forwards alarm state changes".into());
    }
    for (name, r) in forwarding {
        let to_bus: Vec<&Value> = one_or_many(&r["Properties"]["Targets"])
            .into_iter()
            .filter(|target| target["Arn"]["Ref"] == "ControllerEventBusArn")
            .collect();
        if to_bus.is_empty() {
            findings.push(format!("{name}: does not target the controller's bus"));
        }
        for target in to_bus {
            let Some(role) = referenced(&target["RoleArn"]) else {
                findings.push(format!(
                    "{name}: targets the controller's bus without a role"
                ));
                continue;
            };
            let trusts_events = one_or_many(
                &env["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"],
            )
            .iter()
            .any(|s| s["Principal"]["Service"] == "events.amazonaws.com");
            if !trusts_events {
                findings.push(format!("{role}: EventBridge cannot assume it"));
            }
            let statements = role_statements(env, role);
            let may_put = statements.iter().any(|s| {
                actions(s).iter().any(|a| a == "events:PutEvents")
                    && s["Resource"]["Ref"] == "ControllerEventBusArn"
            });
            if !may_put {
                findings.push(format!(
                    "{role}: not allowed events:PutEvents on the controller's bus"
                ));
            }
            for s in &statements {
                if s["Resource"]["Ref"] != "ControllerEventBusArn" {
                    findings.push(format!("{role}: also granted {}", s["Resource"]));
                }
            }
        }
    }
    let bus = env["Parameters"]["ControllerEventBusArn"]["AllowedPattern"]
        .as_str()
        .unwrap_or_default();
    if !bus.ends_with(":event-bus/default$") {
        findings.push(format!(
            "ControllerEventBusArn: {bus:?} admits buses other than the controller's default bus"
        ));
    }
    if t["Outputs"]["AlarmEventBusArn"]["Value"]["Fn::Sub"]
        != "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    {
        findings.push("template.yaml: no AlarmEventBusArn output naming its default bus".into());
    }
    let mut hears = false;
    for (name, f) in of_type(t, "AWS::Serverless::Function") {
        for (event, e) in f["Properties"]["Events"].as_object().into_iter().flatten() {
            let p = &e["Properties"];
            if e["Type"] != "EventBridgeRule" || !matches_alarm_changes(&p["Pattern"]) {
                continue;
            }
            if !matches!(p["EventBusName"].as_str(), None | Some("default")) {
                findings.push(format!("{name}.{event}: not on the default bus"));
            } else if !p["Pattern"]["account"].is_null() {
                findings.push(format!(
                    "{name}.{event}: filters on account, so forwarded alarms never match"
                ));
            } else {
                hears = true;
            }
        }
    }
    if !hears {
        findings
            .push("template.yaml: no function hears alarm state changes on the default bus".into());
    }
    findings
}

/// The controller's default bus accepts alarm state changes from exactly the accounts in
/// EnvironmentAccountIds: a bus policy created when some are given, none when the list is
/// empty (the default).
fn bus_policy_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    if t["Parameters"]["EnvironmentAccountIds"]["Default"] != "" {
        findings.push("EnvironmentAccountIds: not optional (default empty)".into());
    }
    let policies: Vec<(&String, &Value)> = of_type(t, "AWS::Events::EventBusPolicy").collect();
    let given = BTreeMap::from([(
        "EnvironmentAccountIds",
        json!(["111122223333", "444455556666"]),
    )]);
    let none = BTreeMap::from([("EnvironmentAccountIds", json!([""]))]);
    let accepting: Vec<&(&String, &Value)> = policies
        .iter()
        .filter(|(_, p)| {
            let s = &p["Properties"]["Statement"];
            matches!(p["Properties"]["EventBusName"].as_str(), None | Some("default"))
                && s["Effect"] == "Allow"
                && s["Principal"]["AWS"]["Ref"] == "EnvironmentAccountIds"
                && actions(s) == ["events:PutEvents"]
                && s["Resource"]["Fn::Sub"]
                    == "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
        })
        .collect();
    if !accepting.iter().any(|(_, p)| created(t, p, &given)) {
        findings.push(
            "no bus policy lets the EnvironmentAccountIds put events on the default bus".into(),
        );
    }
    for (name, p) in &policies {
        if created(t, p, &none) {
            findings.push(format!("{name}: created with no environment accounts"));
        }
        let condition = &p["Properties"]["Statement"]["Condition"];
        for (key, value) in [
            ("events:source", ALARM_SOURCE),
            ("events:detail-type", ALARM_DETAIL_TYPE),
        ] {
            let allowed = one_or_many(&condition["ForAllValues:StringEquals"][key]);
            if !condition.is_null() && !allowed.iter().any(|v| *v == value) {
                findings.push(format!("{name}: refuses {key} {value}"));
            }
        }
    }
    findings
}

/// The controller names, for environment accounts, exactly the roles that may assume
/// environment roles (those granted sts:AssumeRole).
fn controller_roles_output_findings(t: &Value) -> Vec<String> {
    let listed: BTreeSet<String> = t["Outputs"]["EnvironmentAccessRoleArns"]["Value"]["Fn::Join"]
        [1]
    .as_array()
    .into_iter()
    .flatten()
    .filter_map(|v| v["Fn::GetAtt"][0].as_str().map(String::from))
    .collect();
    let assuming: BTreeSet<String> = roles_granted(t, "sts:AssumeRole").into_iter().collect();
    let mut findings = Vec::new();
    for role in assuming.difference(&listed) {
        findings.push(format!(
            "EnvironmentAccessRoleArns: lacks {role}, which assumes environment roles"
        ));
    }
    for role in listed.difference(&assuming) {
        findings.push(format!(
            "EnvironmentAccessRoleArns: lists {role}, which assumes no environment role"
        ));
    }
    findings
}

/// What the README tells an environment account to trust.
fn readme_trust_findings(readme: &str) -> Vec<String> {
    let mut findings = Vec::new();
    if readme.contains("*Role-*") {
        findings.push(
            "README.md: says to trust <stack>-*Role-* (a wildcard principal, which IAM refuses)"
                .into(),
        );
    }
    for needed in [
        "environment-account.yaml",
        "aws:PrincipalArn",
        "EnvironmentAccountIds",
    ] {
        if !readme.contains(needed) {
            findings.push(format!("README.md: never mentions {needed}"));
        }
    }
    findings
}

// ----------------------------------------------------------------------------------- tests

#[test]
fn every_function_crate_is_built_and_deployed() {
    let t = template();
    let binaries: BTreeSet<String> = of_type(&t, "AWS::Serverless::Function")
        .filter_map(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str())
        .map(str::to_string)
        .collect();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    let expected: BTreeSet<String> = crates.into_iter().collect();
    assert_eq!(binaries, expected);
}

#[test]
fn every_function_is_arm64_traced_logged_and_sized() {
    assert_eq!(function_findings(&template()), Vec::<String>::new());
}

#[test]
fn every_substitution_in_the_definition_is_provided() {
    let asl = read("statemachine/blue-green.asl.json");
    let t = template();
    let (_, machine) = of_type(&t, "AWS::Serverless::StateMachine")
        .next()
        .unwrap_or_else(|| panic!("no state machine"));
    let provided = &machine["Properties"]["DefinitionSubstitutions"];
    let used: BTreeSet<&str> = asl
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .collect();
    assert!(used.len() >= 5, "{used:?}");
    for name in used {
        assert!(
            provided[name].is_object(),
            "template does not substitute {name}"
        );
    }
    let p = &machine["Properties"];
    assert_eq!(p["DefinitionUri"], "statemachine/blue-green.asl.json");
    assert_eq!(p["Type"], "STANDARD");
    assert_eq!(p["Tracing"]["Enabled"], true);
    assert_eq!(p["Logging"]["Level"], "ALL");
    // execution data stays out of the logs unless the operator turns it on
    assert_eq!(t["Parameters"]["LogExecutionData"]["Default"], "false");
}

#[test]
fn policies_name_their_actions_and_scope_their_resources() {
    assert_eq!(
        iam_findings(&template(), &allowlist()),
        Vec::<String>::new()
    );
}

#[test]
fn no_inline_policies() {
    assert_eq!(inline_policy_findings(&template()), Vec::<String>::new());
}

#[test]
fn every_unscoped_action_is_explained_and_still_needed() {
    let t = template();
    let allowed = allowlist();
    let granted: BTreeSet<String> = identity_statements(&t)
        .into_iter()
        .filter(|(_, s)| one_or_many(&s["Resource"]).iter().any(|r| *r == "*"))
        .flat_map(|(_, s)| actions(s))
        .collect();
    for (action, why) in &allowed.0 {
        assert!(why.len() > 20, "{action}: say why AWS cannot scope it");
        assert!(
            granted.contains(action),
            "{action} is allowlisted but no longer granted on \"*\": remove it"
        );
    }
}

#[test]
fn the_table_is_on_demand_recoverable_encrypted_protected_and_expires_items() {
    assert_eq!(table_findings(&template()), Vec::<String>::new());
}

#[test]
fn every_api_route_requires_iam_and_the_api_logs_and_throttles() {
    assert_eq!(api_findings(&template()), Vec::<String>::new());
}

#[test]
fn the_api_routes_are_the_handlers_routes() {
    let openapi: Value = serde_json::from_str(&read("functions/api/openapi.json"))
        .unwrap_or_else(|e| panic!("openapi.json: {e}"));
    let documented: BTreeSet<String> = openapi["paths"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.iter())
        .flat_map(|(path, ops)| {
            ops.as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .filter(|m| m.as_str() != "parameters")
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = documented.into_iter().collect();
    let deployed: BTreeSet<String> = api_routes(&template())
        .into_iter()
        .map(|(route, _, _)| route)
        .collect();
    assert_eq!(deployed, expected);
}

#[test]
fn asynchronously_invoked_functions_keep_their_failed_events() {
    assert_eq!(async_findings(&template()), Vec::<String>::new());
}

#[test]
fn the_alarms_the_reference_pipeline_names_notify_the_topic() {
    let t = template();
    let names: BTreeMap<String, &Value> = of_type(&t, "AWS::CloudWatch::Alarm")
        .filter_map(|(_, a)| {
            a["Properties"]["AlarmName"]["Fn::Sub"]
                .as_str()
                .map(|n| (n.trim_start_matches("${AWS::StackName}-").to_string(), a))
        })
        .collect();
    for alarm in [
        "DeploymentFailed",
        "HighErrorRateDuringDeployment",
        "RollbackTriggered",
    ] {
        let a = names
            .get(alarm)
            .unwrap_or_else(|| panic!("no {alarm} alarm"));
        assert_eq!(
            a["Properties"]["AlarmActions"],
            json!([{"Ref": "NotificationTopic"}]),
            "{alarm}"
        );
    }
    // 5xx rate above 5 % for two consecutive one-minute periods
    let p = &names["HighErrorRateDuringDeployment"]["Properties"];
    assert_eq!(
        (
            &p["Threshold"],
            &p["EvaluationPeriods"],
            &p["DatapointsToAlarm"]
        ),
        (&json!(5), &json!(2), &json!(2))
    );
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
    let periods: Vec<&Value> = one_or_many(&p["Metrics"])
        .into_iter()
        .filter_map(|m| m.get("MetricStat"))
        .map(|s| &s["Period"])
        .collect();
    assert_eq!(periods, [&json!(60), &json!(60)]);
    // the metric names the EMF module writes are the ones the alarms read
    let text = read("template.yaml");
    for metric in [
        shared::emf::SUCCEEDED,
        shared::emf::FAILED,
        shared::emf::ROLLED_BACK,
        shared::emf::DURATION,
    ] {
        assert!(text.contains(metric), "{metric}");
    }
    assert!(text.contains(shared::emf::NAMESPACE));
}

#[test]
fn the_key_policy_lets_the_stack_create_its_aliases_and_grants() {
    assert_eq!(key_policy_findings(&template()), Vec::<String>::new());
}

#[test]
fn every_role_can_make_the_calls_its_function_makes() {
    let t = template();
    assert_eq!(need_findings(&t, &needs(&t)), Vec::<String>::new());
}

#[test]
fn eventbridge_can_deliver_to_the_encrypted_topic() {
    assert_eq!(eventbridge_key_findings(&template()), Vec::<String>::new());
}

#[test]
fn no_arn_names_a_partition() {
    assert_eq!(partition_findings(&template()), Vec::<String>::new());
}

#[test]
fn every_name_fits_with_the_longest_stack_name_the_readme_allows() {
    let t = template();
    let longest = stated_stack_name_limit();
    assert!(
        longest <= STACK_NAME_LIMIT,
        "CloudFormation allows {STACK_NAME_LIMIT}"
    );
    let stack = format!("s{}", "x".repeat(longest - 1));
    assert_eq!(name_findings(&t, &stack), Vec::<String>::new());
    // and the README states the real limit: one character more breaks a name
    assert_ne!(
        name_findings(&t, &format!("{stack}x")),
        Vec::<String>::new(),
        "a {} character stack name fits too: state that in README.md",
        longest + 1
    );
}

/// The same facts on what CloudFormation receives after the SAM transform: the resources SAM
/// generates (functions, their permissions, event rules, the API's stage) are checked too.
#[test]
fn what_aws_enforces_holds_on_the_transformed_template() {
    let t = transformed_template();
    assert_eq!(key_policy_findings(&t), Vec::<String>::new());
    assert_eq!(eventbridge_key_findings(&t), Vec::<String>::new());
    assert_eq!(partition_findings(&t), Vec::<String>::new());
    let longest = stated_stack_name_limit();
    let stack = format!("s{}", "x".repeat(longest - 1));
    assert_eq!(name_findings(&t, &stack), Vec::<String>::new());
    assert_ne!(
        name_findings(&t, &format!("{stack}x")),
        Vec::<String>::new(),
        "after the transform, a {} character stack name fits too",
        longest + 1
    );
    // and the transform leaves the checks something to check
    assert!(of_type(&t, "AWS::KMS::Alias").count() > 0);
    assert!(of_type(&t, "AWS::Lambda::Function").count() >= 10);
}

#[test]
fn the_environment_template_names_its_actions_scopes_its_resources_and_its_partition() {
    let env = environment_template();
    assert_eq!(iam_findings(&env, &allowlist()), Vec::<String>::new());
    assert_eq!(inline_policy_findings(&env), Vec::<String>::new());
    assert_eq!(partition_findings(&env), Vec::<String>::new());
}

#[test]
fn the_environment_role_trusts_the_controllers_function_roles_only() {
    assert_eq!(
        environment_role_findings(&environment_template()),
        Vec::<String>::new()
    );
}

#[test]
fn the_environment_role_grants_what_the_controller_does_there() {
    assert_eq!(
        environment_grant_findings(&template(), &environment_template()),
        Vec::<String>::new()
    );
}

#[test]
fn alarms_in_environment_accounts_reach_the_alarm_trigger() {
    assert_eq!(
        alarm_forwarding_findings(&template(), &environment_template()),
        Vec::<String>::new()
    );
}

#[test]
fn the_controllers_bus_accepts_alarms_from_the_environment_accounts_only() {
    assert_eq!(bus_policy_findings(&template()), Vec::<String>::new());
}

#[test]
fn the_controller_names_the_roles_environment_accounts_trust() {
    assert_eq!(
        controller_roles_output_findings(&template()),
        Vec::<String>::new()
    );
}

#[test]
fn the_readme_trusts_an_account_and_names_its_roles_by_condition() {
    assert_eq!(
        readme_trust_findings(&read("README.md")),
        Vec::<String>::new()
    );
}

/// Deliberately broken copies of the template: each break is caught, for the named reason.
mod broken_copies {
    use super::*;

    /// A copy of the template with `from` replaced by `to` (which must occur).
    fn broken(from: &str, to: &str) -> Value {
        let text = read("template.yaml");
        assert!(text.contains(from), "the template no longer has {from:?}");
        parse(&text.replacen(from, to, 1))
    }

    fn assert_caught(findings: &[String], reason: &str) {
        assert!(
            findings.iter().any(|f| f.contains(reason)),
            "expected a finding with {reason:?}, got {findings:?}"
        );
    }

    #[test]
    fn a_wildcard_action() {
        let t = broken("- dynamodb:GetItem\n", "- dynamodb:*\n");
        assert_caught(
            &iam_findings(&t, &allowlist()),
            "DeploymentTablePolicy: wildcard action dynamodb:*",
        );
    }

    #[test]
    fn a_wildcard_action_in_a_key_policy() {
        let t = broken("- kms:DescribeKey\n", "- kms:*\n");
        assert_caught(
            &iam_findings(&t, &allowlist()),
            "ControllerKey: wildcard action kms:*",
        );
    }

    #[test]
    fn a_mutating_action_on_every_resource() {
        let t = broken("Resource: !Ref ListenerArns", "Resource: \"*\"");
        assert_caught(
            &iam_findings(&t, &allowlist()),
            "TrafficWritePolicy: elasticloadbalancing:ModifyListener on resource \"*\"",
        );
    }

    #[test]
    fn an_inline_policy_on_a_function() {
        let t = broken(
            "      Role: !GetAtt ApiRole.Arn\n",
            "      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: sqs:SendMessage\n              Resource: \"*\"\n",
        );
        assert_caught(&inline_policy_findings(&t), "ApiFunction: inline policies");
        assert_caught(
            &iam_findings(&t, &allowlist()),
            "ApiFunction: sqs:SendMessage on resource \"*\"",
        );
    }

    #[test]
    fn a_key_policy_without_alias_management() {
        let t = broken("              - kms:CreateAlias\n", "");
        assert_caught(
            &key_policy_findings(&t),
            "ControllerKey: the key policy does not let the account kms:CreateAlias",
        );
    }

    #[test]
    fn a_key_policy_that_lets_the_account_create_grants_only_through_sqs() {
        let t = broken(
            "                  - !Sub \"dynamodb.${AWS::Region}.amazonaws.com\"\n",
            "",
        );
        assert_caught(
            &key_policy_findings(&t),
            "ControllerKey: the key policy does not let the account kms:CreateGrant through DynamoDB",
        );
    }

    #[test]
    fn tagging_on_create_without_the_create_action_condition() {
        let t = broken(
            "              StringEquals: { ecs:CreateAction: RegisterTaskDefinition }\n",
            "              StringEquals: { ecs:CreateAction: RunTask }\n",
        );
        assert_caught(
            &need_findings(&t, &needs(&t)),
            "DeployGreenRole: not granted ecs:TagResource with StringEquals ecs:CreateAction = RegisterTaskDefinition",
        );
    }

    #[test]
    fn alarms_read_only_by_alarm_arn() {
        let t = broken(
            "            Action: cloudwatch:DescribeAlarms\n            Resource: \"*\"\n",
            "            Action: cloudwatch:DescribeAlarms\n            Resource: !Sub \"arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*\"\n",
        );
        assert_caught(
            &need_findings(&t, &needs(&t)),
            "EvaluateRole: not granted cloudwatch:DescribeAlarms on \"*\"",
        );
    }

    #[test]
    fn an_api_that_cannot_read_task_definitions() {
        let t = broken(
            "            Action: ecs:DescribeTaskDefinition\n",
            "            Action: ecs:DescribeTasks\n",
        );
        assert_caught(
            &need_findings(&t, &needs(&t)),
            "ApiRole: not granted ecs:DescribeTaskDefinition",
        );
    }

    #[test]
    fn scan_evidence_without_inspector() {
        let t = broken(
            "            Action: [inspector2:ListFindings, inspector2:ListCoverage]\n",
            "            Action: inspector2:ListFindings\n",
        );
        assert_caught(
            &need_findings(&t, &needs(&t)),
            "ApiRole: not granted inspector2:ListCoverage on \"*\"",
        );
    }

    #[test]
    fn eventbridge_on_the_key_only_under_a_source_account_condition() {
        let t = broken(
            "                kms:EncryptionContext:aws:sns:topicArn: !Sub",
            "                aws:SourceAccount: !Ref AWS::AccountId\n                kms:EncryptionContext:aws:sns:topicArn: !Sub",
        );
        assert_caught(
            &eventbridge_key_findings(&t),
            "ControllerKey: the key policy does not let EventBridge deliver DeploymentStatusNotificationRule's events to NotificationTopic",
        );
    }

    #[test]
    fn eventbridge_on_the_key_for_another_topic() {
        let t = broken(
            ":${AWS::StackName}-notifications\"\n",
            ":${AWS::StackName}-other\"\n",
        );
        assert_caught(
            &eventbridge_key_findings(&t),
            "ControllerKey: the key policy does not let EventBridge deliver DeploymentStatusNotificationRule's events to NotificationTopic",
        );
    }

    #[test]
    fn an_arn_in_the_aws_partition_only() {
        let t = broken(
            "Resource: !Sub \"arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-blue-green\"",
            "Resource: !Sub \"arn:aws:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-blue-green\"",
        );
        assert_caught(
            &partition_findings(&t),
            "template.Resources.StartDeploymentPolicy.Properties.PolicyDocument.Statement[0].Resource.Fn::Sub: \"arn:aws:states:",
        );
    }

    #[test]
    fn a_rule_name_too_long_for_a_long_stack_name() {
        let t = broken(
            "RuleName: !Sub \"${AWS::StackName}-execution-ended\"",
            "RuleName: !Sub \"${AWS::StackName}-execution-status-changed\"",
        );
        let stack = "s".repeat(stated_stack_name_limit());
        assert_caught(
            &name_findings(&t, &stack),
            "ExecutionStatusFunction.ExecutionEnded.Name: ",
        );
    }

    #[test]
    fn a_named_resource_of_an_unmeasured_type() {
        let t = broken(
            "      TopicName: !Sub \"${AWS::StackName}-notifications\"\n",
            "      TopicName: !Sub \"${AWS::StackName}-notifications\"\n      FifoTopicName: !Sub \"${AWS::StackName}-x\"\n",
        );
        assert_caught(
            &name_findings(&t, "stack"),
            "NotificationTopic.FifoTopicName: no known length limit",
        );
    }

    #[test]
    fn point_in_time_recovery_off() {
        let t = broken(
            "PointInTimeRecoveryEnabled: true",
            "PointInTimeRecoveryEnabled: false",
        );
        assert_caught(
            &table_findings(&t),
            "DeploymentsTable: point-in-time recovery is off",
        );
    }

    #[test]
    fn a_table_on_the_aws_owned_key() {
        let t = broken(
            "        SSEType: KMS\n        KMSMasterKeyId: !GetAtt ControllerKey.Arn\n",
            "",
        );
        assert_caught(
            &table_findings(&t),
            "DeploymentsTable: not encrypted with the stack's customer-managed key",
        );
    }

    #[test]
    fn a_route_without_auth() {
        let t = broken(
            "Method: POST, Path: \"/services/{service}/environments/{environment}/promotions\", Auth: { Authorizer: AWS_IAM }",
            "Method: POST, Path: \"/services/{service}/environments/{environment}/promotions\", Auth: { Authorizer: NONE }",
        );
        assert_caught(
            &api_findings(&t),
            "route POST /services/{service}/environments/{environment}/promotions: authorizer NONE, not AWS_IAM",
        );
    }

    #[test]
    fn a_route_that_leaves_auth_out() {
        let t = broken(
            "Method: GET, Path: \"/services/{service}/metrics\", Auth: { Authorizer: AWS_IAM }",
            "Method: GET, Path: \"/services/{service}/metrics\"",
        );
        assert_caught(
            &api_findings(&t),
            "route GET /services/{service}/metrics: authorizer (none), not AWS_IAM",
        );
    }

    #[test]
    fn a_trigger_without_an_on_failure_destination() {
        let t = broken(
            "            Destination: !GetAtt FailedEventsQueue.Arn\n",
            "",
        );
        assert_caught(
            &async_findings(&t),
            "EcrPushTriggerFunction: invoked asynchronously without an on-failure destination",
        );
    }

    #[test]
    fn a_log_group_without_retention() {
        let t = broken(
            "      LogGroupName: !Sub \"/aws/lambda/${AWS::StackName}-evaluate\"\n      RetentionInDays: !Ref LogRetentionDays\n",
            "      LogGroupName: !Sub \"/aws/lambda/${AWS::StackName}-evaluate\"\n",
        );
        assert_caught(
            &function_findings(&t),
            "EvaluateFunction: its log group has no retention or no KMS key",
        );
    }

    #[test]
    fn a_function_on_x86() {
        let t = broken("Architectures: [arm64]", "Architectures: [x86_64]");
        assert_caught(&function_findings(&t), "ApiFunction: not arm64");
    }

    /// A copy of environment-account.yaml with `from` replaced by `to` (which must occur).
    fn broken_environment(from: &str, to: &str) -> Value {
        let text = read("environment-account.yaml");
        assert!(
            text.contains(from),
            "environment-account.yaml no longer has {from:?}"
        );
        parse(&text.replacen(from, to, 1))
    }

    #[test]
    fn the_controllers_roles_as_a_wildcard_principal() {
        let env = broken_environment(
            "Principal: { AWS: !Sub \"arn:${AWS::Partition}:iam::${ControllerAccountId}:root\" }",
            "Principal: { AWS: !Sub \"arn:${AWS::Partition}:iam::${ControllerAccountId}:role/bluegreen-*Role-*\" }",
        );
        assert_caught(
            &environment_role_findings(&env),
            "EnvironmentRole: a wildcard in the trusted principal",
        );
    }

    #[test]
    fn the_controllers_whole_account_trusted() {
        let env = broken_environment(
            "              ArnLike:\n                aws:PrincipalArn: !Ref ControllerRoleArns\n",
            "",
        );
        assert_caught(
            &environment_role_findings(&env),
            "EnvironmentRole: the controller's account is trusted without an ArnLike aws:PrincipalArn condition",
        );
    }

    #[test]
    fn an_environment_role_the_controller_may_not_assume() {
        let env = broken_environment(
            "RoleName: !Sub \"bluegreen-environment-${ServiceName}-${EnvironmentName}\"",
            "RoleName: !Sub \"deployments-${EnvironmentName}\"",
        );
        assert_caught(
            &environment_role_findings(&env),
            "EnvironmentRole: named \"deployments-${EnvironmentName}\"",
        );
    }

    #[test]
    fn an_environment_name_too_long_for_a_role_name() {
        let env = broken_environment("{1,17}$", "{1,64}$");
        assert_caught(
            &environment_role_findings(&env),
            "let the role name exceed 64 characters",
        );
    }

    /// Finding 2 of the security review: a role that any session of the controller may assume
    /// lets another service's environment, naming it as role_arn, act here.
    #[test]
    fn an_environment_role_that_ignores_the_sessions_registry_key() {
        let env = broken_environment(
            "            Action: sts:AssumeRole\n            Condition:\n              ArnLike:\n                aws:PrincipalArn: !Ref ControllerRoleArns\n              StringEquals:\n                aws:RequestTag/bluegreen:service: !Ref ServiceName\n                aws:RequestTag/bluegreen:environment: !Ref EnvironmentName\n",
            "            Action: sts:AssumeRole\n            Condition:\n              ArnLike:\n                aws:PrincipalArn: !Ref ControllerRoleArns\n",
        );
        assert_caught(
            &environment_role_findings(&env),
            "EnvironmentRole: \"sts:AssumeRole\" is allowed without requiring the session tags",
        );
        let untagged = broken_environment(
            "            Action: sts:TagSession\n",
            "            Action: sts:GetCallerIdentity\n",
        );
        assert_caught(
            &environment_role_findings(&untagged),
            "EnvironmentRole: the controller may not tag its sessions",
        );
    }

    #[test]
    fn an_environment_role_that_cannot_tag_new_revisions() {
        let env = broken_environment(
            "            Action: ecs:TagResource\n",
            "            Action: ecs:ListTagsForResource\n",
        );
        assert_caught(
            &environment_grant_findings(&template(), &env),
            "EcsDeployPolicy: the environment role lacks ecs:TagResource",
        );
    }

    #[test]
    fn alarms_forwarded_without_a_role() {
        let env = broken_environment("          RoleArn: !GetAtt AlarmForwardingRole.Arn\n", "");
        assert_caught(
            &alarm_forwarding_findings(&template(), &env),
            "AlarmForwardingRule: targets the controller's bus without a role",
        );
    }

    #[test]
    fn alarms_forwarded_somewhere_else() {
        let env = broken_environment(
            "        - Id: controller-event-bus\n          Arn: !Ref ControllerEventBusArn\n",
            "        - Id: controller-event-bus\n          Arn: !Ref ControllerAccountId\n",
        );
        assert_caught(
            &alarm_forwarding_findings(&template(), &env),
            "AlarmForwardingRule: does not target the controller's bus",
        );
    }

    #[test]
    fn a_forwarding_role_that_may_put_events_anywhere() {
        let env = broken_environment(
            "            Action: events:PutEvents\n            Resource: !Ref ControllerEventBusArn\n",
            "            Action: events:PutEvents\n            Resource: \"*\"\n",
        );
        assert_caught(
            &alarm_forwarding_findings(&template(), &env),
            "AlarmForwardingRole: not allowed events:PutEvents on the controller's bus",
        );
    }

    #[test]
    fn an_alarm_rule_that_hears_its_own_account_only() {
        let t = broken(
            "              source: [aws.cloudwatch]\n",
            "              source: [aws.cloudwatch]\n              account: [!Ref AWS::AccountId]\n",
        );
        assert_caught(
            &alarm_forwarding_findings(&t, &environment_template()),
            "AlarmTriggerFunction.AlarmFired: filters on account",
        );
    }

    #[test]
    fn no_bus_policy_for_the_environment_accounts() {
        let t = broken(
            "        Principal: { AWS: !Ref EnvironmentAccountIds }\n",
            "        Principal: { AWS: !Ref AWS::AccountId }\n",
        );
        assert_caught(
            &bus_policy_findings(&t),
            "no bus policy lets the EnvironmentAccountIds put events on the default bus",
        );
    }

    #[test]
    fn a_bus_policy_created_without_environment_accounts() {
        let t = broken("    Condition: HasEnvironmentAccounts\n", "");
        assert_caught(
            &bus_policy_findings(&t),
            "EnvironmentAlarmsBusPolicy: created with no environment accounts",
        );
    }

    #[test]
    fn a_bus_policy_that_refuses_alarm_state_changes() {
        let t = broken(
            "            events:detail-type: [CloudWatch Alarm State Change]\n",
            "            events:detail-type: [ECR Image Action]\n",
        );
        assert_caught(
            &bus_policy_findings(&t),
            "EnvironmentAlarmsBusPolicy: refuses events:detail-type CloudWatch Alarm State Change",
        );
    }

    #[test]
    fn a_function_role_environment_accounts_do_not_trust() {
        let t = broken("        - !GetAtt RollbackRole.Arn\n", "");
        assert_caught(
            &controller_roles_output_findings(&t),
            "EnvironmentAccessRoleArns: lacks RollbackRole",
        );
    }

    #[test]
    fn a_readme_that_trusts_a_wildcard_principal() {
        let readme = read("README.md").replacen(
            "aws:PrincipalArn",
            "aws:PrincipalArn (or trust `<stack>-*Role-*` directly)",
            1,
        );
        assert_caught(
            &readme_trust_findings(&readme),
            "README.md: says to trust <stack>-*Role-*",
        );
    }

    #[test]
    fn a_bus_policy_statement_id_too_long_for_a_long_stack_name() {
        let t = broken(
            "StatementId: !Sub \"${AWS::StackName}-env-alarms\"",
            "StatementId: !Sub \"${AWS::StackName}-environment-alarms\"",
        );
        let stack = "s".repeat(stated_stack_name_limit());
        assert_caught(
            &name_findings(&t, &stack),
            "EnvironmentAlarmsBusPolicy.StatementId: ",
        );
    }
}

// ---------------------------------------------------------------------------- concurrency

/// The functions the state machine invokes (its `…FunctionArn` substitutions) and the alarm
/// trigger keep `PhaseReservedConcurrency` each, the API is capped at `ApiReservedConcurrency`,
/// and with the defaults Lambda's rule holds at the default account quota: 1,000 concurrent
/// executions, of which at least 100 stay unreserved.
fn concurrency_findings(t: &Value) -> Vec<String> {
    const ACCOUNT_QUOTA: u64 = 1000;
    const UNRESERVED_MINIMUM: u64 = 100;
    let mut findings = Vec::new();
    let reserved = |param: &str, cond: &str| json!({"Fn::If": [cond, {"Ref": param}, {"Ref": "AWS::NoValue"}]});
    let subs = &t["Resources"]["BlueGreenStateMachine"]["Properties"]["DefinitionSubstitutions"];
    let mut phases: Vec<String> = subs
        .as_object()
        .into_iter()
        .flat_map(|m| m.iter())
        .filter(|(k, _)| k.ends_with("FunctionArn"))
        .filter_map(|(_, v)| v["Fn::GetAtt"][0].as_str().map(String::from))
        .collect();
    if phases.len() < 6 {
        findings.push(format!(
            "only {} phase functions found: {phases:?}",
            phases.len()
        ));
    }
    phases.push("AlarmTriggerFunction".to_string());
    for f in &phases {
        let got = &t["Resources"][f.as_str()]["Properties"]["ReservedConcurrentExecutions"];
        if got != &reserved("PhaseReservedConcurrency", "ReservePhaseConcurrency") {
            findings.push(format!(
                "{f}: ReservedConcurrentExecutions is {got}, not PhaseReservedConcurrency"
            ));
        }
    }
    let api = &t["Resources"]["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"];
    if api != &reserved("ApiReservedConcurrency", "LimitApiConcurrency") {
        findings.push(format!(
            "ApiFunction: ReservedConcurrentExecutions is {api}, not ApiReservedConcurrency"
        ));
    }
    for (cond, param) in [
        ("ReservePhaseConcurrency", "PhaseReservedConcurrency"),
        ("LimitApiConcurrency", "ApiReservedConcurrency"),
    ] {
        let expected = json!({"Fn::Not": [{"Fn::Equals": [{"Ref": param}, "0"]}]});
        if t["Conditions"][cond] != expected {
            findings.push(format!("{cond}: not \"{param} is not 0\""));
        }
    }
    let default = |p: &str| t["Parameters"][p]["Default"].as_u64().unwrap_or(0);
    let phase = default("PhaseReservedConcurrency");
    let total = phase * phases.len() as u64 + default("ApiReservedConcurrency");
    if phase == 0 || default("ApiReservedConcurrency") == 0 {
        findings.push("a default reserves nothing".to_string());
    }
    if total > ACCOUNT_QUOTA - UNRESERVED_MINIMUM {
        findings.push(format!(
            "the defaults reserve {total} of the default quota {ACCOUNT_QUOTA}, leaving fewer than {UNRESERVED_MINIMUM} unreserved"
        ));
    }
    findings
}

#[test]
fn the_phases_keep_concurrency_the_api_cannot_take() {
    assert_eq!(concurrency_findings(&template()), Vec::<String>::new());
}

mod concurrency_broken_copies {
    use super::*;

    fn broken(from: &str, to: &str) -> Value {
        let text = read("template.yaml");
        assert!(text.contains(from), "the template no longer has {from:?}");
        parse(&text.replacen(from, to, 1))
    }

    fn assert_caught(findings: &[String], reason: &str) {
        assert!(
            findings.iter().any(|f| f.contains(reason)),
            "expected a finding with {reason:?}, got {findings:?}"
        );
    }

    #[test]
    fn a_rollback_without_reserved_concurrency() {
        let t = broken(
            "      FunctionName: !Sub \"${AWS::StackName}-rollback\"\n      ReservedConcurrentExecutions: !If [ReservePhaseConcurrency, !Ref PhaseReservedConcurrency, !Ref AWS::NoValue]\n",
            "      FunctionName: !Sub \"${AWS::StackName}-rollback\"\n",
        );
        assert_caught(
            &concurrency_findings(&t),
            "RollbackFunction: ReservedConcurrentExecutions",
        );
    }

    #[test]
    fn an_unlimited_api() {
        let t = broken(
            "      ReservedConcurrentExecutions: !If [LimitApiConcurrency, !Ref ApiReservedConcurrency, !Ref AWS::NoValue]\n",
            "",
        );
        assert_caught(
            &concurrency_findings(&t),
            "ApiFunction: ReservedConcurrentExecutions",
        );
    }

    #[test]
    fn defaults_that_leave_too_little_unreserved() {
        let t = broken(
            "  PhaseReservedConcurrency:\n    Type: Number\n    Default: 20\n",
            "  PhaseReservedConcurrency:\n    Type: Number\n    Default: 130\n",
        );
        assert_caught(
            &concurrency_findings(&t),
            "leaving fewer than 100 unreserved",
        );
    }
}

// ------------------------------------------------------------------ who may change or decide
//
// Issue 17 (security model): the GitHub roles trust one repository and environment exactly;
// the promote workflow's role calls the API and cannot change the stack; decisions need a
// recent MFA (the approver policy for its holders, the organization's SCP for everyone);
// CloudFormation's execution role and every role it manages stay within their boundaries.

/// The decision routes: POST routes that approve, reject or promote. Read from the template's
/// routes, so a new decision route has to be added here (and to the SCP) on purpose.
fn decision_routes(t: &Value) -> Vec<String> {
    let mut routes: Vec<String> = api_routes(t)
        .into_iter()
        .map(|(route, _, _)| route)
        .filter(|r| {
            r == "POST /services/{service}/environments/{environment}/promotions"
                || r.ends_with("}/approve") && r.starts_with("POST ")
                || r.ends_with("}/reject") && r.starts_with("POST ")
        })
        .collect();
    routes.sort();
    routes
}

/// The governance routes: PUT routes that change what governs deployments (a service's
/// accounts and promotion policy, an environment's protection and approval). Only the admin
/// policy grants them, with MFA.
fn admin_routes(t: &Value) -> Vec<String> {
    let mut routes: Vec<String> = api_routes(t)
        .into_iter()
        .map(|(route, _, _)| route)
        .filter(|r| r.starts_with("PUT ") && r.ends_with("/policy"))
        .collect();
    routes.sort();
    routes
}

/// "POST /services/{service}/environments/{environment}/deployments/{id}/approve" as the tail of
/// an execute-api ARN: "POST/services/*/environments/*/deployments/*/approve".
fn route_arn_tail(route: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap_or((route, ""));
    let path: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .map(|seg| if seg.starts_with('{') { "*" } else { seg })
        .collect();
    format!("{method}/{}", path.join("/"))
}

/// A resource string of a policy (a plain string or the template of an Fn::Sub).
fn resource_text(r: &Value) -> String {
    r.as_str()
        .or_else(|| r["Fn::Sub"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The GitHub OIDC trust of a role: one statement, sts:AssumeRoleWithWebIdentity from the
/// provider, StringEquals on exactly `aud` = sts.amazonaws.com and `sub` =
/// `repo:<owner>/<repo>:environment:<env>` (no wildcard), and the one StringLike the API
/// relies on: `sts:RoleSessionName` = `gh-?*`, a session name that carries the GitHub user who
/// triggered the run. No other operator or key that could widen it. The parameters it is made
/// of cannot hold a wildcard either.
fn github_trust_findings(t: &Value, role: &str) -> Vec<String> {
    let mut findings = Vec::new();
    let trust = &t["Resources"][role]["Properties"]["AssumeRolePolicyDocument"];
    let statements = one_or_many(&trust["Statement"]);
    if statements.len() != 1 {
        findings.push(format!(
            "{role}: {} trust statements, expected one",
            statements.len()
        ));
    }
    for s in statements {
        if s["Effect"] != "Allow" || s["Action"] != "sts:AssumeRoleWithWebIdentity" {
            findings.push(format!(
                "{role}: trust is not Allow sts:AssumeRoleWithWebIdentity: {s}"
            ));
        }
        let operators: Vec<&String> = s["Condition"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if operators != ["StringEquals", "StringLike"] {
            findings.push(format!(
                "{role}: trust conditions {operators:?}, expected StringEquals and StringLike"
            ));
        }
        if s["Condition"]["StringLike"] != json!({"sts:RoleSessionName": GITHUB_SESSION_NAME}) {
            findings.push(format!(
                "{role}: StringLike is {}, expected exactly sts:RoleSessionName {GITHUB_SESSION_NAME} (a session name carrying the person who triggered the run)",
                s["Condition"]["StringLike"]
            ));
        }
        let eq = &s["Condition"]["StringEquals"];
        let keys: Vec<&String> = eq
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if keys
            != [
                "token.actions.githubusercontent.com:aud",
                "token.actions.githubusercontent.com:sub",
            ]
        {
            findings.push(format!(
                "{role}: trust keys {keys:?}, expected exactly aud and sub"
            ));
        }
        if eq["token.actions.githubusercontent.com:aud"] != "sts.amazonaws.com" {
            findings.push(format!("{role}: aud is not sts.amazonaws.com"));
        }
        let sub = &eq["token.actions.githubusercontent.com:sub"];
        if sub["Fn::Sub"] != "repo:${GitHubRepository}:environment:${GitHubEnvironment}" {
            findings.push(format!(
                "{role}: sub is {sub}, expected repo:${{GitHubRepository}}:environment:${{GitHubEnvironment}}"
            ));
        }
    }
    for p in ["GitHubRepository", "GitHubEnvironment"] {
        let pattern = t["Parameters"][p]["AllowedPattern"]
            .as_str()
            .unwrap_or_default();
        // Every character the pattern admits is in a bracket class; none may hold * or ?.
        let mut in_class = false;
        let mut admits_wildcard = false;
        for c in pattern.chars() {
            match c {
                '[' => in_class = true,
                ']' => in_class = false,
                '*' | '?' if in_class => admits_wildcard = true,
                _ => {}
            }
        }
        if pattern.is_empty() {
            findings.push(format!("{p}: no AllowedPattern"));
        }
        if admits_wildcard || pattern.contains('.') && !pattern.contains('[') {
            findings.push(format!("{p}: AllowedPattern admits a wildcard"));
        }
    }
    findings
}

/// The session name the GitHub roles' trust requires: `gh-` and at least one character (the
/// workflows use `gh-${{ github.triggering_actor }}`; sts:RoleSessionName is a condition key of
/// sts:AssumeRoleWithWebIdentity in the Service Authorization Reference).
const GITHUB_SESSION_NAME: &str = "gh-?*";

/// The ARN a role of the template gets, as an Fn::Sub template: its fixed `RoleName` (an Fn::Sub)
/// under its `Path` (default `/`). `None` when it has no fixed name.
fn fixed_role_arn(t: &Value, role: &str) -> Option<String> {
    let props = &t["Resources"][role]["Properties"];
    let name = props["RoleName"]["Fn::Sub"].as_str()?;
    let path = props["Path"].as_str().unwrap_or("/");
    Some(format!(
        "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{path}{name}"
    ))
}

/// The API knows the GitHub roles' callers: both roles have fixed names, and the API function's
/// `CI_ROLE_ARNS` names exactly their ARNs when they exist (and nothing when they do not).
fn ci_role_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let mut arns = Vec::new();
    for role in ["GitHubDeployRole", "PromotionRole"] {
        match fixed_role_arn(t, role) {
            Some(arn) => arns.push(arn),
            None => findings.push(format!(
                "{role}: no fixed RoleName (Fn::Sub), so the API cannot name it in CI_ROLE_ARNS"
            )),
        }
    }
    let var =
        &t["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]["CI_ROLE_ARNS"];
    let expected = json!({"Fn::If": ["CreateGitHubDeployRole", {"Fn::Sub": arns.join(",")}, ""]});
    if *var != expected {
        findings.push(format!(
            "ApiFunction: CI_ROLE_ARNS is {var}, expected {expected}"
        ));
    }
    findings
}

/// The promotion role may only invoke the API routes a promotion needs (POST /promotions, GET
/// /deployments and /deployments/*) of this stack's API; nothing in CloudFormation, S3, IAM or
/// The promotion role may only invoke the API routes a promotion needs (POST …/promotions, GET
/// …/deployments and …/deployments/*) of this stack's API; nothing in CloudFormation, S3, IAM or
/// any other service, and no inline policy.
fn promotion_role_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let role = &t["Resources"]["PromotionRole"]["Properties"];
    if !role["Policies"].is_null() {
        findings.push("PromotionRole: inline policies".to_string());
    }
    let allowed_routes = [
        "POST/services/*/environments/*/promotions",
        "GET/services/*/environments/*/deployments",
        "GET/services/*/environments/*/deployments/*",
    ];
    let policies = one_or_many(&role["ManagedPolicyArns"]);
    if policies.is_empty() {
        findings.push("PromotionRole: no policy".to_string());
    }
    for p in policies {
        let Some(name) = p["Ref"].as_str() else {
            findings.push(format!(
                "PromotionRole: policy {p} is not one of the stack's"
            ));
            continue;
        };
        let doc = &t["Resources"][name]["Properties"]["PolicyDocument"];
        for s in one_or_many(&doc["Statement"]) {
            for a in actions(s) {
                let service = a.split(':').next().unwrap_or_default().to_lowercase();
                if ["cloudformation", "iam", "s3"].contains(&service.as_str()) {
                    findings.push(format!(
                        "{name}: {a} lets the promotion role change the stack"
                    ));
                } else if a != "execute-api:Invoke" {
                    findings.push(format!("{name}: {a} is not execute-api:Invoke"));
                }
            }
            for r in one_or_many(&s["Resource"]) {
                let text = resource_text(r);
                let prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/";
                match text.strip_prefix(prefix) {
                    Some(route) if allowed_routes.contains(&route) => {}
                    _ => findings.push(format!(
                        "{name}: {text} is not a promotion route of this stack's API"
                    )),
                }
            }
        }
    }
    findings
}

/// The approver policy: every grant needs MFA at most an hour old; every decision route is
/// denied both without MFA and with an older one (explicit denies, so another grant to the same
/// principal cannot skip MFA).
fn approver_mfa_findings(t: &Value) -> Vec<String> {
    mfa_findings(t, "ApproverPolicy", &decision_routes(t))
}

/// The admin policy: the same for the governance routes, and it grants nothing else.
fn admin_mfa_findings(t: &Value) -> Vec<String> {
    let routes = admin_routes(t);
    let mut findings = mfa_findings(t, "AdminPolicy", &routes);
    let doc = &t["Resources"]["AdminPolicy"]["Properties"]["PolicyDocument"];
    let governed: BTreeSet<String> = routes.iter().map(|r| route_arn_tail(r)).collect();
    for s in one_or_many(&doc["Statement"]) {
        if s["Effect"] != "Allow" {
            continue;
        }
        for r in one_or_many(&s["Resource"]) {
            let text = resource_text(r);
            let tail = text.split_once("}/*/").map_or(text.as_str(), |(_, t)| t);
            if !governed.contains(tail) {
                findings.push(format!(
                    "AdminPolicy: grants {text}, not a governance route"
                ));
            }
        }
    }
    let approver = &t["Resources"]["ApproverPolicy"]["Properties"]["PolicyDocument"];
    for s in one_or_many(&approver["Statement"]) {
        for r in one_or_many(&s["Resource"]) {
            let text = resource_text(r);
            if s["Effect"] == "Allow" && (text.contains("/PUT/") || text.ends_with("/*/*")) {
                findings.push(format!("ApproverPolicy: grants {text}, which may govern"));
            }
        }
    }
    findings
}

fn mfa_findings(t: &Value, policy: &str, routes: &[String]) -> Vec<String> {
    let mut findings = Vec::new();
    let doc = &t["Resources"][policy]["Properties"]["PolicyDocument"];
    let mut no_mfa = BTreeSet::new();
    let mut old_mfa = BTreeSet::new();
    for s in one_or_many(&doc["Statement"]) {
        let c = &s["Condition"];
        let tails: Vec<String> = one_or_many(&s["Resource"])
            .into_iter()
            .map(|r| {
                let text = resource_text(r);
                text.split_once("}/*/")
                    .map(|(_, tail)| tail.to_string())
                    .unwrap_or(text)
            })
            .collect();
        match s["Effect"].as_str() {
            Some("Allow") => {
                if c["Bool"]["aws:MultiFactorAuthPresent"] != "true" {
                    findings.push(format!("{policy}: a grant without MFA: {s}"));
                }
                let age = c["NumericLessThanEquals"]["aws:MultiFactorAuthAge"]
                    .as_str()
                    .and_then(|a| a.parse::<u64>().ok());
                if age.is_none_or(|a| a > 3600) {
                    findings.push(format!(
                        "{policy}: a grant without an MFA age of at most 3600 s: {s}"
                    ));
                }
            }
            _ => {
                if c["BoolIfExists"]["aws:MultiFactorAuthPresent"] == "false" {
                    no_mfa.extend(tails);
                } else if c["NumericGreaterThanIfExists"]["aws:MultiFactorAuthAge"]
                    .as_str()
                    .and_then(|a| a.parse::<u64>().ok())
                    .is_some_and(|a| a <= 3600)
                {
                    old_mfa.extend(tails);
                } else {
                    findings.push(format!("{policy}: a deny of unknown purpose: {s}"));
                }
            }
        }
    }
    for route in routes {
        let tail = route_arn_tail(route);
        if !no_mfa.contains(&tail) {
            findings.push(format!("{policy}: {route} is not denied without MFA"));
        }
        if !old_mfa.contains(&tail) {
            findings.push(format!(
                "{policy}: {route} is not denied on an MFA older than an hour"
            ));
        }
    }
    findings
}

fn scp() -> Value {
    serde_json::from_str(&read("compliance/org/deny-decisions-without-mfa.json"))
        .unwrap_or_else(|e| panic!("compliance/org/deny-decisions-without-mfa.json: {e}"))
}

/// The organization's guardrail: Deny execute-api:Invoke on exactly the decision routes (of
/// any API), once when the session has no MFA (BoolIfExists, so sessions without the key are
/// denied too) and once when it is older than an hour. The one exception: POST /promotions by
/// roles on the PromotionRole's path (OIDC sessions have no MFA; the deployment a promotion
/// starts waits for an approver's).
fn scp_findings(scp: &Value, t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    if scp["Version"] != "2012-10-17" {
        findings.push("SCP: Version is not 2012-10-17".to_string());
    }
    let path = t["Resources"]["PromotionRole"]["Properties"]["Path"]
        .as_str()
        .unwrap_or("(no path)");
    let exempt = format!("arn:aws:iam::*:role{path}*");
    let mut no_mfa = BTreeSet::new();
    let mut old_mfa = BTreeSet::new();
    let mut denied = BTreeSet::new();
    for s in one_or_many(&scp["Statement"]) {
        if s["Effect"] != "Deny" || s["Action"] != "execute-api:Invoke" {
            findings.push(format!("SCP: not a Deny of execute-api:Invoke: {s}"));
            continue;
        }
        let tails: Vec<String> = one_or_many(&s["Resource"])
            .into_iter()
            .map(|r| {
                let r = r.as_str().unwrap_or_default();
                r.strip_prefix("arn:aws:execute-api:*:*:*/*/")
                    .map(String::from)
                    .unwrap_or_else(|| format!("(not a route of every API and stage: {r})"))
            })
            .collect();
        let c = s["Condition"].as_object().cloned().unwrap_or_default();
        let mut operators: Vec<&str> = c.keys().map(String::as_str).collect();
        if let Some(except) = c.get("ArnNotLike") {
            operators.retain(|o| *o != "ArnNotLike");
            if except != &json!({"aws:PrincipalArn": exempt})
                || tails != ["POST/services/*/environments/*/promotions"]
            {
                findings.push(format!(
                    "SCP: only POST …/promotions may exempt {exempt}, and nothing else: {s}"
                ));
            }
        }
        let purpose = match operators.as_slice() {
            ["BoolIfExists"]
                if c["BoolIfExists"] == json!({"aws:MultiFactorAuthPresent": "false"}) =>
            {
                &mut no_mfa
            }
            ["NumericGreaterThanIfExists"]
                if c["NumericGreaterThanIfExists"]["aws:MultiFactorAuthAge"]
                    .as_str()
                    .and_then(|a| a.parse::<u64>().ok())
                    .is_some_and(|a| a <= 3600) =>
            {
                &mut old_mfa
            }
            _ => {
                findings.push(format!(
                    "SCP: a deny that is neither \"no MFA\" (BoolIfExists) nor \"MFA older than an hour\": {s}"
                ));
                continue;
            }
        };
        purpose.extend(tails.iter().cloned());
        denied.extend(tails);
    }
    let decisions: BTreeSet<String> = decision_routes(t)
        .iter()
        .chain(&admin_routes(t))
        .map(|r| route_arn_tail(r))
        .collect();
    for tail in &decisions {
        if !no_mfa.contains(tail) {
            findings.push(format!("SCP: {tail} is not denied without MFA"));
        }
        if !old_mfa.contains(tail) {
            findings.push(format!(
                "SCP: {tail} is not denied on an MFA older than an hour"
            ));
        }
    }
    for tail in denied.difference(&decisions) {
        findings.push(format!("SCP: {tail} is not a decision route"));
    }
    findings
}

// ------------------------------------------------------------------ the pipeline's CloudFormation role

/// Where permissions boundaries live: policies there may name services by wildcard, because a
/// boundary grants nothing, as long as nothing uses them as a policy (boundary_use_findings).
const BOUNDARY_PATH: &str = "/bluegreen.boundary/";

/// The roles of the pipeline itself (not bounded by RuntimeBoundary; out of the execution
/// role's reach by their paths).
const PIPELINE_ROLES: [&str; 3] = [
    "GitHubDeployRole",
    "PromotionRole",
    "CloudFormationExecutionRole",
];

fn boundary_only(t: &Value, policy: &str) -> bool {
    let attached = resources(t).any(|(_, r)| {
        one_or_many(&r["Properties"]["ManagedPolicyArns"])
            .iter()
            .any(|p| p["Ref"] == policy)
    });
    t["Resources"][policy]["Type"] == "AWS::IAM::ManagedPolicy"
        && t["Resources"][policy]["Properties"]["Path"] == BOUNDARY_PATH
        && !attached
}

/// `*` (any run of characters) and `?` (one), as IAM matches actions and resources.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// What a resource of a policy stands for: its Fn::Sub text or string, and for the lists of
/// the environment's resources (same account and region, by the README) an ARN of that kind.
fn resource_forms(r: &Value) -> Vec<Value> {
    let example = |arn: &str| Value::String(format!("arn:${{AWS::Partition}}:{arn}"));
    match r["Ref"].as_str() {
        Some("ListenerArns") => vec![
            example("elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener/app/lb/1/2"),
            example(
                "elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:listener-rule/app/lb/1/2/3",
            ),
        ],
        Some("EcsServiceArns") => {
            vec![example(
                "ecs:${AWS::Region}:${AWS::AccountId}:service/cluster/service",
            )]
        }
        Some("EcrRepositoryArns") => {
            vec![example(
                "ecr:${AWS::Region}:${AWS::AccountId}:repository/name",
            )]
        }
        Some("EksClusterArns") => {
            vec![example("eks:${AWS::Region}:${AWS::AccountId}:cluster/name")]
        }
        _ => match r["Fn::Sub"].as_str() {
            Some(text) => vec![Value::String(text.to_string())],
            None => vec![r.clone()],
        },
    }
}

/// Whether `boundary` allows `action` on `resource` under the statement's `condition`: an
/// Allow naming the action (or a wildcard over it) and the resource (equal, or a pattern over
/// its text) with no condition, or the same condition.
fn covers(boundary: &Value, action: &str, resource: &Value, condition: &Value) -> bool {
    one_or_many(&boundary["Statement"]).iter().any(|b| {
        b["Effect"] == "Allow"
            && (b["Condition"].is_null() || &b["Condition"] == condition)
            && actions(b)
                .iter()
                .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
            && {
                let patterns: Vec<Value> = one_or_many(&b["Resource"])
                    .into_iter()
                    .flat_map(resource_forms)
                    .collect();
                patterns.iter().any(|p| p == resource || p == "*")
                    || resource_forms(resource).iter().all(|form| {
                        patterns.iter().any(|p| match (p.as_str(), form.as_str()) {
                            (Some(p), Some(f)) => glob(p, f),
                            _ => p == form,
                        })
                    })
            }
    })
}

/// The grants of a role's managed policies that its boundary does not allow: each would be
/// AccessDenied once the pipeline exists.
fn uncovered_grants(t: &Value, role: &str, boundary: &str) -> Vec<String> {
    let doc = &t["Resources"][boundary]["Properties"]["PolicyDocument"];
    let mut findings = Vec::new();
    for p in one_or_many(&t["Resources"][role]["Properties"]["ManagedPolicyArns"]) {
        let name = p["Ref"].as_str().unwrap_or("?");
        let policy = &t["Resources"][name]["Properties"]["PolicyDocument"];
        for s in one_or_many(&policy["Statement"]) {
            if s["Effect"] != "Allow" {
                continue;
            }
            for action in actions(s) {
                for r in one_or_many(&s["Resource"]) {
                    if !covers(doc, &action, r, &s["Condition"]) {
                        findings.push(format!(
                            "{role}: {boundary} does not allow {name}'s {action} on {r}"
                        ));
                    }
                }
            }
        }
    }
    findings
}

/// Every role of the stack (all but the pipeline's own) lives under /<stack>/, where the
/// execution role may manage roles, and carries RuntimeBoundary whenever the pipeline exists;
/// RuntimeBoundary allows every grant of every such role. Policies on the boundary path are
/// never any role's policy.
fn boundary_use_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let bounded = json!({"Fn::If": ["CreateGitHubDeployRole", {"Ref": "RuntimeBoundary"}, {"Ref": "AWS::NoValue"}]});
    let mut stack_roles = 0;
    for (name, r) in of_type(t, "AWS::IAM::Role") {
        for p in one_or_many(&r["Properties"]["ManagedPolicyArns"]) {
            let on_boundary_path =
                |p: &str| t["Resources"][p]["Properties"]["Path"] == BOUNDARY_PATH;
            if p["Ref"].as_str().is_some_and(on_boundary_path) {
                findings.push(format!("{name}: the boundary {p} is attached as a policy"));
            }
        }
        if PIPELINE_ROLES.contains(&name.as_str()) {
            continue;
        }
        stack_roles += 1;
        if r["Properties"]["Path"] != json!({"Fn::Sub": "/${AWS::StackName}/"}) {
            findings.push(format!("{name}: not under the path /<stack>/"));
        }
        if r["Properties"]["PermissionsBoundary"] != bounded {
            findings.push(format!(
                "{name}: not bounded by RuntimeBoundary with the pipeline"
            ));
        }
        findings.extend(uncovered_grants(t, name, "RuntimeBoundary"));
    }
    if stack_roles < 11 {
        findings.push(format!("only {stack_roles} stack roles"));
    }
    findings
}

/// A resource text the execution role may manage IAM on: the stack's roles or policies.
fn stack_iam_resource(r: &Value) -> bool {
    [
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-*",
    ]
    .contains(&resource_text(r).as_str())
}

/// CloudFormation's execution role: trusted by CloudFormation only; bounded by
/// PipelineBoundary, which allows all its grants; IAM (PassRole included) only on the stack's
/// roles and policies; roles only with RuntimeBoundary, passed only to Lambda and Step
/// Functions, never losing their boundary; the approver policy never changed. The deploy
/// role passes this role and no other.
fn pipeline_findings(t: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let role = &t["Resources"]["CloudFormationExecutionRole"]["Properties"];
    let trust = one_or_many(&role["AssumeRolePolicyDocument"]["Statement"]);
    if trust.len() != 1
        || trust[0]["Principal"] != json!({"Service": "cloudformation.amazonaws.com"})
    {
        findings.push("CloudFormationExecutionRole: trusted by more than CloudFormation".into());
    }
    if role["PermissionsBoundary"] != json!({"Ref": "PipelineBoundary"}) {
        findings.push("CloudFormationExecutionRole: not bounded by PipelineBoundary".into());
    }
    findings.extend(uncovered_grants(
        t,
        "CloudFormationExecutionRole",
        "PipelineBoundary",
    ));
    let with_runtime_boundary =
        json!({"StringEquals": {"iam:PermissionsBoundary": {"Ref": "RuntimeBoundary"}}});
    let mut docs: Vec<(String, &Value)> = one_or_many(&role["ManagedPolicyArns"])
        .into_iter()
        .filter_map(|p| p["Ref"].as_str())
        .map(|p| {
            (
                p.to_string(),
                &t["Resources"][p]["Properties"]["PolicyDocument"],
            )
        })
        .collect();
    docs.push((
        "PipelineBoundary".into(),
        &t["Resources"]["PipelineBoundary"]["Properties"]["PolicyDocument"],
    ));
    for (name, doc) in &docs {
        for s in one_or_many(&doc["Statement"]) {
            if s["Effect"] != "Allow" {
                continue;
            }
            let acts = actions(s);
            if !acts.iter().any(|a| a.to_lowercase().starts_with("iam:")) {
                continue;
            }
            for r in one_or_many(&s["Resource"]) {
                if !stack_iam_resource(r) {
                    findings.push(format!(
                        "{name}: IAM on {r}, not the stack's roles or policies"
                    ));
                }
            }
            let creates = acts.iter().any(|a| {
                [
                    "iam:createrole",
                    "iam:putrolepermissionsboundary",
                    "iam:attachrolepolicy",
                ]
                .contains(&a.to_lowercase().as_str())
            });
            if *name != "PipelineBoundary" && creates && s["Condition"] != with_runtime_boundary {
                findings.push(format!(
                    "{name}: creates or changes roles without RuntimeBoundary: {s}"
                ));
            }
        }
    }
    let boundary = &t["Resources"]["PipelineBoundary"]["Properties"]["PolicyDocument"];
    let denies = |action: &str, resource: &str, condition: &Value| {
        one_or_many(&boundary["Statement"]).iter().any(|s| {
            s["Effect"] == "Deny"
                && actions(s).iter().any(|a| a == action)
                && one_or_many(&s["Resource"]).iter().any(|r| {
                    let r = resource_text(r);
                    r == "*" || glob(&r, resource)
                })
                && &s["Condition"] == condition
        })
    };
    let role_arn = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/x";
    let not_runtime =
        json!({"StringNotEquals": {"iam:PermissionsBoundary": {"Ref": "RuntimeBoundary"}}});
    for action in [
        "iam:CreateRole",
        "iam:PutRolePermissionsBoundary",
        "iam:AttachRolePolicy",
        "iam:PutRolePolicy",
    ] {
        if !denies(action, role_arn, &not_runtime) {
            findings.push(format!(
                "PipelineBoundary: {action} is not denied without RuntimeBoundary"
            ));
        }
    }
    let elsewhere = json!({"StringNotEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "states.amazonaws.com"]}});
    if !denies("iam:PassRole", role_arn, &elsewhere) {
        findings.push("PipelineBoundary: roles may be passed to services other than Lambda and Step Functions".into());
    }
    if !denies("iam:DeleteRolePermissionsBoundary", role_arn, &Value::Null) {
        findings.push("PipelineBoundary: a role may lose its boundary".into());
    }
    // The policies attached to people: a change would change what they may do.
    for people in ["approver", "admin"] {
        let arn = format!(
            "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/${{AWS::StackName}}-{people}"
        );
        for action in [
            "iam:CreatePolicyVersion",
            "iam:DeletePolicy",
            "iam:SetDefaultPolicyVersion",
        ] {
            if !denies(action, &arn, &Value::Null) {
                findings.push(format!(
                    "PipelineBoundary: {action} on the {people} policy is not denied"
                ));
            }
        }
    }
    let deploy = &t["Resources"]["GitHubDeployPolicy"]["Properties"]["PolicyDocument"];
    for s in one_or_many(&deploy["Statement"]) {
        if actions(s).iter().any(|a| a == "iam:PassRole")
            && (s["Resource"] != json!({"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]})
                || s["Condition"]
                    != json!({"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}))
        {
            findings.push(format!(
                "GitHubDeployPolicy: passes more than the execution role to CloudFormation: {s}"
            ));
        }
    }
    // The pipeline's own roles and policies on paths no stack name can reach.
    for (name, r) in resources(t) {
        let pipeline = PIPELINE_ROLES.contains(&name.as_str())
            || [
                "GitHubDeployPolicy",
                "PromotionPolicy",
                "PipelineIamPolicy",
                "PipelineResourcesPolicy",
            ]
            .contains(&name.as_str());
        if pipeline && name != "GitHubDeployRole" {
            let path = r["Properties"]["Path"].as_str().unwrap_or("/");
            if !path.starts_with("/bluegreen.") {
                findings.push(format!(
                    "{name}: path {path} is within the execution role's reach"
                ));
            }
        }
    }
    findings
}

#[test]
fn the_pipeline_role_deploys_this_stack_only_and_its_roles_stay_bounded() {
    let t = template();
    assert_eq!(pipeline_findings(&t), Vec::<String>::new());
}

#[test]
fn every_stack_role_is_bounded_and_its_boundary_allows_what_it_needs() {
    let t = template();
    assert_eq!(boundary_use_findings(&t), Vec::<String>::new());
}

#[test]
fn glob_matches_as_iam_does() {
    assert!(glob("lambda:*", "lambda:InvokeFunction"));
    assert!(glob("a*c", "abbbc"));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(!glob("role/s/*", "role/bluegreen.pipeline/x"));
}

#[test]
fn the_github_roles_trust_exactly_one_repository_and_environment() {
    let t = template();
    for role in ["GitHubDeployRole", "PromotionRole"] {
        assert_eq!(
            github_trust_findings(&t, role),
            Vec::<String>::new(),
            "{role}"
        );
    }
}

#[test]
fn the_api_knows_the_github_roles_by_their_fixed_names() {
    assert_eq!(ci_role_findings(&template()), Vec::<String>::new());
}

#[test]
fn the_promotion_role_calls_the_api_and_cannot_change_the_stack() {
    assert_eq!(promotion_role_findings(&template()), Vec::<String>::new());
}

#[test]
fn the_deploy_role_does_not_promote() {
    let t = template();
    let doc = &t["Resources"]["GitHubDeployPolicy"]["Properties"]["PolicyDocument"];
    for s in one_or_many(&doc["Statement"]) {
        for r in one_or_many(&s["Resource"]) {
            let text = resource_text(r);
            for route in decision_routes(&t) {
                assert!(
                    !text.ends_with(&format!("/*/{}", route_arn_tail(&route))),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn the_approver_policy_needs_an_mfa_at_most_an_hour_old() {
    let t = template();
    assert_eq!(
        decision_routes(&t),
        [
            "POST /services/{service}/environments/{environment}/deployments/{id}/approve",
            "POST /services/{service}/environments/{environment}/deployments/{id}/reject",
            "POST /services/{service}/environments/{environment}/promotions"
        ]
    );
    assert_eq!(approver_mfa_findings(&t), Vec::<String>::new());
}

#[test]
fn only_the_admin_policy_governs_and_it_needs_an_mfa_at_most_an_hour_old() {
    let t = template();
    assert_eq!(
        admin_routes(&t),
        [
            "PUT /services/{service}/environments/{environment}/policy",
            "PUT /services/{service}/policy"
        ]
    );
    assert_eq!(admin_mfa_findings(&t), Vec::<String>::new());
}

#[test]
fn the_organization_policy_denies_exactly_the_decision_routes_without_mfa() {
    assert_eq!(scp_findings(&scp(), &template()), Vec::<String>::new());
}

mod security_broken_copies {
    use super::*;

    fn broken(from: &str, to: &str) -> Value {
        let text = read("template.yaml");
        assert!(text.contains(from), "the template no longer has {from:?}");
        parse(&text.replacen(from, to, 1))
    }

    fn broken_scp(from: &str, to: &str) -> Value {
        let text = read("compliance/org/deny-decisions-without-mfa.json");
        assert!(text.contains(from), "the SCP no longer has {from:?}");
        serde_json::from_str(&text.replacen(from, to, 1)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn assert_caught(findings: &[String], reason: &str) {
        assert!(
            findings.iter().any(|f| f.contains(reason)),
            "expected a finding with {reason:?}, got {findings:?}"
        );
    }

    const SUB: &str = "token.actions.githubusercontent.com:sub: !Sub \"repo:${GitHubRepository}:environment:${GitHubEnvironment}\"";

    #[test]
    fn a_trust_of_every_branch_and_environment() {
        let t = broken(
            SUB,
            "token.actions.githubusercontent.com:sub: !Sub \"repo:${GitHubRepository}:*\"",
        );
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "GitHubDeployRole: sub is",
        );
    }

    #[test]
    fn a_trust_by_string_like() {
        let t = broken(
            "            Condition:\n              StringEquals:\n                token.actions.githubusercontent.com:aud: sts.amazonaws.com\n",
            "            Condition:\n              ForAnyValue:StringLike:\n                token.actions.githubusercontent.com:aud: sts.amazonaws.com\n",
        );
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "expected StringEquals and StringLike",
        );
    }

    #[test]
    fn a_trust_with_a_second_wildcard_condition() {
        let t = broken(
            "                sts:RoleSessionName: gh-?*\n      ManagedPolicyArns: [!Ref PromotionPolicy]",
            "                sts:RoleSessionName: gh-?*\n                token.actions.githubusercontent.com:sub: \"repo:*\"\n      ManagedPolicyArns: [!Ref PromotionPolicy]",
        );
        assert_caught(
            &github_trust_findings(&t, "PromotionRole"),
            "PromotionRole: StringLike is",
        );
    }

    /// Finding 5: a CI session must name the person behind the run, or the API could not
    /// keep that person from approving what the run started.
    #[test]
    fn a_trust_that_takes_any_session_name() {
        let t = broken(
            "              StringLike:\n                sts:RoleSessionName: gh-?*\n",
            "",
        );
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "expected exactly sts:RoleSessionName gh-?*",
        );
        let t = broken("sts:RoleSessionName: gh-?*", "sts:RoleSessionName: \"*\"");
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "GitHubDeployRole: StringLike is",
        );
    }

    #[test]
    fn a_github_role_the_api_cannot_name() {
        let t = broken("      RoleName: !Sub \"${AWS::StackName}-promotion\"\n", "");
        assert_caught(&ci_role_findings(&t), "PromotionRole: no fixed RoleName");
        let t = broken(
            ",arn:${AWS::Partition}:iam::${AWS::AccountId}:role/bluegreen.promotion/${AWS::StackName}-promotion\"",
            "\"",
        );
        assert_caught(&ci_role_findings(&t), "ApiFunction: CI_ROLE_ARNS is");
    }

    #[test]
    fn a_trust_without_the_audience() {
        let t = broken(
            "token.actions.githubusercontent.com:aud: sts.amazonaws.com\n",
            "",
        );
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "aud is not sts.amazonaws.com",
        );
    }

    #[test]
    fn an_environment_parameter_that_admits_a_wildcard() {
        let t = broken(
            "AllowedPattern: \"^[A-Za-z0-9_.-]+$\"",
            "AllowedPattern: \"^[A-Za-z0-9_.*-]+$\"",
        );
        assert_caught(
            &github_trust_findings(&t, "GitHubDeployRole"),
            "GitHubEnvironment: AllowedPattern admits a wildcard",
        );
    }

    #[test]
    fn a_promotion_role_that_may_read_the_stack() {
        let t = broken(
            "          - Sid: PromoteAndFollow\n            Effect: Allow\n            Action: execute-api:Invoke\n",
            "          - Sid: PromoteAndFollow\n            Effect: Allow\n            Action: [execute-api:Invoke, cloudformation:DescribeStacks]\n",
        );
        assert_caught(
            &promotion_role_findings(&t),
            "cloudformation:DescribeStacks lets the promotion role change the stack",
        );
    }

    #[test]
    fn a_promotion_role_that_may_approve() {
        let t = broken(
            "${HttpApi}/*/GET/services/*/environments/*/deployments/*\"\n\n  PromotionRole:",
            "${HttpApi}/*/POST/services/*/environments/*/deployments/*/approve\"\n\n  PromotionRole:",
        );
        assert_caught(&promotion_role_findings(&t), "is not a promotion route");
    }

    #[test]
    fn an_approver_grant_without_an_mfa_age() {
        let t = broken(
            "              NumericLessThanEquals: { aws:MultiFactorAuthAge: \"3600\" }\n",
            "",
        );
        assert_caught(
            &approver_mfa_findings(&t),
            "without an MFA age of at most 3600 s",
        );
    }

    #[test]
    fn an_admin_grant_without_mfa() {
        let t = broken(
            "          - Sid: GovernWithMfa\n            Effect: Allow\n            Action: execute-api:Invoke\n            Resource:\n              - !Sub \"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/PUT/services/*/policy\"\n              - !Sub \"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/PUT/services/*/environments/*/policy\"\n            Condition:\n              Bool: { aws:MultiFactorAuthPresent: \"true\" }\n",
            "          - Sid: GovernWithMfa\n            Effect: Allow\n            Action: execute-api:Invoke\n            Resource:\n              - !Sub \"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/PUT/services/*/policy\"\n              - !Sub \"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*/PUT/services/*/environments/*/policy\"\n            Condition:\n",
        );
        assert_caught(&admin_mfa_findings(&t), "AdminPolicy: a grant without MFA");
    }

    #[test]
    fn an_admin_policy_that_grants_more_than_governance() {
        let t = broken(
            "${HttpApi}/*/PUT/services/*/environments/*/policy\"\n            Condition:\n              Bool:",
            "${HttpApi}/*/PUT/services/*\"\n            Condition:\n              Bool:",
        );
        assert_caught(&admin_mfa_findings(&t), "not a governance route");
    }

    #[test]
    fn an_scp_that_forgets_the_policy_routes() {
        let scp = broken_scp(
            "\"arn:aws:execute-api:*:*:*/*/PUT/services/*/environments/*/policy\"",
            "\"arn:aws:execute-api:*:*:*/*/PUT/services/*/policy\"",
        );
        assert_caught(&scp_findings(&scp, &template()), "is not denied");
    }

    #[test]
    fn an_approver_policy_that_accepts_an_old_mfa() {
        let t = broken(
            "NumericGreaterThanIfExists: { aws:MultiFactorAuthAge: \"3600\" }",
            "NumericGreaterThanIfExists: { aws:MultiFactorAuthAge: \"86400\" }",
        );
        assert_caught(
            &approver_mfa_findings(&t),
            "not denied on an MFA older than an hour",
        );
    }

    #[test]
    fn an_scp_that_forgets_reject() {
        let scp = broken_scp(
            ",\n        \"arn:aws:execute-api:*:*:*/*/POST/services/*/environments/*/deployments/*/reject\"\n      ],\n      \"Condition\": {\n        \"BoolIfExists\"",
            "\n      ],\n      \"Condition\": {\n        \"BoolIfExists\"",
        );
        assert_caught(
            &scp_findings(&scp, &template()),
            "SCP: POST/services/*/environments/*/deployments/*/reject is not denied without MFA",
        );
    }

    #[test]
    fn an_scp_that_lets_sessions_without_the_key_through() {
        let scp = broken_scp("\"BoolIfExists\"", "\"Bool\"");
        assert_caught(&scp_findings(&scp, &template()), "neither \"no MFA\"");
    }

    #[test]
    fn an_scp_that_denies_a_route_people_need_without_mfa() {
        let scp = broken_scp(
            "*/*/POST/services/*/environments/*/promotions\"",
            "*/*/GET/services/*/environments/*/deployments\"",
        );
        assert_caught(
            &scp_findings(&scp, &template()),
            "SCP: GET/services/*/environments/*/deployments is not a decision route",
        );
    }

    #[test]
    fn an_scp_that_exempts_every_role_from_approving_with_mfa() {
        let scp = broken_scp(
            "\"aws:MultiFactorAuthPresent\": \"false\"\n        }\n      }",
            "\"aws:MultiFactorAuthPresent\": \"false\"\n        },\n        \"ArnNotLike\": {\"aws:PrincipalArn\": \"arn:aws:iam::*:role/*\"}\n      }",
        );
        assert_caught(
            &scp_findings(&scp, &template()),
            "only POST …/promotions may exempt",
        );
    }
    #[test]
    fn a_stack_role_may_be_created_without_the_runtime_boundary() {
        let t = broken(
            "            Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*\"\n            Condition:\n              StringEquals: { iam:PermissionsBoundary: !Ref RuntimeBoundary }\n",
            "            Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*\"\n",
        );
        assert_caught(
            &pipeline_findings(&t),
            "creates or changes roles without RuntimeBoundary",
        );
    }

    #[test]
    fn a_boundary_that_lets_roles_go_unbounded() {
        let t = broken(
            "          - Sid: RolesOnlyWithTheRuntimeBoundary\n            Effect: Deny\n",
            "          - Sid: RolesOnlyWithTheRuntimeBoundary\n            Effect: Allow\n",
        );
        assert_caught(
            &pipeline_findings(&t),
            "iam:CreateRole is not denied without RuntimeBoundary",
        );
    }

    #[test]
    fn the_execution_role_passing_any_role() {
        let t = broken(
            "            Action: iam:PassRole\n            Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}/*\"",
            "            Action: iam:PassRole\n            Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*\"",
        );
        assert_caught(&pipeline_findings(&t), "IAM on");
    }

    #[test]
    fn the_deploy_role_passing_another_role() {
        let t = broken(
            "            Resource: !GetAtt CloudFormationExecutionRole.Arn",
            "            Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/admin\"",
        );
        assert_caught(
            &pipeline_findings(&t),
            "passes more than the execution role",
        );
    }

    #[test]
    fn an_execution_role_without_its_boundary() {
        let t = broken("      PermissionsBoundary: !Ref PipelineBoundary\n", "");
        assert_caught(&pipeline_findings(&t), "not bounded by PipelineBoundary");
    }

    #[test]
    fn an_execution_grant_its_boundary_does_not_allow() {
        let t = broken(
            "              - lambda:CreateFunction\n",
            "              - lambda:CreateFunction\n              - ec2:RunInstances\n",
        );
        assert_caught(
            &pipeline_findings(&t),
            "PipelineBoundary does not allow PipelineResourcesPolicy's ec2:RunInstances",
        );
    }

    #[test]
    fn the_approver_policy_within_the_pipelines_reach() {
        let t = broken(
            "              - !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-approver\"\n              - !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-admin\"\n          - Sid: StackResources",
            "              - !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-admin\"\n          - Sid: StackResources",
        );
        assert_caught(
            &pipeline_findings(&t),
            "on the approver policy is not denied",
        );
    }

    #[test]
    fn the_admin_policy_within_the_pipelines_reach() {
        let t = broken(
            "              - !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${AWS::StackName}-admin\"\n          - Sid: StackResources",
            "          - Sid: StackResources",
        );
        assert_caught(&pipeline_findings(&t), "on the admin policy is not denied");
    }

    #[test]
    fn a_pipeline_policy_within_the_pipelines_reach() {
        let t = broken(
            "  PromotionPolicy:\n    Type: AWS::IAM::ManagedPolicy\n    Condition: CreateGitHubDeployRole\n    Properties:\n      Path: /bluegreen.pipeline/\n",
            "  PromotionPolicy:\n    Type: AWS::IAM::ManagedPolicy\n    Condition: CreateGitHubDeployRole\n    Properties:\n",
        );
        assert_caught(
            &pipeline_findings(&t),
            "PromotionPolicy: path / is within the execution role's reach",
        );
    }

    #[test]
    fn a_stack_role_without_the_runtime_boundary() {
        let t = broken(
            "  RollbackRole:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: !Sub \"/${AWS::StackName}/\"\n      PermissionsBoundary: !If [CreateGitHubDeployRole, !Ref RuntimeBoundary, !Ref AWS::NoValue]\n",
            "  RollbackRole:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: !Sub \"/${AWS::StackName}/\"\n",
        );
        assert_caught(
            &boundary_use_findings(&t),
            "RollbackRole: not bounded by RuntimeBoundary",
        );
    }

    #[test]
    fn a_runtime_boundary_that_forgets_a_grant() {
        let t = broken(
            "              - dynamodb:ConditionCheckItem\n              - states:StartExecution\n",
            "              - states:StartExecution\n",
        );
        assert_caught(
            &boundary_use_findings(&t),
            "RuntimeBoundary does not allow DeploymentTablePolicy's dynamodb:ConditionCheckItem",
        );
    }

    #[test]
    fn a_boundary_attached_as_a_policy() {
        let t = broken(
            "      ManagedPolicyArns: [!Ref PipelineIamPolicy, !Ref PipelineResourcesPolicy]",
            "      ManagedPolicyArns: [!Ref PipelineIamPolicy, !Ref PipelineResourcesPolicy, !Ref PipelineBoundary]",
        );
        assert_caught(&boundary_use_findings(&t), "the boundary");
        assert_caught(
            &iam_findings(&t, &allowlist()),
            "PipelineBoundary: wildcard action iam:*",
        );
    }
}
