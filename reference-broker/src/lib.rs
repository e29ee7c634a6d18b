//! Reference broker.
