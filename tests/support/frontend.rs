//! The in-process front end: eepsocks' accept loop with a router that opens plain TCP.

use eepsocks::i2p::{OpenError, Opened, Router};
use eepsocks::naming::Target;
use eepsocks::socks::Credentials;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Opens plain TCP to one fixed address whatever the target: the front end alone, without
/// I2P (relay and hostile-client tests).
pub struct DirectRouter {
    pub addr: SocketAddr,
}

impl Router for DirectRouter {
    async fn resolve(&self, _who: Option<&Credentials>, _target: &Target) -> Result<(), OpenError> {
        Ok(())
    }

    async fn open(
        &self,
        _who: Option<&Credentials>,
        _target: &Target,
        _port: u16,
    ) -> Result<Opened, OpenError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| OpenError::Router(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Opened {
            stream,
            early: Vec::new(),
            hold: None,
        })
    }
}
