//! IRC leak filter: placeholder that passes bytes untouched until the real filter lands.
use crate::{Filter, Output};

#[derive(Default)]
pub struct Outbound;
impl Outbound {
    pub fn new() -> Self {
        Outbound
    }
}
impl Filter for Outbound {
    fn feed(&mut self, input: &[u8], out: &mut Output) {
        out.forward.extend_from_slice(input);
    }
    fn finish(&mut self, _out: &mut Output) {}
}
#[derive(Default)]
pub struct Inbound;
impl Inbound {
    pub fn new() -> Self {
        Inbound
    }
}
impl Filter for Inbound {
    fn feed(&mut self, input: &[u8], out: &mut Output) {
        out.forward.extend_from_slice(input);
    }
    fn finish(&mut self, _out: &mut Output) {}
}
