//! The running proxy.
