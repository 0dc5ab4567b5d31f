//! The daemon in process (`eepsocks::daemon::run`), driven by a shutdown future and a
//! stream of reloads instead of signals, against the fake SAM bridge: what the binary-level
//! tests (tests/reload.rs) cannot see from outside.

mod support;

use eepsocks::config::{Config, ConfigSource, Overrides};
use eepsocks::daemon::{self, Event};
use eepsocks::i2p::backend::Backend;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::client::socks5_connect_async;
use support::rig::{free_addrs, Rig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;

struct Running {
    reload: mpsc::UnboundedSender<()>,
    events: mpsc::UnboundedReceiver<Event>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    listen: SocketAddr,
    rig: Rig,
}

async fn start(stream_timeout: u64) -> Running {
    let rig = Rig::new();
    let [listen] = free_addrs();
    write_config(&rig, listen, stream_timeout);
    let source = ConfigSource {
        file: Some(rig.config_path()),
        overrides: Overrides {
            sam: Some(rig.fake.addr()),
            data_dir: Some(rig.data()),
            ..Overrides::default()
        },
    };
    let cfg: Config = source.load().unwrap();
    let (reload, reloads) = mpsc::unbounded_channel();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(daemon::run(
        cfg,
        source,
        Backend::Sam,
        async move {
            let _ = stopped.await;
        },
        UnboundedReceiverStream::new(reloads),
        Some(events_tx),
    ));
    match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(Event::Ready(l))) => assert_eq!(l[0].listen, listen),
        other => panic!("not ready: {other:?}"),
    }
    Running {
        reload,
        events,
        stop: Some(stop),
        done,
        listen,
        rig,
    }
}

fn write_config(rig: &Rig, listen: SocketAddr, stream_timeout: u64) {
    let body = format!(
        "stream_timeout = {stream_timeout}\ndrain_timeout = 2\nstatus_listen = \"off\"\n\
         [[proxy]]\nname = \"main\"\nlisten = \"{listen}\"\n"
    );
    rig.write_config(&body);
}

impl Running {
    /// Change the config (so the listener restarts) and reload; the number of stopped
    /// listeners still draining.
    async fn reload_with(&mut self, stream_timeout: u64) -> usize {
        write_config(&self.rig, self.listen, stream_timeout);
        self.reload.send(()).unwrap();
        match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
            Ok(Some(Event::Reloaded { result, draining })) => {
                let lines = result.expect("reload applied");
                assert_eq!(lines.len(), 1, "{lines:?}");
                draining
            }
            other => panic!("no reload event: {other:?}"),
        }
    }

    /// A stream through the proxy to the echo service, left open.
    async fn open_stream(&self) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(self.listen).await.unwrap();
        assert_eq!(
            socks5_connect_async(&mut s, &self.rig.service, 80, None)
                .await
                .unwrap(),
            0
        );
        s.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await.unwrap();
        s
    }

    async fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("daemon did not stop")
            .unwrap()
            .unwrap();
        t.elapsed()
    }
}

/// Stopped listeners are forgotten once their clients are gone: the list of draining
/// listeners does not grow by one per reload.
#[tokio::test]
async fn draining_listeners_do_not_pile_up() {
    let mut d = start(60).await;
    for t in 61..66 {
        assert_eq!(
            d.reload_with(t).await,
            0,
            "idle listeners kept after reload"
        );
    }
    // A client on the listener a reload stops keeps its stream; its listener drains.
    let mut open = d.open_stream().await;
    assert_eq!(d.reload_with(70).await, 1);
    assert_eq!(
        d.reload_with(71).await,
        1,
        "one draining listener, not one per reload"
    );
    open.write_all(b"ok").await.unwrap();
    let mut b = [0u8; 2];
    open.read_exact(&mut b).await.unwrap();
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(d.reload_with(72).await, 0);
    d.stop().await;
}

/// Shutdown waits for open streams (up to drain_timeout, 2 s here), and not longer.
#[tokio::test]
async fn shutdown_drains_then_exits() {
    let d = start(60).await;
    let open = d.open_stream().await;
    let waited = d.stop().await;
    assert!(
        waited >= Duration::from_millis(1900),
        "did not wait for the open stream: {waited:?}"
    );
    drop(open);
    let d = start(60).await;
    let open = d.open_stream().await;
    drop(open);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waited = d.stop().await;
    assert!(
        waited < Duration::from_secs(1),
        "waited with nothing open: {waited:?}"
    );
}
