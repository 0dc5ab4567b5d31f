//! Reseeding: the first RouterInfos of a new router, from a local `.su3` or `.zip` file
//! or over HTTPS from the reseed servers.
//!
//! Not done: checking the su3 signature against the reseed operators' certificates (Java
//! I2P does). HTTPS (webpki roots) authenticates the server; a local file is the user's.

use anyhow::{bail, Context, Result};
use std::io::{Cursor, Read};
use std::path::Path;
use std::time::Duration;

/// The public reseed servers (the list the I2P routers ship).
pub const SERVERS: &[&str] = &[
    "reseed.i2pgit.org",
    "reseed.stormycloud.org",
    "i2p.novg.net",
    "reseed-fr.i2pd.xyz",
    "reseed-pl.i2pd.xyz",
    "reseed.diva.exchange",
    "reseed2.i2p.net",
    "reseed.memcpy.io",
    "banana.incognet.io",
    "www2.mk16.de",
    "reseed.onion.im",
    "i2pseed.creativecowpat.net",
    "cubicchaos.net",
    "reseed.sahil.world",
];

/// A reseed file is about 100 RouterInfos; anything far bigger is not one.
const MAX_BYTES: u64 = 16 << 20;
const MAX_ENTRY: u64 = 64 << 10;
const MAX_ENTRIES: usize = 2000;

/// The zip inside an su3 container (or the bytes themselves when they are a zip).
fn su3_content(b: &[u8]) -> Result<&[u8]> {
    if !b.starts_with(b"I2Psu3") {
        return Ok(b);
    }
    if b.len() < 40 {
        bail!("su3 header cut short");
    }
    let version_len = b[13] as usize;
    let signer_len = b[15] as usize;
    let content_len = u64::from_be_bytes(b[16..24].try_into()?) as usize;
    let (file_type, content_type) = (b[25], b[27]);
    if file_type != 0 {
        bail!("su3 file type {file_type}, not a zip");
    }
    if content_type != 3 {
        bail!("su3 content type {content_type}, not reseed data");
    }
    let start = 40 + version_len + signer_len;
    b.get(start..start.saturating_add(content_len))
        .context("su3 content cut short")
}

/// RouterInfo files (`routerInfo-*.dat`) from a reseed su3 or zip.
pub fn parse(b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let zip = su3_content(b)?;
    let mut z = zip::ZipArchive::new(Cursor::new(zip)).context("not a zip archive")?;
    let mut out = Vec::new();
    for i in 0..z.len().min(MAX_ENTRIES) {
        let mut f = z.by_index(i)?;
        if !f.name().ends_with(".dat") || f.size() > MAX_ENTRY {
            continue;
        }
        let mut v = Vec::new();
        (&mut f).take(MAX_ENTRY).read_to_end(&mut v)?;
        out.push(v);
    }
    if out.is_empty() {
        bail!("no RouterInfo (.dat) files in it");
    }
    Ok(out)
}

pub fn from_file(p: &Path) -> Result<Vec<Vec<u8>>> {
    let f = std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut b = Vec::new();
    f.take(MAX_BYTES + 1).read_to_end(&mut b)?;
    if b.len() as u64 > MAX_BYTES {
        bail!(
            "{}: over {} MiB, not a reseed file",
            p.display(),
            MAX_BYTES >> 20
        );
    }
    parse(&b).with_context(|| format!("{}: not a reseed file", p.display()))
}

/// GET `https://<server>/i2pseeds.su3` (blocking; run it off the async threads).
pub fn from_server(server: &str, net_id: u8) -> Result<Vec<Vec<u8>>> {
    let url = format!("https://{server}/i2pseeds.su3?netid={net_id}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        // Never let a redirect take the download off TLS.
        .https_only(true)
        .build()
        .into();
    // The reseed servers answer this user agent (the one Java I2P sends).
    let resp = agent
        .get(&url)
        .header("User-Agent", "Wget/1.11.4")
        .call()
        .with_context(|| format!("reseed from {server}"))?;
    let mut b = Vec::new();
    resp.into_body()
        .into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut b)?;
    parse(&b).with_context(|| format!("reseed from {server}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, b) in files {
            w.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn su3_of(content: &[u8], file_type: u8, content_type: u8) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[..6].copy_from_slice(b"I2Psu3");
        h[13] = 16;
        h[15] = 3;
        h[16..24].copy_from_slice(&(content.len() as u64).to_be_bytes());
        h[25] = file_type;
        h[27] = content_type;
        h.extend_from_slice(&[b'0'; 16]);
        h.extend_from_slice(b"me@");
        h.extend_from_slice(content);
        h.extend_from_slice(&[0u8; 512]); // the signature, not checked
        h
    }

    #[test]
    fn zip_and_su3() {
        let z = zip_of(&[
            ("routerInfo-a.dat", b"A"),
            ("README", b"x"),
            ("routerInfo-b.dat", b"B"),
        ]);
        assert_eq!(parse(&z).unwrap(), vec![b"A".to_vec(), b"B".to_vec()]);
        assert_eq!(parse(&su3_of(&z, 0, 3)).unwrap().len(), 2);
        let e = parse(&su3_of(&z, 1, 3)).unwrap_err().to_string();
        assert!(e.contains("not a zip"), "{e}");
        let e = parse(&su3_of(&z, 0, 1)).unwrap_err().to_string();
        assert!(e.contains("not reseed"), "{e}");
        let mut cut = su3_of(&z, 0, 3);
        cut.truncate(100);
        assert!(parse(&cut).is_err());
        assert!(parse(b"I2Psu3").is_err());
        assert!(parse(&zip_of(&[("x.txt", b"x")])).is_err());
        assert!(parse(b"garbage").is_err());
    }
}
