//! One first-deployment path: the README's deploy steps ("Deploying to AWS") and the workflows
//! run the same build command and the same deploy, so what a new user types is what CI runs.
//!
//! "The same" means, for the controller's `sam deploy` in the README and in every workflow job
//! that deploys the same template: the same program and tool, the same set of flags except the
//! few that say where packages go and who acts (`WHO_AND_WHERE`), the same `--capabilities`,
//! the same `--template-file`, and the same parameter NAMES in `--parameter-overrides` (the
//! values differ: placeholders in the README, the environment's variables in CI). Every build
//! command (`make package`, resolved through the Makefile to `sam build`) is the README's.
//! Against the template itself, every deploy (the README's environment-account one too) gives
//! only declared parameters, every parameter without a Default, and the capabilities the
//! template needs; each `sam build` has `--beta-features` when a function builds with
//! `rust-cargolambda`; the README's parameter table after each deploy lists the template's
//! parameters and marks exactly the ones without a Default required.
//!
//! Each check returns findings; the tests at the bottom break copies of the README and the
//! workflow and show each break is reported, naming what differs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Flags allowed on one side only, each with the reason. A person deploys with their own
/// credentials and SAM's managed bucket; the deploy role may only upload under
/// `<ArtifactBucketName>/<stack>/` and only act through the CloudFormation execution role.
const WHO_AND_WHERE: &[(&str, Side, &str)] = &[
    ("--resolve-s3", Side::Readme, "SAM's managed package bucket"),
    (
        "--s3-bucket",
        Side::Workflow,
        "the artifact bucket the deploy role may write",
    ),
    (
        "--s3-prefix",
        Side::Workflow,
        "the deploy role writes only under <stack>/",
    ),
    (
        "--role-arn",
        Side::Workflow,
        "the deploy role acts through CloudFormation's role",
    ),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Readme,
    Workflow,
}

// ---------------------------------------------------------------- shell words

/// Shell words of a script, commands separated by `None` (newline, `;`, `|`, `&&`, ...).
/// Handles `\` line continuations, quotes, comments, `$(...)` and `${{ ... }}` as one word, and
/// the README's placeholders (`<listener ARNs>`) as part of a word.
fn tokens(script: &str) -> Vec<Option<String>> {
    let chars: Vec<char> = script.chars().collect();
    let mut out: Vec<Option<String>> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let finish = |word: &mut String, in_word: &mut bool, out: &mut Vec<Option<String>>| {
        if *in_word {
            out.push(Some(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&next) => {
                        word.push(next);
                        in_word = true;
                    }
                    None => {}
                }
                i += 2;
            }
            ' ' | '\t' | '\r' => {
                finish(&mut word, &mut in_word, &mut out);
                i += 1;
            }
            '\n' | ';' | '|' | '&' => {
                finish(&mut word, &mut in_word, &mut out);
                out.push(None);
                i += if matches!(c, '|' | '&') && chars.get(i + 1) == Some(&c) {
                    2
                } else {
                    1
                };
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\'
                        && let Some(&next) = chars.get(i + 1)
                        && matches!(next, '"' | '\\' | '$' | '`' | '\n')
                    {
                        if next != '\n' {
                            word.push(next);
                        }
                        i += 2;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '$' if matches!(chars.get(i + 1), Some('(' | '{')) => {
                let (open, close) = if chars[i + 1] == '(' {
                    ('(', ')')
                } else {
                    ('{', '}')
                };
                in_word = true;
                word.push('$');
                i += 1;
                let mut depth = 0usize;
                while i < chars.len() {
                    let d = chars[i];
                    word.push(d);
                    i += 1;
                    if d == open {
                        depth += 1;
                    } else if d == close {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                }
            }
            '<' if placeholder_end(&chars, i).is_some() => {
                let end = placeholder_end(&chars, i).unwrap_or(i);
                word.extend(&chars[i..=end]);
                in_word = true;
                i = end + 1;
            }
            _ => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    finish(&mut word, &mut in_word, &mut out);
    out
}

/// `<words like this>` on one line: the README's placeholder for a value.
fn placeholder_end(chars: &[char], at: usize) -> Option<usize> {
    if !chars.get(at + 1).is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    (at + 1..chars.len())
        .take_while(|&j| chars[j] != '\n' && chars[j] != '<')
        .find(|&j| chars[j] == '>')
}

/// The commands of a script, each its words, leading `NAME=value` assignments dropped.
fn commands(script: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for token in tokens(script).into_iter().chain([None]) {
        match token {
            Some(w) => {
                let assignment = current.is_empty()
                    && w.split_once('=').is_some_and(|(name, _)| {
                        !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            && !name.starts_with(|c: char| c.is_ascii_digit())
                    });
                if !assignment {
                    current.push(w);
                }
            }
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------- invocations

/// A `sam build`, `sam deploy` or `aws cloudformation deploy` as written.
#[derive(Debug, Clone)]
struct Invocation {
    typed: String,
    program: String,
    tool: String,
    flags: BTreeMap<String, Vec<String>>,
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn invocation(words: &[String]) -> Option<Invocation> {
    let program = words.first()?;
    let (tool, args) = match (basename(program), words.get(1).map(String::as_str)) {
        ("sam", Some(sub @ ("build" | "deploy"))) => (format!("sam {sub}"), &words[2..]),
        ("aws", Some("cloudformation")) if words.get(2).is_some_and(|w| w == "deploy") => {
            ("aws cloudformation deploy".to_string(), &words[3..])
        }
        _ => return None,
    };
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = "(argument)".to_string();
    for arg in args {
        if arg.starts_with('-') && arg.len() > 1 {
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value)),
                _ => (arg.as_str(), None),
            };
            let name = match name {
                "-t" | "--template" => "--template-file",
                other => other,
            };
            current = name.to_string();
            let values = flags.entry(current.clone()).or_default();
            values.extend(value.map(str::to_string));
        } else {
            flags.entry(current.clone()).or_default().push(arg.clone());
        }
    }
    Some(Invocation {
        typed: words.join(" "),
        program: program.clone(),
        tool,
        flags,
    })
}

impl Invocation {
    fn values(&self, flag: &str) -> Option<&Vec<String>> {
        self.flags.get(flag)
    }

    /// The template a deploy deploys: `--template-file`, or for `sam deploy` without one the
    /// template `sam build` built (`.aws-sam/build/template.yaml`, from `template.yaml`).
    fn template(&self) -> String {
        match self.values("--template-file").and_then(|v| v.first()) {
            Some(file) => basename(file).to_string(),
            None => "template.yaml".to_string(),
        }
    }

    fn template_flag(&self) -> String {
        match self.values("--template-file") {
            Some(v) => v.join(" "),
            None => "(none: the built template)".to_string(),
        }
    }

    fn capabilities(&self) -> Vec<String> {
        self.values("--capabilities").cloned().unwrap_or_default()
    }

    /// Parameter names in `--parameter-overrides` (`Name=value` or
    /// `ParameterKey=Name,ParameterValue=value`), and what is neither.
    fn parameters(&self) -> (BTreeSet<String>, Vec<String>) {
        let mut names = BTreeSet::new();
        let mut malformed = Vec::new();
        for v in self.values("--parameter-overrides").into_iter().flatten() {
            let name = match v.strip_prefix("ParameterKey=") {
                Some(rest) => rest.split(',').next(),
                None => v.split_once('=').map(|(name, _)| name),
            };
            match name {
                Some(name) if !name.is_empty() => {
                    names.insert(name.to_string());
                }
                _ => malformed.push(v.clone()),
            }
        }
        (names, malformed)
    }
}

// ---------------------------------------------------------------- the Makefile

/// The commands of a Makefile target's recipe (`$$` is `$`).
fn recipe(makefile: &str, target: &str) -> Option<Vec<Vec<String>>> {
    let lines: Vec<&str> = makefile.lines().collect();
    let start = lines.iter().enumerate().position(|(n, line)| {
        !line.starts_with('\t')
            && line.split_once(':').is_some_and(|(targets, rest)| {
                !rest.starts_with('=')
                    && targets.split_whitespace().any(|t| t == target)
                    && lines.get(n + 1).is_some_and(|next| next.starts_with('\t'))
            })
    })?;
    let body: Vec<String> = lines[start + 1..]
        .iter()
        .take_while(|line| line.starts_with('\t'))
        .map(|line| {
            line.trim_start_matches('\t')
                .trim_start_matches(['@', '-', '+'])
                .replace("$$", "$")
        })
        .collect();
    Some(commands(&body.join("\n")))
}

/// The `sam build`s a command runs: itself, or a `make` target's recipe.
fn sam_builds(words: &[String], makefile: &str) -> Vec<Invocation> {
    if let Some(inv) = invocation(words).filter(|i| i.tool == "sam build") {
        return vec![inv];
    }
    if words.first().is_some_and(|w| basename(w) == "make") {
        return words[1..]
            .iter()
            .filter(|w| !w.starts_with('-') && !w.contains('='))
            .filter_map(|target| recipe(makefile, target))
            .flatten()
            .filter_map(|c| invocation(&c))
            .filter(|i| i.tool == "sam build")
            .collect();
    }
    Vec::new()
}

// ---------------------------------------------------------------- templates

struct Template {
    /// parameter -> required (no Default)
    parameters: BTreeMap<String, bool>,
    /// (any of these capabilities, why)
    needs: Vec<(Vec<&'static str>, String)>,
    rust_cargolambda: bool,
}

fn template(file: &str, text: &str) -> Result<Template, String> {
    let t: Value = serde_yaml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let parameters = t
        .get("Parameters")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.get("Default").is_none())))
        .collect();
    let mut iam = None;
    let mut named = None;
    let mut nested = None;
    let mut rust_cargolambda = false;
    for (name, r) in t
        .get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or("?");
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = r.get("Properties");
        let has = |p: &str| props.and_then(|ps| ps.get(p)).is_some();
        if ty.starts_with("AWS::IAM::")
            || (matches!(
                ty,
                "AWS::Serverless::Function" | "AWS::Serverless::StateMachine"
            ) && !has("Role"))
        {
            iam.get_or_insert_with(|| format!("{name} ({ty})"));
        }
        if ty.starts_with("AWS::IAM::") {
            for p in [
                "RoleName",
                "ManagedPolicyName",
                "GroupName",
                "UserName",
                "InstanceProfileName",
            ] {
                if has(p) {
                    named.get_or_insert_with(|| format!("{name}.{p}"));
                }
            }
        }
        if ty == "AWS::Serverless::Application" {
            nested.get_or_insert_with(|| name.to_string());
        }
        rust_cargolambda |= r
            .get("Metadata")
            .and_then(|m| m.get("BuildMethod"))
            .and_then(Value::as_str)
            == Some("rust-cargolambda");
    }
    let mut needs = Vec::new();
    if let Some(r) = iam {
        needs.push((
            vec!["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            format!("{file} creates IAM resources ({r})"),
        ));
    }
    if let Some(r) = named {
        needs.push((
            vec!["CAPABILITY_NAMED_IAM"],
            format!("{file} names IAM resources ({r})"),
        ));
    }
    if let Some(r) = nested {
        needs.push((
            vec!["CAPABILITY_AUTO_EXPAND"],
            format!("{file} nests an application ({r})"),
        ));
    }
    Ok(Template {
        parameters,
        needs,
        rust_cargolambda,
    })
}

// ---------------------------------------------------------------- the README

struct Table {
    names: Vec<String>,
    /// the names marked `yes` in a `required` column, if the table has one
    required: Option<BTreeSet<String>>,
}

enum Item {
    Command(Vec<String>),
    Table(Table),
}

/// The commands of the fenced code blocks and the parameter tables of the README's deploy
/// section ("## Deploying to AWS" up to the next "## "), in order.
fn readme_items(readme: &str) -> Result<Vec<Item>, String> {
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim_end() != "## Deploying to AWS");
    if lines.next().is_none() {
        return Err("README has no \"## Deploying to AWS\" section".into());
    }
    let section: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let mut items = Vec::new();
    let mut n = 0;
    while n < section.len() {
        let line = section[n];
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            let indent = line.len() - trimmed.len();
            let mut block = Vec::new();
            n += 1;
            while n < section.len() && !section[n].trim_start().starts_with("```") {
                let l = section[n];
                let strip = l.len() - l.trim_start().len();
                block.push(&l[strip.min(indent)..]);
                n += 1;
            }
            items.extend(commands(&block.join("\n")).into_iter().map(Item::Command));
        } else if trimmed.starts_with('|') {
            let mut rows = Vec::new();
            while n < section.len() && section[n].trim_start().starts_with('|') {
                let cells: Vec<String> = section[n]
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect();
                rows.push(cells);
                n += 1;
            }
            if rows.first().and_then(|h| h.first()).map(String::as_str) == Some("parameter") {
                items.push(Item::Table(table(&rows)));
            }
            continue;
        }
        n += 1;
    }
    Ok(items)
}

fn table(rows: &[Vec<String>]) -> Table {
    let required_column = rows
        .first()
        .and_then(|h| h.iter().position(|c| c == "required"));
    let mut names = Vec::new();
    let mut required = BTreeSet::new();
    for row in rows.iter().skip(1) {
        if row
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let cell = row.first().map(String::as_str).unwrap_or("");
        let row_names: Vec<String> = cell
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        if required_column.and_then(|c| row.get(c)).map(String::as_str) == Some("yes") {
            required.extend(row_names.iter().cloned());
        }
        names.extend(row_names);
    }
    Table {
        names,
        required: required_column.map(|_| required),
    }
}

// ---------------------------------------------------------------- the comparison

/// The build and deploy commands of the README, or of one workflow job, in order.
struct Steps {
    label: String,
    /// (position, the build command as typed, the `sam build`s it runs)
    builds: Vec<(usize, String, Vec<Invocation>)>,
    /// (position, the deploy)
    deploys: Vec<(usize, Invocation)>,
}

fn steps(label: &str, commands: &[(usize, Vec<String>)], makefile: &str) -> Steps {
    let mut s = Steps {
        label: label.to_string(),
        builds: Vec::new(),
        deploys: Vec::new(),
    };
    for (at, words) in commands {
        let builds = sam_builds(words, makefile);
        if !builds.is_empty() {
            s.builds.push((*at, words.join(" "), builds));
        } else if let Some(inv) = invocation(words).filter(|i| i.tool != "sam build") {
            s.deploys.push((*at, inv));
        }
    }
    s
}

/// A workflow job's name and the commands of its `run:` steps, in order.
type Job = (String, Vec<Vec<String>>);

/// Every job of a workflow.
fn workflow_jobs(file: &str, text: &str) -> Result<Vec<Job>, String> {
    let w: Value = serde_yaml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let jobs = w
        .get("jobs")
        .and_then(Value::as_mapping)
        .ok_or_else(|| format!("{file}: no jobs"))?;
    Ok(jobs
        .iter()
        .map(|(name, job)| {
            let runs = job
                .get("steps")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|step| step.get("run").and_then(Value::as_str))
                .flat_map(commands)
                .collect();
            (name.as_str().unwrap_or("?").to_string(), runs)
        })
        .collect())
}

struct Inputs {
    readme: String,
    /// (file name, text)
    workflows: Vec<(String, String)>,
    makefile: String,
    /// file name -> text
    templates: BTreeMap<String, String>,
}

fn real_inputs() -> Inputs {
    let dir = root().join(".github/workflows");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    Inputs {
        readme: read("README.md"),
        workflows: names
            .into_iter()
            .map(|n| {
                let text = read(&format!(".github/workflows/{n}"));
                (n, text)
            })
            .collect(),
        makefile: read("Makefile"),
        templates: ["template.yaml", "environment-account.yaml"]
            .into_iter()
            .map(|f| (f.to_string(), read(f)))
            .collect(),
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(" ")
    }
}

fn findings(inputs: &Inputs) -> Vec<String> {
    let mut out = Vec::new();
    let mut templates = BTreeMap::new();
    for (file, text) in &inputs.templates {
        match template(file, text) {
            Ok(t) => {
                templates.insert(file.clone(), t);
            }
            Err(e) => out.push(e),
        }
    }
    let items = match readme_items(&inputs.readme) {
        Ok(items) => items,
        Err(e) => return vec![e],
    };
    let readme_commands: Vec<(usize, Vec<String>)> = items
        .iter()
        .enumerate()
        .filter_map(|(at, item)| match item {
            Item::Command(words) => Some((at, words.clone())),
            Item::Table(_) => None,
        })
        .collect();
    let readme = steps("README", &readme_commands, &inputs.makefile);
    let mut jobs = Vec::new();
    for (file, text) in &inputs.workflows {
        match workflow_jobs(file, text) {
            Ok(js) => jobs.extend(js.into_iter().map(|(_, cmds)| {
                let numbered: Vec<_> = cmds.into_iter().enumerate().collect();
                steps(file, &numbered, &inputs.makefile)
            })),
            Err(e) => out.push(e),
        }
    }

    // Against the templates: builds, deploys, and the README's parameter tables.
    for s in std::iter::once(&readme).chain(&jobs) {
        for (_, typed, builds) in &s.builds {
            for b in builds {
                let file = b.template();
                if templates.get(&file).is_some_and(|t| t.rust_cargolambda)
                    && b.values("--beta-features").is_none()
                {
                    out.push(format!(
                        "{}'s build `{typed}` runs `{}` without --beta-features, which \
                         BuildMethod rust-cargolambda ({file}) requires",
                        s.label, b.typed
                    ));
                }
            }
        }
        for (at, d) in &s.deploys {
            template_findings(&s.label, d, &templates, &mut out);
            if d.tool == "sam deploy" && !s.builds.iter().any(|(b, _, _)| b < at) {
                out.push(format!(
                    "{} runs `sam deploy` of {} with no build before it",
                    s.label,
                    d.template()
                ));
            }
        }
    }
    for (at, d) in &readme.deploys {
        let file = d.template();
        let table = items[at + 1..].iter().find_map(|i| match i {
            Item::Table(t) => Some(t),
            Item::Command(_) => None,
        });
        match (table, templates.get(&file)) {
            (Some(table), Some(t)) => table_findings(&file, table, t, &mut out),
            (None, _) => out.push(format!(
                "README's deploy of {file} is followed by no parameter table"
            )),
            (_, None) => {}
        }
    }

    // The README against the workflows: the build command, then each deploy.
    let readme_build = readme.builds.first().map(|(_, typed, _)| typed.clone());
    for s in &jobs {
        for (_, typed, _) in &s.builds {
            match &readme_build {
                Some(r) if r == typed => {}
                Some(r) => out.push(format!(
                    "README builds with `{r}`, {} with `{typed}`",
                    s.label
                )),
                None => out.push(format!(
                    "README's deploy steps build nothing, {} builds with `{typed}`",
                    s.label
                )),
            }
        }
    }
    let mut by_template: BTreeMap<String, Vec<&Invocation>> = BTreeMap::new();
    for (_, d) in &readme.deploys {
        by_template.entry(d.template()).or_default().push(d);
    }
    for (file, ds) in &by_template {
        if ds.len() > 1 {
            out.push(format!(
                "README deploys {file} {} times; its deploy steps show one command per template",
                ds.len()
            ));
        }
    }
    for s in &jobs {
        for (_, d) in &s.deploys {
            match by_template.get(&d.template()).and_then(|ds| ds.first()) {
                Some(r) => compare(r, &s.label, d, &mut out),
                None => out.push(format!(
                    "{} deploys {}, which the README's deploy steps never deploy",
                    s.label,
                    d.template()
                )),
            }
        }
    }
    for (_, d) in readme
        .deploys
        .iter()
        .filter(|(_, d)| d.tool == "sam deploy")
    {
        let file = d.template();
        if !jobs
            .iter()
            .flat_map(|s| &s.deploys)
            .any(|(_, w)| w.template() == file)
        {
            out.push(format!(
                "no workflow runs the README's `{}` of {file}",
                d.tool
            ));
        }
    }
    out
}

fn template_findings(
    label: &str,
    d: &Invocation,
    templates: &BTreeMap<String, Template>,
    out: &mut Vec<String>,
) {
    let file = d.template();
    let Some(t) = templates.get(&file) else {
        out.push(format!(
            "{label} deploys {file}, which is not a template of this repository"
        ));
        return;
    };
    let (names, malformed) = d.parameters();
    for m in malformed {
        out.push(format!(
            "{label} passes `{m}` in --parameter-overrides, which is not Name=Value"
        ));
    }
    for n in &names {
        if !t.parameters.contains_key(n) {
            out.push(format!(
                "{label} passes parameter {n}, which {file} does not declare"
            ));
        }
    }
    for (p, required) in &t.parameters {
        if *required && !names.contains(p) {
            out.push(format!(
                "{label} does not give {p}, which {file} requires (no Default)"
            ));
        }
    }
    let caps = d.capabilities();
    for (any_of, why) in &t.needs {
        if !any_of.iter().any(|c| caps.iter().any(|have| have == c)) {
            out.push(format!(
                "{label}'s deploy of {file} passes --capabilities {}, without {}: {why}",
                list(&caps),
                any_of.join(" or ")
            ));
        }
    }
    if d.tool == "sam deploy" {
        match (
            d.values("--resolve-s3").is_some(),
            d.values("--s3-bucket").is_some(),
        ) {
            (false, false) => out.push(format!(
                "{label}'s `sam deploy` of {file} names no package bucket (--resolve-s3 or \
                 --s3-bucket)"
            )),
            (true, true) => out.push(format!(
                "{label}'s `sam deploy` of {file} passes both --resolve-s3 and --s3-bucket, \
                 which SAM refuses"
            )),
            _ => {}
        }
    }
}

fn table_findings(file: &str, table: &Table, t: &Template, out: &mut Vec<String>) {
    let listed: BTreeSet<&String> = table.names.iter().collect();
    for p in t.parameters.keys() {
        if !listed.contains(p) {
            out.push(format!(
                "README's parameter table for {file} does not list {p}"
            ));
        }
    }
    for n in &listed {
        if !t.parameters.contains_key(*n) {
            out.push(format!(
                "README's parameter table for {file} lists {n}, which {file} does not declare"
            ));
        }
    }
    if let Some(required) = &table.required {
        for (p, req) in &t.parameters {
            if *req != required.contains(p) {
                out.push(format!(
                    "README's parameter table for {file} marks {p} {}, but {file} {}",
                    if *req { "not required" } else { "required" },
                    if *req {
                        "gives it no Default"
                    } else {
                        "has a Default for it"
                    }
                ));
            }
        }
    }
}

/// The README's deploy against a workflow's deploy of the same template.
fn compare(r: &Invocation, label: &str, w: &Invocation, out: &mut Vec<String>) {
    let file = r.template();
    if (r.tool.as_str(), r.program.as_str()) != (w.tool.as_str(), w.program.as_str()) {
        out.push(format!(
            "README deploys {file} with `{} {}`, {label} with `{} {}`",
            r.program,
            r.tool.split_once(' ').map_or("", |(_, sub)| sub),
            w.program,
            w.tool.split_once(' ').map_or("", |(_, sub)| sub),
        ));
    }
    let allowed = |flag: &str, side: Side| {
        WHO_AND_WHERE
            .iter()
            .any(|(f, s, _)| *f == flag && *s == side)
    };
    for flag in r.flags.keys() {
        if !w.flags.contains_key(flag) && !allowed(flag, Side::Readme) {
            out.push(format!(
                "README passes {flag} to {}, {label} does not",
                r.tool
            ));
        }
    }
    for flag in w.flags.keys() {
        if !r.flags.contains_key(flag) && !allowed(flag, Side::Workflow) {
            out.push(format!(
                "{label} passes {flag} to {}, README does not",
                w.tool
            ));
        }
    }
    let (rc, wc) = (r.capabilities(), w.capabilities());
    if rc.iter().collect::<BTreeSet<_>>() != wc.iter().collect::<BTreeSet<_>>() {
        out.push(format!(
            "README passes --capabilities {}, {label} passes {}",
            list(&rc),
            list(&wc)
        ));
    }
    if r.template_flag() != w.template_flag() {
        out.push(format!(
            "README deploys --template-file {}, {label} --template-file {}",
            r.template_flag(),
            w.template_flag()
        ));
    }
    let ((rp, _), (wp, _)) = (r.parameters(), w.parameters());
    for p in rp.difference(&wp) {
        out.push(format!(
            "README gives parameter {p} to {file}, {label} does not"
        ));
    }
    for p in wp.difference(&rp) {
        out.push(format!(
            "{label} gives parameter {p} to {file}, README does not"
        ));
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn the_readme_and_the_workflows_build_and_deploy_alike() {
    let inputs = real_inputs();
    let found = findings(&inputs);
    assert!(found.is_empty(), "{}", found.join("\n"));

    // Not vacuous: the README's controller deploy and the dev workflow's were both found.
    let items = readme_items(&inputs.readme).unwrap_or_else(|e| panic!("{e}"));
    let sam_deploys = items
        .iter()
        .filter_map(|i| match i {
            Item::Command(words) => invocation(words),
            Item::Table(_) => None,
        })
        .filter(|i| i.tool == "sam deploy")
        .count();
    assert_eq!(sam_deploys, 1, "the README shows one `sam deploy`");
}

/// `inputs` with one replacement in the README (`None`) or in a workflow.
fn broken(workflow: Option<&str>, from: &str, to: &str) -> Vec<String> {
    let mut inputs = real_inputs();
    let text = match workflow {
        None => &mut inputs.readme,
        Some(name) => {
            &mut inputs
                .workflows
                .iter_mut()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no workflow {name}"))
                .1
        }
    };
    assert!(
        text.contains(from),
        "{}: `{from}` not found",
        workflow.unwrap_or("README")
    );
    *text = text.replacen(from, to, 1);
    findings(&inputs)
}

fn assert_reported(found: &[String], expected: &str) {
    assert!(
        found.iter().any(|f| f.contains(expected)),
        "expected a finding containing {expected:?}, got:\n{}",
        found.join("\n")
    );
}

#[test]
fn words_join_continuations_and_keep_quotes_placeholders_and_expressions() {
    let script = "make package   # sam build --beta-features\n\
                  .venv/bin/sam deploy --stack-name <stack> \\\n  --parameter-overrides \
                  A=<listener ARNs> B=\"$X\" C='a b' D=\"${{ vars.D }}\" && echo $(date +%s)";
    let got = commands(script);
    let want: Vec<Vec<&str>> = vec![
        vec!["make", "package"],
        vec![
            ".venv/bin/sam",
            "deploy",
            "--stack-name",
            "<stack>",
            "--parameter-overrides",
            "A=<listener ARNs>",
            "B=$X",
            "C=a b",
            "D=${{ vars.D }}",
        ],
        vec!["echo", "$(date +%s)"],
    ];
    assert_eq!(got, want);
    assert_eq!(
        commands("FOO=1 BAR=\"x y\" sam build --beta-features | tee out"),
        vec![vec!["sam", "build", "--beta-features"], vec!["tee", "out"]]
    );
}

#[test]
fn a_missing_capability_is_reported() {
    let found = broken(
        None,
        "--capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM",
        "--capabilities CAPABILITY_IAM",
    );
    assert_reported(
        &found,
        "README passes --capabilities CAPABILITY_IAM, deploy-dev.yaml passes CAPABILITY_IAM \
         CAPABILITY_NAMED_IAM",
    );
    assert_reported(
        &found,
        "README's deploy of template.yaml passes --capabilities CAPABILITY_IAM, without \
         CAPABILITY_NAMED_IAM: template.yaml names IAM resources",
    );
}

#[test]
fn a_renamed_parameter_is_reported() {
    let found = broken(None, "EcrRepositoryArns=<", "EcrRepositoryArn=<");
    assert_reported(
        &found,
        "README passes parameter EcrRepositoryArn, which template.yaml does not declare",
    );
    assert_reported(
        &found,
        "README does not give EcrRepositoryArns, which template.yaml requires (no Default)",
    );
    assert_reported(
        &found,
        "deploy-dev.yaml gives parameter EcrRepositoryArns to template.yaml, README does not",
    );
}

#[test]
fn a_broken_line_continuation_is_reported() {
    // Without the `\`, the parameters are a command of their own: the deploy gives none.
    let found = broken(
        None,
        "--capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM \\\n",
        "--capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM\n",
    );
    assert_reported(&found, "README does not give ListenerArns");
    assert_reported(
        &found,
        "deploy-dev.yaml passes --parameter-overrides to sam deploy",
    );
}

#[test]
fn a_different_build_is_reported() {
    let found = broken(None, "make package        #", "sam build        #");
    assert_reported(
        &found,
        "README builds with `sam build`, deploy-dev.yaml with `make package`",
    );
    assert_reported(
        &found,
        "README builds with `sam build`, ci.yaml with `make package`",
    );
    assert_reported(
        &found,
        "README's build `sam build` runs `sam build` without --beta-features",
    );
}

#[test]
fn a_guided_deploy_is_reported() {
    let found = broken(None, "--resolve-s3", "--guided --config-env dev");
    assert_reported(
        &found,
        "README passes --guided to sam deploy, deploy-dev.yaml does not",
    );
    assert_reported(&found, "README passes --config-env to sam deploy");
    assert_reported(
        &found,
        "README's `sam deploy` of template.yaml names no package bucket",
    );
}

#[test]
fn a_workflow_that_drops_a_parameter_or_a_flag_is_reported() {
    let found = broken(
        Some("deploy-dev.yaml"),
        " EcrRepositoryArns=\"$ECR_REPOSITORY_ARNS\"",
        "",
    );
    assert_reported(
        &found,
        "deploy-dev.yaml does not give EcrRepositoryArns, which template.yaml requires",
    );
    assert_reported(
        &found,
        "README gives parameter EcrRepositoryArns to template.yaml, deploy-dev.yaml does not",
    );
    let found = broken(
        Some("deploy-dev.yaml"),
        " --no-fail-on-empty-changeset",
        " --config-env dev",
    );
    assert_reported(
        &found,
        "README passes --no-fail-on-empty-changeset to sam deploy, deploy-dev.yaml does not",
    );
    assert_reported(
        &found,
        "deploy-dev.yaml passes --config-env to sam deploy, README does not",
    );
}

#[test]
fn a_workflow_that_no_longer_deploys_or_builds_is_reported() {
    let found = broken(
        Some("deploy-dev.yaml"),
        ".venv/bin/sam deploy",
        "echo sam deploy",
    );
    assert_reported(
        &found,
        "no workflow runs the README's `sam deploy` of template.yaml",
    );
    let found = broken(
        Some("deploy-dev.yaml"),
        "run: make package",
        "run: make build",
    );
    assert_reported(
        &found,
        "deploy-dev.yaml runs `sam deploy` of template.yaml with no build before it",
    );
}

#[test]
fn the_environment_account_deploy_is_checked_against_its_template() {
    let found = broken(None, "EnvironmentName=prd ", "");
    assert_reported(
        &found,
        "README does not give EnvironmentName, which environment-account.yaml requires",
    );
    let found = broken(
        None,
        "--capabilities CAPABILITY_NAMED_IAM \\",
        "--capabilities CAPABILITY_IAM \\",
    );
    assert_reported(
        &found,
        "without CAPABILITY_NAMED_IAM: environment-account.yaml names IAM resources",
    );
}

#[test]
fn a_parameter_table_that_drifts_is_reported() {
    let found = broken(
        None,
        "| `EcrRepositoryArns` | yes |",
        "| `EcrRepositoryArns` | no |",
    );
    assert_reported(
        &found,
        "README's parameter table for template.yaml marks EcrRepositoryArns not required",
    );
    let found = broken(None, "| `ForwardAlarms` |", "| `ForwardAlarm` |");
    assert_reported(
        &found,
        "README's parameter table for environment-account.yaml does not list ForwardAlarms",
    );
}
