//! IRC leak filter (to be written).
