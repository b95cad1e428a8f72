//! The hand-off: a completed card sealed to the payment processor's public key with HPKE
//! (RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305). The
//! associated data binds the record to its call, capture and processor key, so a sealed card
//! moved to another call or capture does not open. The plugin has no entropy of its own: the
//! host passes 32 random bytes for each seal (never derived from time).

use super::CardData;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

/// The HPKE `info` of every tonemask card record (domain separation).
pub const INFO: &[u8] = b"tonemask card v1";

/// What a sealed record is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The call the card was captured in.
    pub call_id: String,
    /// The capture within the call.
    pub capture_id: String,
    /// The processor key's id.
    pub kid: String,
}

impl Binding {
    /// The associated data: the three ids, each on its own line.
    #[must_use]
    pub fn aad(&self) -> Vec<u8> {
        alloc::format!("{}\n{}\n{}", self.call_id, self.capture_id, self.kid).into_bytes()
    }
}

/// A sealed card: the encapsulated key and the ciphertext (the plaintext is the card as
/// `PAN;MMYY;CODE;FIELD;…`, empty parts for fields not asked).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The sender's encapsulated key (32 bytes).
    pub enc: Vec<u8>,
    /// The card, encrypted and authenticated.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("enc_len", &self.enc.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Why a card could not be sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// The processor's public key is not an X25519 key (32 bytes).
    BadPublicKey,
    /// The private key is not an X25519 key (32 bytes).
    BadPrivateKey,
    /// The encapsulated key is malformed.
    BadEnc,
    /// HPKE refused: for opening, a wrong key, a wrong binding or a tampered record.
    Crypto,
    /// The opened plaintext is not a card record.
    BadPlaintext,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::BadPublicKey => "the processor key is not a 32-byte X25519 public key",
            SealError::BadPrivateKey => "the private key is not a 32-byte X25519 key",
            SealError::BadEnc => "the sealed record's encapsulated key is malformed",
            SealError::Crypto => {
                "the sealed record does not open: wrong key, wrong call/capture/key id, or tampered"
            }
            SealError::BadPlaintext => "the opened record is not a card",
        })
    }
}

/// A random stream from the host's 32 bytes (HMAC-SHA256 in counter mode): what HPKE draws
/// its ephemeral key from.
struct HostEntropy {
    key: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl hpke::rand_core::RngCore for HostEntropy {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use hmac::{Hmac, Mac};
        for chunk in dest.chunks_mut(32) {
            let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key[..])
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(&self.counter.to_be_bytes());
            self.counter += 1;
            let block = mac.finalize().into_bytes();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

impl hpke::rand_core::CryptoRng for HostEntropy {}

/// The plaintext of `card`: `PAN;MMYY;CODE;FIELD…`.
fn plaintext(card: &CardData) -> Zeroizing<Vec<u8>> {
    let mut p = Zeroizing::new(Vec::with_capacity(64));
    p.extend_from_slice(&card.pan);
    p.push(b';');
    if let Some(e) = &card.expiry {
        p.extend_from_slice(e);
    }
    p.push(b';');
    if let Some(c) = &card.security_code {
        p.extend_from_slice(c);
    }
    for f in &card.other {
        p.push(b';');
        p.extend_from_slice(f);
    }
    p
}

/// Seals `card` to the processor's X25519 public key `processor_pk`, bound to `binding`,
/// with the host's 32 random bytes `entropy`.
pub fn seal(
    card: &CardData,
    processor_pk: &[u8],
    binding: &Binding,
    entropy: [u8; 32],
) -> Result<Sealed, SealError> {
    seal_bytes(&plaintext(card), processor_pk, binding, entropy)
}

/// Seals any `plaintext` (a single digit, for sealed digit records) the same way.
pub fn seal_bytes(
    plaintext: &[u8],
    processor_pk: &[u8],
    binding: &Binding,
    entropy: [u8; 32],
) -> Result<Sealed, SealError> {
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(processor_pk)
        .map_err(|_| SealError::BadPublicKey)?;
    let mut rng = HostEntropy {
        key: Zeroizing::new(entropy),
        counter: 0,
    };
    let (enc, ciphertext) =
        hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &pk,
            INFO,
            plaintext,
            &binding.aad(),
            &mut rng,
        )
        .map_err(|_| SealError::Crypto)?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// The processor's side: opens `sealed` with the X25519 private key `sk`, checking the
/// binding; the plaintext `PAN;MMYY;CODE;…` (test cards only, in this repository's tools).
pub fn open(
    sealed: &Sealed,
    sk: &[u8],
    binding: &Binding,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let plain = open_bytes(sealed, sk, binding)?;
    if !plain.iter().all(|b| b.is_ascii_digit() || *b == b';') || plain.first() == Some(&b';') {
        return Err(SealError::BadPlaintext);
    }
    Ok(plain)
}

/// Opens any sealed plaintext (see [`seal_bytes`]), checking the binding only.
pub fn open_bytes(
    sealed: &Sealed,
    sk: &[u8],
    binding: &Binding,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(sk)
        .map_err(|_| SealError::BadPrivateKey)?;
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
        .map_err(|_| SealError::BadEnc)?;
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        INFO,
        &sealed.ciphertext,
        &binding.aad(),
    )
    .map_err(|_| SealError::Crypto)?;
    Ok(Zeroizing::new(plain))
}

/// A processor key pair from 32 random bytes (for `keygen` and tests): (private, public).
#[must_use]
pub fn keypair(ikm: &[u8; 32]) -> (Zeroizing<Vec<u8>>, [u8; 32]) {
    let (sk, pk) = X25519HkdfSha256::derive_keypair(ikm);
    let mut public = [0u8; 32];
    public.copy_from_slice(&pk.to_bytes());
    (Zeroizing::new(sk.to_bytes().to_vec()), public)
}
