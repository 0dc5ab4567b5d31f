//! HTTP leak filter: placeholder that passes bytes untouched until the real filter lands.
use crate::{Filter, Output};

pub const DEFAULT_USER_AGENT: &str = "MYOB/6.66 (AN/ON)";
#[derive(Clone, Debug)]
pub struct Options {
    pub user_agent: String,
    pub sniff: bool,
}
impl Default for Options {
    fn default() -> Self {
        Options {
            user_agent: DEFAULT_USER_AGENT.into(),
            sniff: false,
        }
    }
}
pub struct Requests;
impl Requests {
    pub fn new(_options: Options) -> Self {
        Requests
    }
}
impl Filter for Requests {
    fn feed(&mut self, input: &[u8], out: &mut Output) {
        out.forward.extend_from_slice(input);
    }
    fn finish(&mut self, _out: &mut Output) {}
}
