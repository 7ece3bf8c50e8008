//! Shared library of the Blue/Green deployment controller: the pure domain, the use cases that
//! orchestrate it (start, rollback, environment rollback), the ports the handlers depend on, the
//! AWS adapters behind those ports, and the contracts that cross the Step Functions boundary.

pub mod adapters;
pub mod config;
pub mod contracts;
pub mod domain;
pub mod emf;
pub mod error;
pub mod govern;
pub mod ports;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod telemetry;
pub mod usecases;

#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
#[cfg(any(test, feature = "fakes"))]
pub mod faults;
