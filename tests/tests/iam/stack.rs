//! The SAM-transformed template as one deployed stack: parameters given, intrinsic functions
//! resolved, and for each function the role it runs with and that role's policies.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// The local stack names its resources as template.yaml does in a stack of this name.
pub const STACK_NAME: &str = "bluegreen";
/// The table's physical name there (CloudFormation would generate one; the local stack's is this).
pub const LOCAL_TABLE: &str = "bluegreen";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// What the SAM transform (compliance/sam_transform.py, the library CloudFormation's
/// AWS::Serverless transform uses) makes of a SAM template's text.
pub fn transformed(template: &str) -> Result<Value, String> {
    let root = root();
    let python = root.join(".venv/bin/python");
    if !python.is_file() {
        return Err(format!(
            "{} is missing: run `make setup` first",
            python.display()
        ));
    }
    let mut child = Command::new(&python)
        .arg(root.join("compliance/sam_transform.py"))
        .args(["-", "--base"])
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running sam_transform.py: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("sam_transform.py has no stdin")?
        .write_all(template.as_bytes())
        .map_err(|e| format!("writing the template to sam_transform.py: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("sam_transform.py: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sam_transform.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("sam_transform.py printed no JSON: {e}"))
}

pub struct Stack {
    template: Value,
    parameters: BTreeMap<String, Value>,
}

impl Stack {
    /// The stack deployed from `template` (transformed) with these parameter values; the
    /// others take their defaults.
    pub fn new(template: Value, given: &BTreeMap<String, Value>) -> Result<Self, String> {
        let mut parameters = BTreeMap::new();
        if let Some(declared) = template["Parameters"].as_object() {
            for (name, p) in declared {
                let value = match given.get(name) {
                    Some(v) => v.clone(),
                    None => p
                        .get("Default")
                        .cloned()
                        .ok_or_else(|| format!("parameter {name} has no default and no value"))?,
                };
                let value = if p["Type"] == "CommaDelimitedList" {
                    match value {
                        Value::String(s) if s.is_empty() => json!([]),
                        Value::String(s) => json!(s.split(',').map(str::trim).collect::<Vec<_>>()),
                        other => other,
                    }
                } else {
                    value
                };
                parameters.insert(name.clone(), value);
            }
        }
        for name in given.keys() {
            if !parameters.contains_key(name) {
                return Err(format!("{name} is not a parameter of the template"));
            }
        }
        Ok(Self {
            template,
            parameters,
        })
    }

    fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.template["Resources"].as_object().into_iter().flatten()
    }

    /// The resources this stack creates (a resource whose Condition is false is not created).
    fn created(&self) -> Result<Vec<(&String, &Value)>, String> {
        let mut out = Vec::new();
        for (name, r) in self.resources() {
            let exists = match r["Condition"].as_str() {
                Some(c) => self.condition(c)?,
                None => true,
            };
            if exists {
                out.push((name, r));
            }
        }
        Ok(out)
    }

    pub fn condition(&self, name: &str) -> Result<bool, String> {
        let c = self.template["Conditions"]
            .get(name)
            .ok_or_else(|| format!("no condition {name}"))?;
        self.holds(c)
    }

    fn holds(&self, c: &Value) -> Result<bool, String> {
        let Some((f, args)) = c.as_object().and_then(|o| o.iter().next()) else {
            return Err(format!("not a condition: {c}"));
        };
        let list = args.as_array().cloned().unwrap_or_default();
        match f.as_str() {
            "Fn::Equals" if list.len() == 2 => {
                Ok(self.resolve(&list[0])? == self.resolve(&list[1])?)
            }
            "Fn::Not" if list.len() == 1 => Ok(!self.holds(&list[0])?),
            "Fn::And" => list
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.holds(c)?)),
            "Fn::Or" => list
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.holds(c)?)),
            "Condition" => self.condition(args.as_str().unwrap_or_default()),
            other => Err(format!("condition function {other} is not resolved here")),
        }
    }

    fn property(&self, logical: &str, name: &str) -> Result<Option<String>, String> {
        let v = &self.template["Resources"][logical]["Properties"][name];
        if v.is_null() {
            return Ok(None);
        }
        match self.resolve(v)? {
            Value::String(s) => Ok(Some(s)),
            other => Err(format!("{logical}.{name} resolves to {other}")),
        }
    }

    /// `Ref` of a resource: its physical id, as CloudFormation documents it per type.
    fn reference(&self, logical: &str) -> Result<String, String> {
        let r = self.template["Resources"]
            .get(logical)
            .ok_or_else(|| format!("Ref to unknown resource {logical}"))?;
        let named = |prop: &str| -> Result<String, String> {
            Ok(self
                .property(logical, prop)?
                .unwrap_or_else(|| format!("{STACK_NAME}-{logical}")))
        };
        Ok(match r["Type"].as_str().unwrap_or_default() {
            "AWS::DynamoDB::Table" => self
                .property(logical, "TableName")?
                .unwrap_or_else(|| LOCAL_TABLE.to_string()),
            "AWS::IAM::ManagedPolicy" => {
                format!(
                    "arn:aws:iam::{ACCOUNT}:policy/{}",
                    named("ManagedPolicyName")?
                )
            }
            "AWS::IAM::Role" => named("RoleName")?,
            "AWS::Lambda::Function" => named("FunctionName")?,
            "AWS::StepFunctions::StateMachine" => format!(
                "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{}",
                named("StateMachineName")?
            ),
            "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", named("TopicName")?),
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                named("QueueName")?
            ),
            "AWS::KMS::Key" => format!("{logical}-key-id"),
            _ => logical.to_string(),
        })
    }

    /// `Fn::GetAtt`: the attributes the template reads (Arn, Name).
    fn attribute(&self, logical: &str, attribute: &str) -> Result<String, String> {
        let ty = self.template["Resources"][logical]["Type"]
            .as_str()
            .ok_or_else(|| format!("GetAtt of unknown resource {logical}"))?
            .to_string();
        let id = self.reference(logical)?;
        Ok(match (ty.as_str(), attribute) {
            ("AWS::DynamoDB::Table", "Arn") => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}")
            }
            ("AWS::IAM::Role", "Arn") => format!("arn:aws:iam::{ACCOUNT}:role/{id}"),
            ("AWS::Lambda::Function", "Arn") => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{id}")
            }
            ("AWS::SQS::Queue", "Arn") => format!(
                "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
                id.rsplit('/').next().unwrap_or_default()
            ),
            ("AWS::SQS::Queue", "QueueName") => {
                id.rsplit('/').next().unwrap_or_default().to_string()
            }
            ("AWS::KMS::Key", "Arn") => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}"),
            ("AWS::StepFunctions::StateMachine", "Arn") | ("AWS::SNS::Topic", "TopicArn") => id,
            ("AWS::StepFunctions::StateMachine", "Name") => {
                id.rsplit(':').next().unwrap_or_default().to_string()
            }
            (_, "Arn") => format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:{logical}"),
            _ => format!("{logical}.{attribute}"),
        })
    }

    fn pseudo(&self, name: &str) -> Option<&'static str> {
        match name {
            "AWS::Partition" => Some("aws"),
            "AWS::Region" => Some(REGION),
            "AWS::AccountId" => Some(ACCOUNT),
            "AWS::StackName" => Some(STACK_NAME),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            _ => None,
        }
    }

    fn reference_value(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.pseudo(name) {
            return Ok(Value::String(v.into()));
        }
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        Ok(Value::String(self.reference(name)?))
    }

    fn substitute(&self, text: &str, vars: &Map<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in Fn::Sub {text}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = match vars.get(name) {
                    Some(v) => self.resolve(v)?,
                    None => match name.split_once('.') {
                        Some((logical, attr))
                            if self.template["Resources"].get(logical).is_some() =>
                        {
                            Value::String(self.attribute(logical, attr)?)
                        }
                        _ => self.reference_value(name)?,
                    },
                };
                match value {
                    Value::String(s) => out.push_str(&s),
                    other => return Err(format!("Fn::Sub ${{{name}}} is not a string: {other}")),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value with every intrinsic function resolved (`AWS::NoValue` drops the entry).
    pub fn resolve(&self, v: &Value) -> Result<Value, String> {
        match v {
            Value::Object(o) if o.len() == 1 => {
                let (f, args) = o.iter().next().ok_or("empty object")?;
                match f.as_str() {
                    "Ref" => {
                        let name = args.as_str().ok_or("Ref of a non-string")?;
                        if name == "AWS::NoValue" {
                            return Ok(Value::Null);
                        }
                        self.reference_value(name)
                    }
                    "Fn::GetAtt" => {
                        let (logical, attr) = match args {
                            Value::Array(a) if a.len() == 2 => (
                                a[0].as_str().unwrap_or_default().to_string(),
                                a[1].as_str().unwrap_or_default().to_string(),
                            ),
                            Value::String(s) => {
                                let (l, a) = s.split_once('.').ok_or("GetAtt without attribute")?;
                                (l.to_string(), a.to_string())
                            }
                            _ => return Err(format!("bad Fn::GetAtt {args}")),
                        };
                        Ok(Value::String(self.attribute(&logical, &attr)?))
                    }
                    "Fn::Sub" => match args {
                        Value::String(s) => Ok(Value::String(self.substitute(s, &Map::new())?)),
                        Value::Array(a) if a.len() == 2 => {
                            let text = a[0].as_str().ok_or("Fn::Sub text is not a string")?;
                            let vars = a[1].as_object().cloned().unwrap_or_default();
                            Ok(Value::String(self.substitute(text, &vars)?))
                        }
                        _ => Err(format!("bad Fn::Sub {args}")),
                    },
                    "Fn::If" => {
                        let a = args
                            .as_array()
                            .filter(|a| a.len() == 3)
                            .ok_or("bad Fn::If")?;
                        let c = self.condition(a[0].as_str().unwrap_or_default())?;
                        self.resolve(&a[if c { 1 } else { 2 }])
                    }
                    "Fn::Join" => {
                        let a = args
                            .as_array()
                            .filter(|a| a.len() == 2)
                            .ok_or("bad Fn::Join")?;
                        let sep = a[0].as_str().unwrap_or_default();
                        let items = match self.resolve(&a[1])? {
                            Value::Array(items) => items,
                            other => return Err(format!("Fn::Join of {other}")),
                        };
                        let parts: Vec<String> = items
                            .iter()
                            .map(|i| {
                                i.as_str()
                                    .map(str::to_string)
                                    .ok_or(format!("Fn::Join item {i}"))
                            })
                            .collect::<Result<_, _>>()?;
                        Ok(Value::String(parts.join(sep)))
                    }
                    "Fn::Select" => {
                        let a = args
                            .as_array()
                            .filter(|a| a.len() == 2)
                            .ok_or("bad Fn::Select")?;
                        let i = self.resolve(&a[0])?;
                        let i = i
                            .as_u64()
                            .or_else(|| i.as_str().and_then(|s| s.parse().ok()))
                            .ok_or("Fn::Select index")?;
                        let items = self.resolve(&a[1])?;
                        items
                            .get(usize::try_from(i).map_err(|e| e.to_string())?)
                            .cloned()
                            .ok_or_else(|| format!("Fn::Select {i} out of range"))
                    }
                    "Fn::Split" => {
                        let a = args
                            .as_array()
                            .filter(|a| a.len() == 2)
                            .ok_or("bad Fn::Split")?;
                        let sep = a[0].as_str().unwrap_or_default();
                        let s = self.resolve(&a[1])?;
                        let s = s.as_str().ok_or("Fn::Split of a non-string")?;
                        Ok(json!(s.split(sep).collect::<Vec<_>>()))
                    }
                    _ if f.starts_with("Fn::") => Err(format!("{f} is not resolved here")),
                    _ => Ok(Value::Object(
                        [(f.clone(), self.resolve(args)?)].into_iter().collect(),
                    )),
                }
            }
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, v) in o {
                    let r = self.resolve(v)?;
                    if !r.is_null() || v.is_null() {
                        out.insert(k.clone(), r);
                    }
                }
                Ok(Value::Object(out))
            }
            Value::Array(a) => {
                let mut out = Vec::new();
                for v in a {
                    match self.resolve(v)? {
                        Value::Null => {}
                        // a list parameter referenced inside a list: its items
                        Value::Array(items) if v.get("Ref").is_some() => out.extend(items),
                        r => out.push(r),
                    }
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Function binary (the `BuildProperties.Binary` SAM builds) → the logical id of its role.
    pub fn function_roles(&self) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (name, r) in self.created()? {
            if r["Type"] != "AWS::Lambda::Function" {
                continue;
            }
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .ok_or_else(|| format!("{name} names no binary"))?;
            let role = match &r["Properties"]["Role"] {
                Value::Object(o) => match o.get("Fn::GetAtt") {
                    Some(Value::Array(a)) => a[0].as_str().map(str::to_string),
                    Some(Value::String(s)) => s.split('.').next().map(str::to_string),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| format!("{name}'s role is not a role of this stack"))?;
            out.insert(binary.to_string(), role);
        }
        Ok(out)
    }

    pub fn role_arn(&self, role: &str) -> Result<String, String> {
        self.attribute(role, "Arn")
    }

    /// The identity policies a role of this stack has, resolved: its inline policies, the
    /// stack's managed policies it names, and the stack's policies that name it.
    pub fn role_policies(&self, role: &str) -> Result<Vec<Value>, String> {
        let r = &self.template["Resources"][role];
        if r["Type"] != "AWS::IAM::Role" {
            return Err(format!("{role} is not an AWS::IAM::Role"));
        }
        // The stack's roles carry RuntimeBoundary only with the GitHub pipeline
        // (tests/tests/template.rs checks it allows every grant); under these parameters a
        // boundary that resolves to something is refused rather than left unevaluated.
        if !self
            .resolve(&r["Properties"]["PermissionsBoundary"])?
            .is_null()
        {
            return Err(format!(
                "{role} has a permissions boundary, which is not evaluated here"
            ));
        }
        let mut docs = Vec::new();
        for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
            docs.push(self.resolve(&p["PolicyDocument"])?);
        }
        let managed = self.resolve(&r["Properties"]["ManagedPolicyArns"])?;
        let managed: Vec<String> = managed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let role_name = self.reference(role)?;
        let created = self.created()?;
        for &(name, p) in &created {
            let ty = p["Type"].as_str().unwrap_or_default();
            if ty != "AWS::IAM::ManagedPolicy" && ty != "AWS::IAM::Policy" {
                continue;
            }
            let attached_by_role =
                ty == "AWS::IAM::ManagedPolicy" && managed.contains(&self.reference(name)?);
            let names_role = self
                .resolve(&p["Properties"]["Roles"])?
                .as_array()
                .is_some_and(|roles| roles.iter().any(|r| r == &Value::String(role_name.clone())));
            if attached_by_role || names_role {
                docs.push(self.resolve(&p["Properties"]["PolicyDocument"])?);
            }
        }
        for arn in &managed {
            let ours = created.iter().any(|(name, p)| {
                p["Type"] == "AWS::IAM::ManagedPolicy" && self.reference(name).as_deref() == Ok(arn)
            });
            if !ours {
                return Err(format!(
                    "{role} attaches {arn}, a policy outside the stack whose content is not known here"
                ));
            }
        }
        Ok(docs)
    }
}
