//! The deploy-green phase handler on the in-memory world, fed its task input (an execution state).
//! As the execution's first phase it records the request before anything can refuse it; a
//! refusal may change nothing else.
#![no_main]
bluegreen_fuzz::phase_target!(
    deploy_green::handle,
    shifted = false,
    "deploy-green",
    bluegreen_fuzz::assert_only_requested
);
