//! The finalize phase handler on the in-memory world, fed its task input (an execution state).
#![no_main]
bluegreen_fuzz::phase_target!(finalize::handle, shifted = true, "finalize");
