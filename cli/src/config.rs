//! The config file and where the API is. The file is a few `key = "value"` lines (a subset of
//! TOML); anything else in it is an error naming the line.

use crate::error::CliError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub registry: Option<String>,
    pub mfa_serial: Option<String>,
    /// Environments whose guarded calls need MFA (default `prd`).
    pub mfa_environments: Option<Vec<String>>,
    pub caller: Option<String>,
    /// The service commands act on when `--service` is not given.
    pub service: Option<String>,
}

const KEYS: &str = "endpoint, region, registry, mfa_serial, mfa_environments, caller, service";

pub fn parse(text: &str, origin: &Path) -> Result<FileConfig, CliError> {
    let mut c = FileConfig::default();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            CliError::usage(format!(
                "{}:{}: {why}; lines are key = \"value\" with keys {KEYS}",
                origin.display(),
                n + 1
            ))
        };
        let (key, value) = line.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
            .ok_or_else(|| bad("the value must be one double-quoted string"))?
            .to_string();
        let slot = match key.trim() {
            "endpoint" => &mut c.endpoint,
            "region" => &mut c.region,
            "registry" => &mut c.registry,
            "mfa_serial" => &mut c.mfa_serial,
            "caller" => &mut c.caller,
            "service" => &mut c.service,
            "mfa_environments" => {
                c.mfa_environments = Some(
                    value
                        .split(',')
                        .map(|e| e.trim().to_string())
                        .filter(|e| !e.is_empty())
                        .collect(),
                );
                continue;
            }
            other => return Err(bad(&format!("unknown key {other:?}"))),
        };
        *slot = Some(value);
    }
    Ok(c)
}

/// `$XDG_CONFIG_HOME/bluegreen/config.toml`, else `$HOME/.config/bluegreen/config.toml`.
pub fn default_path(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match (
        xdg.filter(|x| !x.is_empty()),
        home.filter(|h| !h.is_empty()),
    ) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) => Path::new(h).join(".config"),
        (None, None) => return None,
    };
    Some(base.join("bluegreen").join("config.toml"))
}

/// Reads the file: a missing default file is an empty config, a missing named one an error.
pub fn load(path: Option<&Path>, named: bool) -> Result<FileConfig, CliError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(FileConfig::default()),
        Err(e) => Err(CliError::usage(format!(
            "cannot read the config {}: {e}",
            path.display()
        ))),
    }
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local stack's router, with the caller the events carry.
    Local { router: String, caller: String },
    /// The HTTP API in AWS.
    Aws { endpoint: String },
}

/// `--local` wins, then `--endpoint`/`BLUEGREEN_ENDPOINT`, then the config file's endpoint.
pub fn target(
    local: bool,
    endpoint: Option<&str>,
    stack: Option<&str>,
    file: &FileConfig,
    router: Option<&str>,
    caller: Option<&str>,
) -> Result<Target, CliError> {
    if local {
        return Ok(Target::Local {
            router: router
                .map(|r| r.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "http://127.0.0.1:4566".into()),
            caller: caller
                .or(file.caller.as_deref())
                .unwrap_or(crate::transport::DEFAULT_LOCAL_CALLER)
                .to_string(),
        });
    }
    if let Some(e) = endpoint.or(file.endpoint.as_deref()) {
        if !(e.starts_with("https://") || e.starts_with("http://")) {
            return Err(CliError::usage(format!(
                "the endpoint {e:?} must be a URL like https://abc123.execute-api.us-east-1.amazonaws.com"
            )));
        }
        return Ok(Target::Aws {
            endpoint: e.trim_end_matches('/').to_string(),
        });
    }
    if let Some(s) = stack {
        return Err(CliError::usage(format!(
            "the CLI does not read CloudFormation: take the endpoint from stack {s} with\n  aws cloudformation describe-stacks --stack-name {s} --query \"Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue\" --output text\nand pass it as --endpoint (or BLUEGREEN_ENDPOINT, or endpoint in the config)"
        )));
    }
    Err(CliError::usage(
        "no API endpoint: pass --endpoint https://<api-id>.execute-api.<region>.amazonaws.com (or set BLUEGREEN_ENDPOINT, or endpoint in ~/.config/bluegreen/config.toml), or --local for the local stack",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_key_equals_quoted_value() {
        let text = "# mine\nendpoint = \"https://a.execute-api.eu-west-1.amazonaws.com\"\nmfa_serial = \"arn:aws:iam::1:mfa/alice\"\nmfa_environments = \"prd, stg\"\nservice = \"checkout\"\n";
        let c = parse(text, Path::new("c.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.endpoint.as_deref(),
            Some("https://a.execute-api.eu-west-1.amazonaws.com")
        );
        assert_eq!(c.mfa_environments, Some(vec!["prd".into(), "stg".into()]));
        assert_eq!(c.service.as_deref(), Some("checkout"));
        for (bad, says) in [
            ("endpoint: x", "c.toml:1: no `=`"),
            ("endpoint = x", "double-quoted"),
            ("colour = \"x\"", "unknown key \"colour\""),
        ] {
            let e = parse(bad, Path::new("c.toml")).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.exit_code() == 2 && e.message.contains(says)),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn local_wins_then_endpoint_then_file_and_a_stack_says_how() {
        let file = FileConfig {
            endpoint: Some("https://file.example".into()),
            ..Default::default()
        };
        assert_eq!(
            target(true, Some("https://x"), None, &file, None, None),
            Ok(Target::Local {
                router: "http://127.0.0.1:4566".into(),
                caller: crate::transport::DEFAULT_LOCAL_CALLER.into()
            })
        );
        assert_eq!(
            target(false, Some("https://x/"), None, &file, None, None),
            Ok(Target::Aws {
                endpoint: "https://x".into()
            })
        );
        assert_eq!(
            target(false, None, None, &file, None, None),
            Ok(Target::Aws {
                endpoint: "https://file.example".into()
            })
        );
        let none = FileConfig::default();
        let e = target(false, None, Some("bluegreen"), &none, None, None).err();
        assert!(
            e.is_some_and(|e| e.exit_code() == 2 && e.message.contains("--stack-name bluegreen"))
        );
        let e = target(false, None, None, &none, None, None).err();
        assert!(e.is_some_and(|e| e.message.contains("--local")));
        assert_eq!(
            default_path(None, Some("/home/a")),
            Some(PathBuf::from("/home/a/.config/bluegreen/config.toml"))
        );
    }
}
