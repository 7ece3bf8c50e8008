//! Configuration read once at cold start.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
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
        Ok(Self { table_name })
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
}
