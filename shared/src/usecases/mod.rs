//! The use cases: what the handlers ask for, orchestrated over the ports with the domain's rules.
//! Each is called by several entry points (the API, the triggers, the phases), so they live here
//! and the handlers stay thin: parse, call, answer.

pub mod environment_rollback;
pub mod rollback;
pub mod start;
