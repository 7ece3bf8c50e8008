//! The rollback phase handler on the in-memory world, fed its task input (an execution state).
#![no_main]
bluegreen_fuzz::phase_target!(rollback::handle, shifted = true, "rollback");
