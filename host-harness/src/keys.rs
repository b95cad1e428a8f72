//! Key files: where signing keys come from (configuration, never code).
//!
//! A key file holds one key per line, `KID HEX` (at least 64 hex digits = 32 bytes); blank
//! lines and `#` comments are ignored. The first key signs; every key verifies, so a file
//! with the new key first and the previous one after it supports rotation. Key bytes are
//! wiped from memory when dropped and never printed.

use anyhow::{bail, Context, Result};
use std::path::Path;
use tonemask_core::Key;
use zeroize::Zeroizing;

/// Keys from a key file, first = signing key.
pub struct KeyRing {
    /// Every key, validated by the core's rules; the first signs.
    keys: Vec<Key>,
    /// The signing key's bytes, for the plugin's configuration.
    signing: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(Key::kid).collect();
        write!(f, "KeyRing {{ kids: {kids:?}, secrets: REDACTED }}")
    }
}

impl KeyRing {
    /// Reads and validates a key file; one that group or others can read is refused.
    pub fn load(path: &Path) -> Result<KeyRing> {
        crate::files::check_private(path, "key file")?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read key file {}", path.display()))?,
        );
        Self::parse(&text).with_context(|| format!("key file {}", path.display()))
    }

    /// Parses key-file text.
    pub fn parse(text: &str) -> Result<KeyRing> {
        let mut keys = Vec::new();
        let mut signing = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(kid), Some(hex_key), None) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("line {}: expected `KEY-ID HEX-KEY`", n + 1);
            };
            let bytes = Zeroizing::new(
                hex::decode(hex_key)
                    .map_err(|_| anyhow::anyhow!("line {}: the key is not valid hex", n + 1))?,
            );
            // Validate with the core's rules (length ≥ 32 bytes, key-id characters).
            keys.push(Key::new(kid, &bytes).map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?);
            signing.get_or_insert(bytes);
        }
        let Some(signing) = signing else {
            bail!("no key found (expected lines of `KEY-ID HEX-KEY`)");
        };
        Ok(KeyRing { keys, signing })
    }

    /// A fresh random key (for self-checks such as `replay`; never written anywhere).
    pub fn ephemeral() -> Result<KeyRing> {
        // Filled in place: no copy of a key is left behind.
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("no OS randomness for an ephemeral key: {e}"))?;
        Ok(KeyRing {
            keys: vec![Key::new("ephemeral", &bytes).map_err(|e| anyhow::anyhow!("{e}"))?],
            signing: bytes,
        })
    }

    /// The signing key's id and bytes.
    #[must_use]
    pub fn signing(&self) -> (&str, &[u8]) {
        (self.keys[0].kid(), &self.signing)
    }

    /// The signing key as the plugin's configuration takes it, with a fresh random session
    /// nonce: call it once per session.
    pub fn plugin_key(&self) -> Result<crate::plugin::SigningKey> {
        let (kid, secret) = self.signing();
        Ok(crate::plugin::SigningKey {
            kid: kid.to_string(),
            secret: secret.to_vec(),
            session: random_bytes::<16>("a session nonce")?.to_vec(),
        })
    }

    /// All keys as core keys, for a verifier.
    #[must_use]
    pub fn verifying(&self) -> Vec<Key> {
        self.keys.clone()
    }
}

/// `N` bytes from the operating system's random source, for values that are not secret
/// (nonces, names); `what` names their use in the error. Keys are filled in place instead.
pub fn random_bytes<const N: usize>(what: &str) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness for {what}: {e}"))?;
    Ok(b)
}

/// Text of a new key file with one random 32-byte key.
pub fn generate(kid: &str) -> Result<Zeroizing<String>> {
    // Filled in place: no copy of the key is left behind.
    let mut bytes = Zeroizing::new(vec![0u8; 32]);
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    Key::new(kid, &bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Zeroizing::new(format!(
        "# tonemask key file: KEY-ID HEX-KEY; first line signs, all verify\n{kid} {}\n",
        hex::encode(&*bytes)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_keys_and_bad_lines() {
        let short = format!("k1 {}", "ab".repeat(16));
        assert!(format!("{:#}", KeyRing::parse(&short).unwrap_err()).contains("at least 32 bytes"));
        assert!(KeyRing::parse("k1").is_err());
        assert!(KeyRing::parse("k1 zz").is_err());
        assert!(KeyRing::parse("# only a comment\n").is_err());
    }

    #[test]
    fn first_key_signs_all_verify() {
        let text = format!("new {}\nold {}\n", "11".repeat(32), "22".repeat(32));
        let ring = KeyRing::parse(&text).unwrap();
        assert_eq!(ring.signing().0, "new");
        assert_eq!(ring.verifying().len(), 2);
        assert!(!format!("{ring:?}").contains("1111"));
    }
}
