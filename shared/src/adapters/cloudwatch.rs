//! cloudwatch adapter (in progress).
