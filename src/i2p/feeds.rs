//! The subscriptions' way into I2P (`naming::subscriptions::Feeds`): a transient identity
//! of its own each round, on the SAM bridge the listeners use.

use crate::i2p::identity::{self, Template};
use crate::i2p::keyfile::{self, KeySource};
use crate::i2p::sam::Session;
use crate::naming::subscriptions::{FeedRound, FeedStream, Feeds};
use anyhow::{bail, Result};
use std::time::Duration;

pub struct SamFeeds {
    pub template: Template,
    /// How long the round's session may take to come up.
    pub timeout: Duration,
}

impl Feeds for SamFeeds {
    type Round = Session;

    async fn round(&self) -> Result<Session> {
        let t = &self.template;
        let keys = keyfile::obtain(&KeySource::Transient, &t.sam_addr, t.sig_type).await?;
        let session = identity::fixed_session("eepsocks-subscriptions", keys.into(), t, None);
        // A listener-style session fails streams at once while it is created: wait for it.
        match tokio::time::timeout(self.timeout, session.wait_until_up()).await {
            Ok(Ok(_)) => Ok(session),
            Ok(Err(e)) => bail!("no session for the subscriptions: {e}"),
            Err(_) => bail!("no session for the subscriptions within {:?}", self.timeout),
        }
    }
}

impl FeedRound for Session {
    async fn lookup(&self, name: &str) -> Result<String> {
        Ok(Session::lookup(self, name).await?.to_base64())
    }

    async fn connect(&self, dest: &str, port: u16) -> Result<(Box<dyn FeedStream>, Vec<u8>)> {
        let (s, early) = Session::connect(self, dest, port, None).await?;
        Ok((Box::new(s), early))
    }
}
