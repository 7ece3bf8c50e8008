//! elbv2 adapter (in progress).
