//! The WIT component: translates `tonemask:plugin` types to and from `tonemask-core`.
//! No logic lives here.

#![allow(missing_docs)] // generated bindings

use core::cell::RefCell;
use tonemask_core as core_;

wit_bindgen::generate!({ world: "plugin", path: "../../wit" });

use exports::tonemask::plugin::masking::{Guest, GuestSession, Session as SessionHandle};
use exports::tonemask::plugin::types::{
    Codec, Config, DigitEvent, DigitSource, Error, MaskMode, Twist,
};

struct Plugin;

/// One call: the core session behind a `RefCell` (resource methods take `&self`).
pub struct Session(RefCell<core_::Session>);

fn config(c: Config) -> Result<core_::SessionConfig, Error> {
    let key = match c.key {
        Some(k) => {
            Some(core_::Key::new(&k.kid, &k.secret).map_err(|e| Error::BadConfig(e.to_string()))?)
        }
        None => None,
    };
    Ok(core_::SessionConfig {
        call_id: c.call_id,
        codec: match c.codec {
            Codec::Pcmu => core_::Codec::Pcmu,
            Codec::Pcma => core_::Codec::Pcma,
            Codec::L16 => core_::Codec::L16,
        },
        sample_rate: c.sample_rate,
        lookahead_ms: c.lookahead_ms,
        mask_mode: match c.mask_mode {
            MaskMode::Silence => core_::MaskMode::Silence,
            MaskMode::Tone => core_::MaskMode::Tone,
            MaskMode::Noise => core_::MaskMode::Noise,
            MaskMode::Off => core_::MaskMode::Off,
        },
        detector: core_::DetectorConfig {
            twist: match c.twist {
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
        },
        key,
    })
}

fn frame_error(e: core_::SessionError) -> Error {
    Error::BadFrame(e.to_string())
}

fn event(e: core_::Emitted) -> DigitEvent {
    DigitEvent {
        seq: e.event.seq,
        digit: e.event.digit.to_char(),
        start_ms: e.event.start_ms,
        end_ms: e.event.end_ms,
        detected_ms: e.event.detected_ms,
        source: match e.event.source {
            core_::Source::Inband => DigitSource::Inband,
            core_::Source::Rfc4733 => DigitSource::Rfc4733,
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
        let s = core_::Session::new(config(c)?).map_err(|e| Error::BadConfig(e.to_string()))?;
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
            .map_err(frame_error)?;
        Ok(out)
    }

    fn process_samples(&self, frame: Vec<i16>) -> Result<Vec<i16>, Error> {
        let mut out = Vec::with_capacity(frame.len());
        self.0
            .borrow_mut()
            .process_samples(&frame, &mut out)
            .map_err(frame_error)?;
        Ok(out)
    }

    fn drain_events(&self) -> Vec<DigitEvent> {
        let mut s = self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_event()).map(event).collect()
    }

    fn flush(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.0
            .borrow_mut()
            .flush_bytes(&mut out)
            .map_err(frame_error)?;
        Ok(out)
    }

    fn flush_samples(&self) -> Result<Vec<i16>, Error> {
        let mut out = Vec::new();
        self.0
            .borrow_mut()
            .flush_samples(&mut out)
            .map_err(frame_error)?;
        Ok(out)
    }
}

export!(Plugin);
