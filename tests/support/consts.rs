//! Constants shared by the tests: addresses nothing resolves, and how long to wait.

use std::time::Duration;

/// A well-formed b32 that no router knows. The in-process front end never looks it up
/// (its router opens plain TCP whatever the target), so any valid name works there.
pub const B32: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";

/// From starting eepsocks to its `ready` line. Against i2pd 2.45.1 this takes ~20 s (the
/// SAM bridge answers `SESSION CREATE` only after a readiness timer); the margin is for
/// loaded machines.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// From SIGTERM (or the last client leaving while draining) to the process exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to retry a first stream while a young network settles (tunnels, LeaseSets).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(150);

/// Read timeout on sockets whose streams go through I2P: long enough for a slow tunnel,
/// short enough that a hang fails the test instead of stalling it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Read timeout on loopback sockets to the in-process front end.
pub const LOCAL_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The tunnel options of every eepsocks config on the i2pd test network: zero hops (the
/// network has two routers) and two tunnels each way.
pub const ZERO_HOP_OPTIONS: &str = r#"[options]
"inbound.length" = 0
"outbound.length" = 0
"inbound.quantity" = 2
"outbound.quantity" = 2
"#;
