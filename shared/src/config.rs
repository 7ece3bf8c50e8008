//! Configuration read once at cold start.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    /// The deployment state machine (`STATE_MACHINE_ARN`); only the functions that start, stop
    /// or watch executions need it.
    pub state_machine_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "environment variable {0} is not set: set it in the function's configuration (template.yaml)"
)]
pub struct MissingVar(pub &'static str);

impl Config {
    pub fn from_env() -> Result<Self, MissingVar> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MissingVar> {
        let table_name = get("TABLE_NAME")
            .filter(|v| !v.is_empty())
            .ok_or(MissingVar("TABLE_NAME"))?;
        let state_machine_arn = get("STATE_MACHINE_ARN").filter(|v| !v.is_empty());
        Ok(Self {
            table_name,
            state_machine_arn,
        })
    }

    /// The state machine's ARN, for the functions that cannot run without it.
    pub fn require_state_machine_arn(&self) -> Result<String, MissingVar> {
        self.state_machine_arn
            .clone()
            .ok_or(MissingVar("STATE_MACHINE_ARN"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_table_name_is_named() {
        assert_eq!(Config::from_lookup(|_| None), Err(MissingVar("TABLE_NAME")));
        assert_eq!(
            Config::from_lookup(|_| Some(String::new())),
            Err(MissingVar("TABLE_NAME"))
        );
        assert_eq!(
            Config::from_lookup(|_| Some("bluegreen".into())).map(|c| c.table_name),
            Ok("bluegreen".into())
        );
    }

    #[test]
    fn the_state_machine_is_optional_until_required_and_then_named() {
        let only_table = Config::from_lookup(|k| (k == "TABLE_NAME").then(|| "t".to_string()));
        assert_eq!(
            only_table.map(|c| c.require_state_machine_arn()),
            Ok(Err(MissingVar("STATE_MACHINE_ARN")))
        );
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:blue-green";
        let both =
            Config::from_lookup(|k| Some(if k == "TABLE_NAME" { "t" } else { arn }.to_string()));
        assert_eq!(
            both.map(|c| c.require_state_machine_arn()),
            Ok(Ok(arn.to_string()))
        );
    }
}
