//! In-memory doubles.
