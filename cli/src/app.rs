//! The commands: each builds its requests, sends them through the session's transport, and
//! writes the result as the report reads (or the API's JSON with `--output json`).

use crate::error::CliError;
use crate::progress;
use crate::render::{self, s};
use crate::style::Paint;
use crate::transport::{Request, Response, Transport, TransportError};
use serde_json::{Value, json};
use shared::domain::{DeploymentId, EnvironmentName, InvalidName, ServiceName};
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

/// Where requests go: the transport for ordinary calls, and one signed with MFA session
/// credentials for the calls the approver policy guards.
pub trait Session {
    fn api(&self) -> Rc<dyn Transport>;
    /// STS GetSessionToken with the device's serial and a TOTP code; a transport signing with
    /// the session credentials.
    fn with_mfa(&self, serial: &str, code: &str) -> Result<Rc<dyn Transport>, CliError>;
}

/// The person at the terminal, if there is one.
pub trait Prompter {
    fn stdin_is_terminal(&self) -> bool;
    fn confirm(&self, question: &str) -> Result<bool, CliError>;
    fn totp(&self, serial: &str) -> Result<String, CliError>;
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `<registry>/<repository>:<version>` when `deploy` has no `--image`.
    pub registry: Option<String>,
    /// The service when a command has no `--service` (`service` in the config file).
    pub service: Option<String>,
    pub mfa_serial: Option<String>,
    /// `--mfa-serial` (or its variable) was given: MFA for every guarded call, not only in
    /// `mfa_environments`.
    pub mfa_always: bool,
    pub mfa_code: Option<String>,
    pub mfa_environments: Vec<String>,
    /// Between polls of `--follow`.
    pub interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registry: None,
            service: None,
            mfa_serial: None,
            mfa_always: false,
            mfa_code: None,
            mfa_environments: vec!["prd".into()],
            interval: Duration::from_secs(5),
        }
    }
}

pub struct Ctx<'a> {
    pub session: &'a dyn Session,
    pub prompt: &'a dyn Prompter,
    pub out: &'a mut dyn Write,
    pub json: bool,
    pub paint: Paint,
    /// stdout is a terminal: progress bars instead of plain lines.
    pub live: bool,
    pub settings: Settings,
    pub sleep: &'a dyn Fn(Duration),
}

/// Replaces every control character (ESC, CR, LF, TAB, …) in every string of `v` with a space.
pub fn shown(v: &mut Value) {
    match v {
        Value::String(text) if text.chars().any(char::is_control) => {
            *text = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
        }
        Value::Array(items) => items.iter_mut().for_each(shown),
        Value::Object(fields) => fields.values_mut().for_each(shown),
        _ => {}
    }
}

/// Service, environment and deployment id as the API's paths take them: checked here, so a
/// value can never reach another path than the one its command means.
/// A name that goes into a request path, checked as the API checks it, so a bad one is a usage
/// error before any request is made.
fn path_name<T>(value: &str) -> Result<String, CliError>
where
    T: for<'a> TryFrom<&'a str, Error = InvalidName> + Into<String>,
{
    T::try_from(value)
        .map(Into::into)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// The service and environment a command acts in: every route names both in its path, which
/// is what IAM policies scope callers by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub service: String,
    pub environment: String,
}

impl Scope {
    pub fn new(service: &str, environment: &str) -> Result<Self, CliError> {
        Ok(Self {
            service: path_name::<ServiceName>(service)?,
            environment: path_name::<EnvironmentName>(environment)?,
        })
    }

    /// The scope a deployment the API returned belongs to.
    fn of(d: &Value) -> Result<Self, CliError> {
        Self::new(s(&d["service"]), s(&d["environment"])).map_err(|e| {
            CliError::refused(format!(
                "the API returned a deployment without a usable service and environment: {}",
                e.message
            ))
        })
    }

    /// `/services/<service>/environments/<environment>`.
    pub fn base(&self) -> String {
        format!(
            "/services/{}/environments/{}",
            self.service, self.environment
        )
    }
    pub fn deployments(&self) -> String {
        format!("{}/deployments", self.base())
    }
    pub fn deployment(&self, id: &str) -> Result<String, CliError> {
        Ok(format!(
            "{}/{}",
            self.deployments(),
            path_name::<DeploymentId>(id)?
        ))
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// What the operator should do about a transport failure.
pub fn transport_error(api: &dyn Transport, e: TransportError) -> CliError {
    match e {
        TransportError::Unreachable { endpoint, detail } if api.is_local() => {
            CliError::refused(format!(
                "the local stack does not answer at {endpoint} ({detail}): start the local stack: make stack-up"
            ))
        }
        TransportError::Unreachable { endpoint, detail } => CliError::refused(format!(
            "cannot reach the API at {endpoint} ({detail}): check --endpoint / BLUEGREEN_ENDPOINT and your network"
        )),
        TransportError::Protocol(m) => {
            CliError::refused(format!("the API answered unexpectedly: {m}"))
        }
        TransportError::Signing(m) => CliError::usage(format!("cannot sign the request: {m}")),
    }
}

/// A refused request: the API's message and what to do next.
pub fn api_error(request: &Request, response: &Response) -> CliError {
    let name = s(&response.body["error"]);
    let message = response.body["message"]
        .as_str()
        .map_or_else(|| response.body.to_string(), str::to_string);
    let route = format!("{} {}", request.method, request.path);
    let text = match response.status {
        400 => format!("{route} was refused ({name}): {message}"),
        401 => format!(
            "{route}: the API saw no IAM identity ({message}); the request must be SigV4-signed: check the endpoint is the IAM-authorized HTTP API"
        ),
        // The product's own refusals carry a name; IAM's do not.
        403 if !name.is_empty() => format!("{route} was refused ({name}): {message}"),
        403 => format!(
            "{route}: your credentials are not allowed to call this route ({message}). Approvals, promotions and policy changes need MFA: run with --mfa-serial arn:aws:iam::<account>:mfa/<you> (or set mfa_serial in the config)"
        ),
        404 => format!("{route}: not found: {message}"),
        409 => format!("{route}: conflict: {message}"),
        429 | 503 => format!("{route}: throttled: {message}; retry in a few seconds"),
        s if s >= 500 => format!("{route} failed in the API ({name}, {s}): {message}"),
        s => format!("{route} was refused ({s} {name}): {message}"),
    };
    if response.status == 400 {
        CliError::usage(text)
    } else {
        CliError::refused(text)
    }
}

impl Ctx<'_> {
    pub fn line(&mut self, text: &str) -> Result<(), CliError> {
        writeln!(self.out, "{text}")?;
        Ok(())
    }
    pub fn lines(&mut self, lines: &[String]) -> Result<(), CliError> {
        for l in lines {
            writeln!(self.out, "{l}")?;
        }
        Ok(())
    }
    fn human(&mut self, lines: &[String]) -> Result<(), CliError> {
        if self.json { Ok(()) } else { self.lines(lines) }
    }
    pub fn print_json(&mut self, v: &Value) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(v)
            .map_err(|e| CliError::refused(format!("formatting JSON: {e}")))?;
        self.line(&text)
    }
    /// Sends `request` and returns the response whatever its status. For a person's terminal
    /// every string of the answer is made safe to show first ([`shown`]): the API carries text
    /// that people and other systems wrote (reasons, comments, pod and event messages), and
    /// none of it may move the cursor, clear the screen or fake a line. `--output json` keeps
    /// the answer as it is (JSON escapes control characters itself).
    pub fn call(&mut self, api: &dyn Transport, request: &Request) -> Result<Response, CliError> {
        let mut r = api.send(request).map_err(|e| transport_error(api, e))?;
        if !self.json {
            shown(&mut r.body);
        }
        Ok(r)
    }
    /// Sends `request`; a refusal becomes an error (its JSON printed with `--output json`).
    pub fn fetch(&mut self, api: &dyn Transport, request: &Request) -> Result<Value, CliError> {
        let r = self.call(api, request)?;
        if is_success(r.status) {
            Ok(r.body)
        } else {
            self.refused(request, &r)
        }
    }
    fn refused<T>(&mut self, request: &Request, r: &Response) -> Result<T, CliError> {
        if self.json {
            self.print_json(&r.body)?;
        }
        Err(api_error(request, r))
    }

    /// The transport for a call the approver policy guards: MFA session credentials when the
    /// environment needs them (or `--mfa-serial` was given), otherwise the ordinary one.
    fn guarded(&mut self, environment: &str) -> Result<Rc<dyn Transport>, CliError> {
        let api = self.session.api();
        let wanted = self.settings.mfa_always
            || self
                .settings
                .mfa_environments
                .iter()
                .any(|e| e.eq_ignore_ascii_case(environment));
        if !wanted {
            return Ok(api);
        }
        self.mfa(&environment.to_uppercase())
    }

    /// The transport signing with MFA session credentials, for `what` (named in the errors).
    fn mfa(&mut self, what: &str) -> Result<Rc<dyn Transport>, CliError> {
        let api = self.session.api();
        if api.is_local() {
            self.human(&["  (local stack: no IAM, MFA is not checked)".into()])?;
            return Ok(api);
        }
        let serial = self.settings.mfa_serial.clone().ok_or_else(|| {
            CliError::usage(format!(
                "{what} needs MFA: pass --mfa-serial arn:aws:iam::<account>:mfa/<you> (or BLUEGREEN_MFA_SERIAL, or mfa_serial in the config)"
            ))
        })?;
        let code = match self.settings.mfa_code.clone() {
            Some(c) => c,
            None if self.prompt.stdin_is_terminal() => self.prompt.totp(&serial)?,
            None => {
                return Err(CliError::usage(
                    "MFA needs a TOTP code and stdin is not a terminal: pass --mfa-code (or BLUEGREEN_MFA_CODE)",
                ));
            }
        };
        let code = code.trim().to_string();
        if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
            return Err(CliError::usage(format!(
                "the MFA code must be the 6 digits your device shows, got {} characters",
                code.chars().count()
            )));
        }
        let t = self.session.with_mfa(&serial, &code)?;
        let ok = self.paint.ok();
        self.human(&[format!("{ok} MFA verified ({serial})")])?;
        Ok(t)
    }

    /// The service a command acts on: `--service`, else `service` in the config file.
    pub fn service(&self, flag: Option<&str>, command: &str) -> Result<String, CliError> {
        let service = flag.or(self.settings.service.as_deref()).ok_or_else(|| {
            CliError::usage(format!(
                "{command} needs the service: pass --service <service> (-s), or set service = \"<service>\" in the config file"
            ))
        })?;
        path_name::<ServiceName>(service)
    }

    /// Up to `limit` deployments of the scope's service in its environment, newest first,
    /// following the pages.
    fn list(
        &mut self,
        api: &dyn Transport,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<Value>, CliError> {
        let mut found: Vec<Value> = vec![];
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let want = (limit - found.len()).clamp(1, 100);
            let mut req = Request::get(scope.deployments()).query("limit", want);
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let r = self.call(api, &req)?;
            if !is_success(r.status) {
                return self.refused(&req, &r);
            }
            let rows = r.body["deployments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            found.extend(rows);
            cursor = r.body["next_cursor"].as_str().map(str::to_string);
            if found.len() >= limit || cursor.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    fn latest(&mut self, api: &dyn Transport, scope: &Scope) -> Result<Value, CliError> {
        self.list(api, scope, 1)?.into_iter().next().ok_or_else(|| {
            CliError::refused(format!(
                "no deployments recorded in {} for {}",
                scope.environment.to_uppercase(),
                scope.service
            ))
        })
    }

    /// A deployment id in `environment`, or (without one) an environment meaning its latest
    /// deployment: the deployment.
    fn resolve(
        &mut self,
        api: &dyn Transport,
        target: &str,
        service: &str,
        environment: Option<&str>,
    ) -> Result<Value, CliError> {
        if let Some(environment) = environment {
            let req = Request::get(Scope::new(service, environment)?.deployment(target)?);
            return self.fetch(api, &req);
        }
        let scope = Scope::new(service, target).map_err(|_| {
            CliError::usage(format!(
                "{target:?} is not an environment: to show a deployment by id, pass its environment too (--env <environment>)"
            ))
        })?;
        let latest = self.latest(api, &scope).map_err(|e| {
            CliError::refused(format!(
                "{}; to show a deployment by id, pass its environment too (--env <environment>)",
                e.message
            ))
        })?;
        let req = Request::get(scope.deployment(s(&latest["deployment_id"]))?);
        self.fetch(api, &req)
    }
}

pub struct Deploy {
    pub version: String,
    pub service: String,
    pub environment: String,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub follow: bool,
}

pub fn deploy(ctx: &mut Ctx, a: &Deploy) -> Result<(), CliError> {
    let api = ctx.session.api();
    let image = match &a.image {
        Some(i) => i.clone(),
        None => {
            let registry = ctx.settings.registry.clone().ok_or_else(|| {
                CliError::usage(
                    "the API needs an image: pass --image <registry>/<repository>:<tag>, or set --registry (or registry in the config) to build it from the service's repository",
                )
            })?;
            let svc = ctx.fetch(&*api, &Request::get(format!("/services/{}", a.service)))?;
            let repo = svc["repository"].as_str().ok_or_else(|| {
                CliError::refused(format!(
                    "service {} has no repository in the registry: pass --image",
                    a.service
                ))
            })?;
            format!("{}/{repo}:{}", registry.trim_end_matches('/'), a.version)
        }
    };
    let scope = Scope::new(&a.service, &a.environment)?;
    let mut body = json!({"version": a.version, "image": image});
    if let Some(d) = &a.image_digest {
        body["image_digest"] = json!(d);
    }
    let accepted = ctx.fetch(&*api, &Request::post(scope.deployments(), body))?;
    if !a.follow {
        return if ctx.json {
            ctx.print_json(&accepted)
        } else {
            let lines = render::accepted(
                &ctx.paint,
                &accepted,
                &a.service,
                &a.version,
                &a.environment,
            );
            ctx.lines(&lines)
        };
    }
    let lines = render::accepted(
        &ctx.paint,
        &accepted,
        &a.service,
        &a.version,
        &a.environment,
    );
    ctx.human(&lines)?;
    ctx.human(&[String::new()])?;
    let id = s(&accepted["deployment_id"]).to_string();
    let first = recorded(ctx, &*api, &scope, &id)?;
    follow(ctx, &*api, first)
}

/// How long a started deployment may take to appear: its record is written by the execution's
/// first phase, a moment after the API accepted it.
const RECORD_WAIT: Duration = Duration::from_secs(60);

/// The deployment, once its record exists.
fn recorded(
    ctx: &mut Ctx,
    api: &dyn Transport,
    scope: &Scope,
    id: &str,
) -> Result<Value, CliError> {
    let get = Request::get(scope.deployment(id)?);
    let mut waited = Duration::ZERO;
    loop {
        let r = ctx.call(api, &get)?;
        if is_success(r.status) {
            return Ok(r.body);
        }
        if r.status != 404 || waited >= RECORD_WAIT {
            return ctx.refused(&get, &r);
        }
        (ctx.sleep)(ctx.settings.interval);
        waited += ctx.settings.interval;
    }
}

pub fn status(
    ctx: &mut Ctx,
    target: &str,
    service: &str,
    environment: Option<&str>,
    follow_it: bool,
) -> Result<(), CliError> {
    let api = ctx.session.api();
    let d = ctx.resolve(&*api, target, service, environment)?;
    if follow_it {
        return follow(ctx, &*api, d);
    }
    if ctx.json {
        ctx.print_json(&d)
    } else {
        let lines = render::deployment(&ctx.paint, &d);
        ctx.lines(&lines)
    }
}

/// Polls the deployment until it ends; exit 1 unless it succeeded.
fn follow(ctx: &mut Ctx, api: &dyn Transport, first: Value) -> Result<(), CliError> {
    let id = s(&first["deployment_id"]).to_string();
    let get = Request::get(Scope::of(&first)?.deployment(&id)?);
    let last = if ctx.json {
        let mut d = first;
        while s(&d["status"]) == "IN_PROGRESS" {
            (ctx.sleep)(ctx.settings.interval);
            d = ctx.fetch(api, &get)?;
        }
        ctx.print_json(&d)?;
        d
    } else if ctx.live {
        let plan = plan(ctx, api, &first);
        progress::live(ctx, api, &get, first, &plan)?
    } else {
        let mut printed: Vec<String> = vec![];
        let mut d = first;
        loop {
            let lines: Vec<String> = render::deployment(&ctx.paint, &d)
                .iter()
                .flat_map(|l| l.split('\n').map(str::to_string).collect::<Vec<_>>())
                .collect();
            // A blank line separates sections: printed only before a line that is new.
            let mut gap = false;
            for l in lines {
                if l.is_empty() {
                    gap = true;
                    continue;
                }
                if !printed.contains(&l) {
                    if gap && printed.last().is_some_and(|p| !p.is_empty()) {
                        ctx.line("")?;
                        printed.push(String::new());
                    }
                    ctx.line(&l)?;
                    printed.push(l);
                }
                gap = false;
            }
            if s(&d["status"]) != "IN_PROGRESS" {
                break d;
            }
            (ctx.sleep)(ctx.settings.interval);
            d = ctx.fetch(api, &get)?;
        }
    };
    match s(&last["status"]) {
        "SUCCEEDED" => Ok(()),
        other => Err(CliError::refused(format!(
            "deployment {id} ended {other}: {}",
            last["reason"].as_str().unwrap_or("no reason recorded")
        ))),
    }
}

/// The environment's step plan and timings, for the progress bars; the defaults when the
/// registry cannot be read.
fn plan(ctx: &mut Ctx, api: &dyn Transport, d: &Value) -> progress::Plan {
    let req = Request::get(format!(
        "/services/{}/environments/{}",
        s(&d["service"]),
        s(&d["environment"])
    ));
    match ctx.call(api, &req) {
        Ok(r) if is_success(r.status) => progress::Plan::from_config(&r.body),
        _ => progress::Plan::default(),
    }
}

pub fn rollback(
    ctx: &mut Ctx,
    environment: &str,
    service: &str,
    reason: Option<&str>,
    yes: bool,
) -> Result<(), CliError> {
    if !yes && !ctx.prompt.stdin_is_terminal() {
        return Err(CliError::usage(format!(
            "stdin is not a terminal, so nobody can confirm: pass --yes to roll back {service} in {} without asking",
            environment.to_uppercase()
        )));
    }
    let api = ctx.session.api();
    let scope = Scope::new(service, environment)?;
    let path = format!("{}/rollback", scope.base());
    // The current state is shown when it can be read; the rollback itself does not need it, so
    // a failure here prints nothing (not even with --output json) and the preview decides.
    let json = std::mem::replace(&mut ctx.json, false);
    let state = ctx.latest(&*api, &scope).and_then(|latest| {
        let req = Request::get(scope.deployment(s(&latest["deployment_id"]))?);
        ctx.fetch(&*api, &req)
    });
    ctx.json = json;
    if let Ok(d) = state {
        ctx.human(&render::current_state(&d))?;
    }
    // Without "confirm" the API changes nothing and says what the rollback would do.
    let preview = Request::post(&path, json!({}));
    let r = ctx.call(&*api, &preview)?;
    if !(r.status == 400 && s(&r.body["error"]) == "ConfirmationRequired") {
        return ctx.refused(&preview, &r);
    }
    let what = s(&r.body["message"]);
    let what = what.split(" Send {").next().unwrap_or(what).to_string();
    ctx.human(&[String::new(), what])?;
    if !yes && !ctx.prompt.confirm("Confirm rollback?")? {
        return Err(CliError::refused("rollback cancelled; nothing was changed"));
    }
    let mut body = json!({"confirm": true});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    let result = ctx.fetch(&*api, &Request::post(&path, body))?;
    if ctx.json {
        ctx.print_json(&result)
    } else {
        let lines = render::rollback_result(&ctx.paint, &result);
        ctx.lines(&[String::new()])?;
        ctx.lines(&lines)
    }
}

pub fn promote(
    ctx: &mut Ctx,
    version: &str,
    service: &str,
    from: &str,
    to: &str,
) -> Result<(), CliError> {
    ctx.human(&[format!(
        "Promoting {service} v{version} from {} to {}...",
        from.to_uppercase(),
        to.to_uppercase()
    )])?;
    let into = Scope::new(service, to)?;
    Scope::new(service, from)?;
    let api = ctx.guarded(to)?;
    let req = Request::post(
        format!("{}/promotions", into.base()),
        json!({"version": version, "from": from}),
    );
    let r = ctx.call(&*api, &req)?;
    if is_success(r.status) {
        if ctx.json {
            return ctx.print_json(&r.body);
        }
        let lines = render::promotion(&ctx.paint, &r.body);
        ctx.line("")?;
        return ctx.lines(&lines);
    }
    if r.status == 412 {
        if ctx.json {
            ctx.print_json(&r.body)?;
        } else {
            let mut lines = vec![String::new()];
            lines.extend(render::gates(&ctx.paint, &r.body["gates"]));
            ctx.lines(&lines)?;
        }
        return Err(CliError::refused(format!(
            "promotion of {service} v{version} to {} refused: {}",
            to.to_uppercase(),
            s(&r.body["message"])
        )));
    }
    ctx.refused(&req, &r)
}

pub enum Decision {
    Approve { comment: Option<String> },
    Reject { reason: String },
}

pub fn decide(ctx: &mut Ctx, scope: &Scope, id: &str, decision: &Decision) -> Result<(), CliError> {
    let path = scope.deployment(id)?;
    let api = ctx.session.api();
    let d = ctx.fetch(&*api, &Request::get(path.clone()))?;
    ctx.human(&[format!(
        "Deployment {}: {} v{} → {}",
        ctx.paint.bold(id),
        s(&d["service"]),
        s(&d["version"]),
        s(&d["environment"]).to_uppercase()
    )])?;
    let api = ctx.guarded(&scope.environment)?;
    let req = match decision {
        Decision::Approve { comment } => Request::post(
            format!("{path}/approve"),
            comment
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({"comment": c})),
        ),
        Decision::Reject { reason } => {
            Request::post(format!("{path}/reject"), json!({"reason": reason}))
        }
    };
    let r = ctx.call(&*api, &req)?;
    if r.status == 409 {
        if ctx.json {
            ctx.print_json(&r.body)?;
        }
        let approval = d["approval"]["state"]
            .as_str()
            .map(|a| format!(", approval {a}"))
            .unwrap_or_default();
        return Err(CliError::refused(format!(
            "deployment {id} is not waiting for approval (phase {}, status {}{approval}): {}",
            s(&d["phase"]),
            s(&d["status"]),
            s(&r.body["message"])
        )));
    }
    if !is_success(r.status) {
        return ctx.refused(&req, &r);
    }
    if ctx.json {
        ctx.print_json(&r.body)
    } else {
        let lines = render::decision(&ctx.paint, &r.body, &scope.service, &scope.environment);
        ctx.lines(&lines)
    }
}

pub fn history(ctx: &mut Ctx, scope: &Scope, limit: usize) -> Result<(), CliError> {
    let api = ctx.session.api();
    let rows = ctx.list(&*api, scope, limit)?;
    if ctx.json {
        ctx.print_json(&json!({"service": scope.service, "environment": scope.environment, "deployments": rows}))
    } else {
        let lines = render::history(&ctx.paint, &scope.environment, &rows);
        ctx.lines(&lines)
    }
}

/// What `bluegreen policy` changes: environment flags, or service flags.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    pub protected: Option<bool>,
    pub approval: Option<bool>,
    pub approval_timeout: Option<u64>,
    pub accounts: Option<Vec<String>>,
    pub p99_limit_ms: Option<f64>,
    pub blocking_severities: Option<Vec<String>>,
}

impl PolicyChange {
    /// The policy route's body for an environment: only what changes.
    fn environment_body(&self) -> Option<Value> {
        let mut body = serde_json::Map::new();
        if let Some(p) = self.protected {
            body.insert("protected".into(), json!(p));
        }
        let mut approval = serde_json::Map::new();
        if let Some(a) = self.approval {
            approval.insert("required".into(), json!(a));
        }
        if let Some(t) = self.approval_timeout {
            approval.insert("timeout_seconds".into(), json!(t));
        }
        if !approval.is_empty() {
            body.insert("approval".into(), Value::Object(approval));
        }
        (!body.is_empty()).then_some(Value::Object(body))
    }

    /// The policy route's body for a service: only what changes.
    fn service_body(&self) -> Option<Value> {
        let mut body = serde_json::Map::new();
        if let Some(a) = &self.accounts {
            let accounts: Vec<&String> = a.iter().filter(|a| !a.trim().is_empty()).collect();
            body.insert("accounts".into(), json!(accounts));
        }
        let mut promotion = serde_json::Map::new();
        if let Some(p) = self.p99_limit_ms {
            promotion.insert("p99_limit_ms".into(), json!(p));
        }
        if let Some(b) = &self.blocking_severities {
            let upper: Vec<String> = b.iter().map(|s| s.trim().to_uppercase()).collect();
            promotion.insert("blocking_severities".into(), json!(upper));
        }
        if !promotion.is_empty() {
            body.insert("promotion".into(), Value::Object(promotion));
        }
        (!body.is_empty()).then_some(Value::Object(body))
    }

    fn names_environment_settings(&self) -> bool {
        self.protected.is_some() || self.approval.is_some() || self.approval_timeout.is_some()
    }
    fn names_service_settings(&self) -> bool {
        self.accounts.is_some() || self.p99_limit_ms.is_some() || self.blocking_severities.is_some()
    }
}

/// `bluegreen policy`: what governs a service or an environment; with flags, an
/// administrator's change of it (always with MFA, as the admin policy requires).
pub fn policy(
    ctx: &mut Ctx,
    service: &str,
    environment: Option<&str>,
    change: &PolicyChange,
) -> Result<(), CliError> {
    let service = &path_name::<ServiceName>(service)?;
    if let Some(env) = environment {
        path_name::<EnvironmentName>(env)?;
    }
    let (path, body) = match environment {
        Some(env) => {
            if change.names_service_settings() {
                return Err(CliError::usage(
                    "--accounts, --p99-limit-ms and --blocking-severities are a service's: leave out --env",
                ));
            }
            (
                format!("/services/{service}/environments/{env}/policy"),
                change.environment_body(),
            )
        }
        None => {
            if change.names_environment_settings() {
                return Err(CliError::usage(
                    "--protected, --approval and --approval-timeout are an environment's: add --env <environment>",
                ));
            }
            (format!("/services/{service}/policy"), change.service_body())
        }
    };
    let api = ctx.session.api();
    let (policy, changed) = match body {
        None => (ctx.fetch(&*api, &Request::get(path))?, false),
        Some(body) => {
            let what = environment.map_or_else(
                || format!("Changing {service}'s policy"),
                |e| format!("Changing {service}/{e}'s policy"),
            );
            let api = ctx.mfa(&what)?;
            (ctx.fetch(&*api, &Request::put(path, body))?, true)
        }
    };
    if ctx.json {
        ctx.print_json(&policy)
    } else {
        let lines = render::policy(&ctx.paint, &policy, changed);
        ctx.lines(&lines)
    }
}

pub fn metrics(
    ctx: &mut Ctx,
    service: &str,
    days: u32,
    environment: Option<&str>,
) -> Result<(), CliError> {
    let api = ctx.session.api();
    let mut req = Request::get(format!(
        "/services/{}/metrics",
        path_name::<ServiceName>(service)?
    ))
    .query("days", days);
    if let Some(e) = environment {
        req = req.query("environment", e);
    }
    let m = ctx.fetch(&*api, &req)?;
    if ctx.json {
        ctx.print_json(&m)
    } else {
        let lines = render::metrics(&ctx.paint, &m);
        ctx.lines(&lines)
    }
}

pub fn troubleshoot(
    ctx: &mut Ctx,
    target: &str,
    service: &str,
    environment: Option<&str>,
) -> Result<(), CliError> {
    let api = ctx.session.api();
    let d = ctx.resolve(&*api, target, service, environment)?;
    let req = Request::get(format!(
        "{}/troubleshoot",
        Scope::of(&d)?.deployment(s(&d["deployment_id"]))?
    ));
    let t = ctx.fetch(&*api, &req)?;
    if ctx.json {
        ctx.print_json(&t)
    } else {
        let lines = render::troubleshoot(&ctx.paint, &t);
        ctx.lines(&lines)
    }
}
