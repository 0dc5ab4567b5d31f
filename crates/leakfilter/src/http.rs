//! HTTP request-header leak filter (to be written).
