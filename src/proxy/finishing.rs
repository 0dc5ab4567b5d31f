//! Streams that only finish a reply for a client that sent its FIN. A SAM stream cannot carry
//! that FIN (i2pd and emissary end the whole stream on it), so the reply is relayed until the
//! server closes or goes quiet (`relay::HALF_CLOSED_IDLE`). A client that closed for good
//! looks the same, and a server that never closes (an echo, a keep-alive) would so hold the
//! client's slot for the whole idle spell: with 512 slots, ~17 such streams a second would
//! lock the listener out. So a finishing stream gives its slot up to a new client: when
//! every slot is taken, the oldest finishing stream is closed first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Finishing {
    next: AtomicU64,
    /// By age (a sequence number): the close signal of each finishing stream.
    streams: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

impl Finishing {
    /// Streams finishing now.
    pub fn count(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Adds a stream that kept its client's FIN; `close` is signalled if it is evicted.
    /// The entry lives until the returned key is passed to `remove`.
    pub fn add(&self, close: Arc<Notify>) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, close);
        key
    }

    pub fn remove(&self, key: u64) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Signals the oldest finishing stream to close (it frees its slot as its task ends).
    /// False when none is finishing.
    pub fn evict_oldest(&self) -> bool {
        let oldest = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_first();
        match oldest {
            Some((_, close)) => {
                // notify_one keeps the signal if the stream is not waiting on it yet.
                close.notify_one();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_is_evicted_first_and_removed_ones_never() {
        let f = Finishing::default();
        let (a, b, c) = (
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
            Arc::new(Notify::new()),
        );
        let ka = f.add(a.clone());
        let _kb = f.add(b.clone());
        let _kc = f.add(c.clone());
        f.remove(ka);
        assert_eq!(f.count(), 2);
        assert!(f.evict_oldest());
        // b got the signal (stored: nobody waited yet), c did not.
        tokio::time::timeout(std::time::Duration::from_millis(100), b.notified())
            .await
            .expect("b evicted");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), c.notified())
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), a.notified())
                .await
                .is_err()
        );
        assert_eq!(f.count(), 1);
        assert!(f.evict_oldest());
        assert!(!f.evict_oldest());
    }
}
