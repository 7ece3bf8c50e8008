//! dynamodb adapter (in progress).
