//! The shift-traffic phase handler on the in-memory world, fed its task input (an execution state).
#![no_main]
bluegreen_fuzz::phase_target!(shift_traffic::handle, shifted = true, "shift-traffic");
