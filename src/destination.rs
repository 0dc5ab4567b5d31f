//! I2P data formats the proxy needs: the I2P base64 alphabet, b32 addresses, and the
//! binary destination / private-key layout shared by i2pd (`PrivateKeys`) and Java I2P
//! (`PrivateKeyFile`): Destination, encryption private key, signing private key, and an
//! optional offline-signature block.

use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

/// I2P's base64: standard, with `-` for `+` and `~` for `/`.
fn engine() -> GeneralPurpose {
    // The alphabet is a valid constant; `expect` cannot fire.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")
            .expect("valid I2P base64 alphabet");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

pub fn base64_encode(b: &[u8]) -> String {
    engine().encode(b)
}

pub fn base64_decode(s: &str) -> Result<Vec<u8>, FormatError> {
    engine().decode(s.trim()).map_err(|_| FormatError::Base64)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not valid I2P base64")]
    Base64,
    #[error("too short: {have} bytes, need at least {need}")]
    Truncated { have: usize, need: usize },
    #[error("unsupported certificate type {0}")]
    Certificate(u8),
    #[error("unsupported signature type {0}")]
    SigType(u16),
    #[error("unsupported encryption type {0}")]
    CryptoType(u16),
    #[error("{0} unexpected bytes after the keys")]
    Trailing(usize),
}

/// Lengths (public key, private key, signature) for the signature types in use.
fn sig_lengths(t: u16) -> Option<(usize, usize, usize)> {
    Some(match t {
        0 => (128, 20, 40),         // DSA-SHA1
        1 => (64, 32, 64),          // ECDSA-SHA256-P256
        2 => (96, 48, 96),          // ECDSA-SHA384-P384
        3 => (132, 66, 132),        // ECDSA-SHA512-P521
        4 => (256, 512, 256),       // RSA-2048
        5 => (384, 768, 384),       // RSA-3072
        6 => (512, 1024, 512),      // RSA-4096
        7 | 8 | 11 => (32, 32, 64), // EdDSA, EdDSA-ph, RedDSA
        12 => (1312, 2560, 2420),   // ML-DSA-44
        13 => (1952, 4032, 3309),   // ML-DSA-65
        14 => (2592, 4896, 4627),   // ML-DSA-87
        _ => return None,
    })
}

/// Private-key length for identity encryption types.
fn crypto_private_len(t: u16) -> Option<usize> {
    Some(match t {
        0 => 256, // ElGamal
        1 => 32,  // ECIES-P256
        2 => 48,
        3 => 66,
        4 => 32, // ECIES-X25519
        _ => return None,
    })
}

const KEYS_AREA: usize = 384; // 256 encryption + 128 signing, padded
const CERT_HEADER: usize = 3;

/// A public destination (its exact bytes) with the types read from its certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    bytes: Vec<u8>,
    pub sig_type: u16,
    pub crypto_type: u16,
}

impl Destination {
    /// Parse the destination at the start of `b`; returns it and the bytes it used.
    pub fn parse_prefix(b: &[u8]) -> Result<(Destination, usize), FormatError> {
        let need = KEYS_AREA + CERT_HEADER;
        if b.len() < need {
            return Err(FormatError::Truncated {
                have: b.len(),
                need,
            });
        }
        let cert_type = b[KEYS_AREA];
        let cert_len = u16::from_be_bytes([b[KEYS_AREA + 1], b[KEYS_AREA + 2]]) as usize;
        let len = need + cert_len;
        if b.len() < len {
            return Err(FormatError::Truncated {
                have: b.len(),
                need: len,
            });
        }
        let (sig_type, crypto_type) = match cert_type {
            0 => (0, 0),
            5 if cert_len >= 4 => {
                let p = &b[need..];
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                )
            }
            other => return Err(FormatError::Certificate(other)),
        };
        sig_lengths(sig_type).ok_or(FormatError::SigType(sig_type))?;
        crypto_private_len(crypto_type).ok_or(FormatError::CryptoType(crypto_type))?;
        Ok((
            Destination {
                bytes: b[..len].to_vec(),
                sig_type,
                crypto_type,
            },
            len,
        ))
    }

    pub fn from_base64(s: &str) -> Result<Destination, FormatError> {
        let raw = base64_decode(s)?;
        let (d, used) = Destination::parse_prefix(&raw)?;
        if used != raw.len() {
            return Err(FormatError::Trailing(raw.len() - used));
        }
        Ok(d)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_base64(&self) -> String {
        base64_encode(&self.bytes)
    }

    /// `<52 chars>.b32.i2p`: base32 of the SHA-256 of the destination.
    pub fn b32(&self) -> String {
        b32_of_hash(&Sha256::digest(&self.bytes))
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.b32())
    }
}

pub fn b32_of_hash(hash: &[u8]) -> String {
    let mut s = data_encoding::BASE32_NOPAD.encode(hash);
    s.make_ascii_lowercase();
    s + ".b32.i2p"
}

/// A destination with its private keys, in the i2pd / Java I2P key-file layout.
/// Debug output shows only the b32 address: private keys are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeys {
    raw: Vec<u8>,
    dest: Destination,
}

impl PrivateKeys {
    pub fn from_bytes(raw: Vec<u8>) -> Result<PrivateKeys, FormatError> {
        let (dest, mut off) = Destination::parse_prefix(&raw)?;
        let (_, sig_priv, sig_len) =
            sig_lengths(dest.sig_type).ok_or(FormatError::SigType(dest.sig_type))?;
        let enc_priv = crypto_private_len(dest.crypto_type)
            .ok_or(FormatError::CryptoType(dest.crypto_type))?;
        let need = off + enc_priv + sig_priv;
        if raw.len() < need {
            return Err(FormatError::Truncated {
                have: raw.len(),
                need,
            });
        }
        off = need;
        let signing_key = &raw[need - sig_priv..need];
        if off < raw.len() && signing_key.iter().all(|&b| b == 0) {
            // Offline-signed destination: expires(4) type(2) transient public key,
            // signature by the destination key, transient private key.
            let head = off + 6;
            if raw.len() < head {
                return Err(FormatError::Truncated {
                    have: raw.len(),
                    need: head,
                });
            }
            let t = u16::from_be_bytes([raw[off + 4], raw[off + 5]]);
            let (tpub, tpriv, _) = sig_lengths(t).ok_or(FormatError::SigType(t))?;
            let need = head + tpub + sig_len + tpriv;
            if raw.len() < need {
                return Err(FormatError::Truncated {
                    have: raw.len(),
                    need,
                });
            }
            off = need;
        }
        if off != raw.len() {
            return Err(FormatError::Trailing(raw.len() - off));
        }
        Ok(PrivateKeys { raw, dest })
    }

    pub fn from_base64(s: &str) -> Result<PrivateKeys, FormatError> {
        PrivateKeys::from_bytes(base64_decode(s)?)
    }

    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The form SAM takes in `SESSION CREATE DESTINATION=`.
    pub fn to_base64(&self) -> String {
        base64_encode(&self.raw)
    }
}

impl fmt::Debug for PrivateKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKeys({}, private part hidden)", self.dest.b32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic EdDSA / ElGamal key blob in the on-disk layout.
    pub(crate) fn sample_keys(fill: u8) -> Vec<u8> {
        let mut v = vec![fill; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 0]); // KEY cert: sig 7, crypto 0
        v.extend(std::iter::repeat_n(fill ^ 0x55, 256)); // ElGamal private
        v.extend(std::iter::repeat_n(fill ^ 0xAA, 32)); // Ed25519 private
        v
    }

    #[test]
    fn base64_alphabet_round_trip() {
        let b = [0xfbu8, 0xff, 0xbf, 0x00];
        let s = base64_encode(&b);
        assert_eq!(s, "-~-~AA==");
        assert_eq!(base64_decode(&s).unwrap(), b);
        assert_eq!(base64_decode("-~-~AA").unwrap(), b);
        assert!(base64_decode("+/+/AA==").is_err());
    }

    #[test]
    fn keys_parse_and_b32() {
        let raw = sample_keys(1);
        let k = PrivateKeys::from_bytes(raw.clone()).unwrap();
        assert_eq!(k.destination().bytes().len(), 391);
        assert_eq!(k.destination().sig_type, 7);
        let b32 = k.destination().b32();
        assert_eq!(b32.len(), 52 + 8);
        assert_eq!(b32, b32_of_hash(&Sha256::digest(&raw[..391])));
        assert!(b32
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'));
        assert_eq!(PrivateKeys::from_base64(&k.to_base64()).unwrap(), k);
        let d = Destination::from_base64(&k.destination().to_base64()).unwrap();
        assert_eq!(&d, k.destination());
        assert!(!format!("{k:?}").contains(&k.to_base64()[..20]));
    }

    #[test]
    fn keys_errors() {
        let raw = sample_keys(2);
        for cut in [0, 100, 386, 390, 391, 600, raw.len() - 1] {
            assert!(
                matches!(
                    PrivateKeys::from_bytes(raw[..cut].to_vec()),
                    Err(FormatError::Truncated { .. })
                ),
                "cut {cut}"
            );
        }
        let mut long = raw.clone();
        long.push(0);
        assert_eq!(PrivateKeys::from_bytes(long), Err(FormatError::Trailing(1)));
        let mut bad = raw.clone();
        bad[384] = 3;
        assert_eq!(
            PrivateKeys::from_bytes(bad),
            Err(FormatError::Certificate(3))
        );
        let mut bad = raw;
        bad[388] = 99;
        assert_eq!(PrivateKeys::from_bytes(bad), Err(FormatError::SigType(99)));
    }

    #[test]
    fn null_certificate_is_dsa_elgamal() {
        let mut v = vec![9u8; 384];
        v.extend_from_slice(&[0, 0, 0]);
        v.extend(std::iter::repeat_n(1, 256 + 20));
        let k = PrivateKeys::from_bytes(v).unwrap();
        assert_eq!(k.destination().sig_type, 0);
        assert_eq!(k.destination().bytes().len(), 387);
    }

    #[test]
    fn offline_signature_block() {
        let mut v = vec![3u8; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]); // crypto X25519
        v.extend(std::iter::repeat_n(1, 32)); // X25519 private
        v.extend(std::iter::repeat_n(0, 32)); // zero signing key => offline
        v.extend_from_slice(&[0, 0, 0, 1, 0, 7]);
        v.extend(std::iter::repeat_n(7, 32 + 64 + 32));
        let k = PrivateKeys::from_bytes(v.clone()).unwrap();
        assert_eq!(k.destination().crypto_type, 4);
        v.pop();
        assert!(PrivateKeys::from_bytes(v).is_err());
    }
}
