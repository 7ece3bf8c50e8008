//! The deploy-green phase handler on the in-memory world, fed its task input (an execution state).
#![no_main]
bluegreen_fuzz::phase_target!(deploy_green::handle, shifted = false, "deploy-green");
