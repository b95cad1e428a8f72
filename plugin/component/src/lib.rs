//! The WIT component: translates `tonemask:plugin` types to and from `tonemask-core`.
//! No logic lives here.

#![allow(missing_docs)] // generated bindings

use core::cell::RefCell;
use tonemask_core as core_;

// The full plugin (feature `rtp`, the default), or audio frames only (`--no-default-features`:
// world `audio`, for hosts that feed decoded audio).
#[cfg(feature = "rtp")]
wit_bindgen::generate!({ world: "plugin", path: "../../wit" });
#[cfg(not(feature = "rtp"))]
wit_bindgen::generate!({ world: "audio", path: "../../wit" });

mod capture;
#[cfg(feature = "rtp")]
mod rtp;

use exports::tonemask::plugin::masking::{Guest, GuestSession, Session as SessionHandle};
use exports::tonemask::plugin::types::{
    CallSettings, CaptureEvent, CaptureField, CaptureRequest, CaptureStatus, Codec, Config,
    DigitEvent, DigitSource, Error, MaskMode, Twist,
};

pub(crate) struct Plugin;

std::thread_local! {
    /// The detector's coefficient tables, computed once per plugin instance and shared by all
    /// its sessions.
    static TABLES: std::sync::Arc<core_::Tables> = std::sync::Arc::new(core_::Tables::new());
}

/// This instance's shared detector tables.
pub(crate) fn tables() -> std::sync::Arc<core_::Tables> {
    TABLES.with(std::sync::Arc::clone)
}

/// One call: the core session behind a `RefCell` (resource methods take `&self`).
pub struct Session(RefCell<core_::Session>);

pub(crate) fn signer(
    k: Option<exports::tonemask::plugin::types::SigningKey>,
) -> Result<Option<core_::Signer>, Error> {
    let bad = |e: core_::ConfigError| Error::BadConfig(e.to_string());
    k.map(|k| {
        let nonce: [u8; 16] = k
            .session
            .as_slice()
            .try_into()
            .map_err(|_| Error::BadConfig(String::from("session nonce must be 16 bytes")))?;
        core_::Signer::new(core_::Key::new(&k.kid, &k.secret).map_err(bad)?, nonce).map_err(bad)
    })
    .transpose()
}

pub(crate) fn codec(c: Codec) -> core_::Codec {
    match c {
        Codec::Pcmu => core_::Codec::Pcmu,
        Codec::Pcma => core_::Codec::Pcma,
        Codec::L16 => core_::Codec::L16,
    }
}

pub(crate) fn mask_mode(m: MaskMode) -> core_::MaskMode {
    match m {
        MaskMode::Silence => core_::MaskMode::Silence,
        MaskMode::Tone => core_::MaskMode::Tone,
        MaskMode::Noise => core_::MaskMode::Noise,
        MaskMode::Off => core_::MaskMode::Off,
    }
}

pub(crate) fn detector(t: Twist) -> core_::DetectorConfig {
    core_::DetectorConfig {
        twist: match t {
            Twist::Att => core_::Twist::ATT,
            Twist::Etsi => core_::Twist::ETSI,
            Twist::Ntt => core_::Twist::NTT,
            Twist::Australia => core_::Twist::AUSTRALIA,
            Twist::Brazil => core_::Twist::BRAZIL,
            Twist::Custom(l) => core_::Twist {
                normal_db: l.normal_db,
                reverse_db: l.reverse_db,
            },
        },
    }
}

pub(crate) fn settings(s: CallSettings) -> Result<core_::CallSettings, Error> {
    Ok(core_::CallSettings {
        call_id: s.call_id,
        lookahead: core_::Lookahead::from_ms(s.lookahead_ms),
        mask_mode: mask_mode(s.mask_mode),
        detector: detector(s.twist),
        signer: signer(s.key)?,
        digits: capture::visibility(s.digits)?,
    })
}

fn config(c: Config) -> Result<core_::SessionConfig, Error> {
    Ok(core_::SessionConfig {
        settings: settings(c.settings)?,
        codec: codec(c.codec),
        sample_rate: c.sample_rate,
        output: if c.aligned {
            core_::Output::Aligned
        } else {
            core_::Output::Stream
        },
    })
}

/// The core's error as the WIT error of the same family.
pub(crate) fn error(e: core_::Error) -> Error {
    // Per family, so that no other family's messages are linked into the plugin.
    match e {
        core_::Error::Config(e) => Error::BadConfig(e.to_string()),
        core_::Error::Frame(e) => Error::BadFrame(e.to_string()),
        core_::Error::Packet(e) => Error::BadPacket(e.to_string()),
        core_::Error::Misuse(e) => Error::Misuse(e.to_string()),
        _ => Error::BadFrame(String::from("unexpected error")),
    }
}

pub(crate) fn event(e: core_::Emitted) -> DigitEvent {
    DigitEvent {
        seq: e.event.seq,
        digit: e.digit_visible.then(|| e.event.digit.to_char()),
        start_ms: e.event.start_ms,
        end_ms: e.event.end_ms,
        detected_ms: e.event.detected_ms,
        source: match e.event.source {
            core_::Source::Inband => DigitSource::Inband,
            core_::Source::Rfc4733 => DigitSource::Rfc4733,
            core_::Source::Both => DigitSource::Both,
        },
        signed: e.line,
        leaked_samples: e.leaked_samples,
    }
}

impl Guest for Plugin {
    type Session = Session;
}

impl GuestSession for Session {
    fn create(c: Config) -> Result<SessionHandle, Error> {
        let s = core_::Session::with_tables(config(c)?, tables())
            .map_err(|e| Error::BadConfig(e.to_string()))?;
        Ok(SessionHandle::new(Session(RefCell::new(s))))
    }

    fn delay_samples(&self) -> u32 {
        self.0.borrow().delay_samples() as u32
    }

    fn process(&self, frame: Vec<u8>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(frame.len());
        self.0
            .borrow_mut()
            .process_bytes(&frame, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn process_samples(&self, frame: Vec<i16>) -> Result<Vec<i16>, Error> {
        let mut out = Vec::with_capacity(frame.len());
        self.0
            .borrow_mut()
            .process_samples(&frame, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn detect(&self, frame: Vec<u8>) -> Result<(), Error> {
        self.0.borrow_mut().detect_bytes(&frame).map_err(error)
    }

    fn detect_samples(&self, frame: Vec<i16>) -> Result<(), Error> {
        self.0.borrow_mut().detect_samples(&frame).map_err(error)
    }

    fn process_at(&self, now_ms: u64, frame: Vec<u8>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(frame.len());
        self.0
            .borrow_mut()
            .process_bytes_at(now_ms, &frame, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn process_samples_at(&self, now_ms: u64, frame: Vec<i16>) -> Result<Vec<i16>, Error> {
        let mut out = Vec::with_capacity(frame.len());
        self.0
            .borrow_mut()
            .process_samples_at(now_ms, &frame, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn handle_timeout(&self, now_ms: u64) -> Result<(), Error> {
        self.0.borrow_mut().handle_timeout(now_ms).map_err(error)
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.0.borrow().poll_timeout()
    }

    fn drain_events(&self) -> Vec<DigitEvent> {
        let mut s = self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_event()).map(event).collect()
    }

    fn start_capture(&self, request: CaptureRequest) -> Result<(), Error> {
        capture::start(self.0.borrow_mut().capture(), request)
    }

    fn cancel_capture(&self) -> bool {
        self.0.borrow_mut().capture().cancel()
    }

    fn rerequest_field(&self, field: CaptureField) -> bool {
        self.0
            .borrow_mut()
            .capture()
            .rerequest(capture::field(field))
    }

    fn note_agent_key(&self) -> bool {
        self.0.borrow_mut().capture().agent_key()
    }

    fn status_of_capture(&self) -> Option<CaptureStatus> {
        self.0.borrow_mut().capture().status().map(capture::status)
    }

    fn drain_captures(&self) -> Vec<CaptureEvent> {
        let mut s = self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_capture())
            .map(capture::event)
            .collect()
    }

    fn flush(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.0.borrow_mut().flush_bytes(&mut out).map_err(error)?;
        Ok(out)
    }

    fn flush_samples(&self) -> Result<Vec<i16>, Error> {
        let mut out = Vec::new();
        self.0.borrow_mut().flush_samples(&mut out).map_err(error)?;
        Ok(out)
    }

    fn start_record(&self) -> Option<String> {
        self.0.borrow().start_record().map(String::from)
    }

    fn end_record(&self) -> Option<String> {
        self.0.borrow().end_record().map(String::from)
    }
}

export!(Plugin);

/// The plugin has no entropy source: what needs randomness (HPKE's ephemeral key) gets the
/// host's bytes through the interface. Anything asking the operating system fails instead of
/// pretending.
fn no_os_entropy(_: &mut [u8]) -> Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}

getrandom::register_custom_getrandom!(no_os_entropy);
