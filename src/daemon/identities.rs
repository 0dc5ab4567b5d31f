//! The listeners' own identities (key files, or transient keys), kept across reloads by
//! `IdentityKey`: planned without touching the running ones, then committed.

use crate::i2p::identity::{self, Template};
use crate::i2p::keyfile;
use crate::i2p::sam::{Keys, Session};
use anyhow::Result;
use std::path::PathBuf;
use tracing::info;

/// What an identity is keyed by across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum IdentityKey {
    /// A key file; listeners naming the same file share the identity.
    File(PathBuf),
    /// Transient keys of one listener, kept while the listener exists.
    Transient(String),
}

/// A listener's own identity: the session that carries it (and knows its keys, once the
/// router made them for a new identity).
#[derive(Clone)]
pub(super) struct Identity {
    /// Where new keys are saved (None: transient).
    pub(super) save: Option<PathBuf>,
    pub(super) template: Template,
    pub(super) session: Session,
}

/// Where a planned fixed identity comes from.
pub(super) enum IdentityPlan {
    Keep(Identity),
    /// Same keys, new tunnel options: a new session once the old one is closed.
    Replace(Identity, Template),
    New(Keys, Template),
}

/// Where the identity `key` comes from under `template`: `running` (the one that runs
/// under this key now) as it is or with new options, else keys from the file or the router.
pub(super) fn plan_identity(
    key: &IdentityKey,
    template: &Template,
    running: Option<&Identity>,
) -> Result<IdentityPlan> {
    if let Some(id) = running {
        return Ok(if id.template == *template {
            IdentityPlan::Keep(id.clone())
        } else {
            IdentityPlan::Replace(id.clone(), template.clone())
        });
    }
    // New keys are the session's to ask the router for, under its deadlines: a router
    // that does not answer must not keep the listener from opening.
    let fresh = |save: Option<PathBuf>| Keys::New {
        sig_type: template.sig_type,
        save,
    };
    let keys = match key {
        IdentityKey::File(p) => match keyfile::load(p)? {
            Some(k) => {
                info!("identity loaded from {}", p.display());
                Keys::Ready(k)
            }
            None => fresh(Some(p.clone())),
        },
        IdentityKey::Transient(_) => fresh(None),
    };
    Ok(IdentityPlan::New(keys, template.clone()))
}

/// The identity `p` plans, its session started if it needs a new one.
pub(super) fn commit_identity(key: &IdentityKey, p: IdentityPlan) -> Identity {
    let save = match key {
        IdentityKey::File(p) => Some(p.clone()),
        IdentityKey::Transient(_) => None,
    };
    match p {
        IdentityPlan::Keep(id) => id,
        IdentityPlan::Replace(old, template) => {
            // Keys the old session never got from the router are asked for again.
            let keys = match old.session.keys() {
                Some(k) => Keys::Ready(k.clone()),
                None => Keys::New {
                    sig_type: template.sig_type,
                    save: old.save.clone(),
                },
            };
            info!(
                "identity {}: new tunnel options; its session is recreated (streams on the old \
                 one end: routers refuse two sessions with the same keys)",
                old.session
                    .keys()
                    .map(|k| k.destination().b32())
                    .unwrap_or_else(|| PENDING.into())
            );
            let session = identity::fixed_session(
                &session_name(key),
                keys,
                &template,
                Some(old.session.clone()),
            );
            Identity {
                save,
                template,
                session,
            }
        }
        IdentityPlan::New(keys, template) => {
            let session = identity::fixed_session(&session_name(key), keys, &template, None);
            Identity {
                save,
                template,
                session,
            }
        }
    }
}

/// What a listener's identity is called before the router has made its keys.
pub(super) const PENDING: &str = "(new identity: keys not made yet)";

fn session_name(key: &IdentityKey) -> String {
    match key {
        IdentityKey::File(p) => p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("eepsocks")
            .to_string(),
        IdentityKey::Transient(l) => l.clone(),
    }
}
