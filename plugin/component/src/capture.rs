//! Card-capture types: WIT to core and back. No logic lives here.

use crate::exports::tonemask::plugin::types::{
    CaptureEvent, CaptureField, CaptureRequest, CaptureStatus, CaptureValue, DigitVisibility,
    Error, NumericField,
};
use tonemask_core as core_;
use tonemask_core::card;

/// The core field for a WIT field.
pub(crate) fn field(f: CaptureField) -> card::Field {
    match f {
        CaptureField::CardNumber => card::Field::CardNumber,
        CaptureField::Expiry => card::Field::Expiry,
        CaptureField::SecurityCode => card::Field::SecurityCode,
        CaptureField::Numeric(n) => card::Field::Numeric {
            min: n.min,
            max: n.max,
        },
    }
}

/// The WIT status for the core's.
pub(crate) fn status((id, s): (String, card::Status)) -> CaptureStatus {
    let field = match s.field {
        card::Field::CardNumber => CaptureField::CardNumber,
        card::Field::Expiry => CaptureField::Expiry,
        card::Field::SecurityCode => CaptureField::SecurityCode,
        card::Field::Numeric { min, max } => CaptureField::Numeric(NumericField { min, max }),
    };
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    CaptureStatus {
        id,
        field,
        field_index: n(s.index),
        fields: n(s.fields),
        attempt: s.attempt,
        count: n(s.count),
        brand: s.brand.map(|b| b.name().into()),
    }
}

/// 32 bytes, or an error naming `what`.
fn bytes32(v: Vec<u8>, what: &str) -> Result<[u8; 32], Error> {
    v.as_slice()
        .try_into()
        .map_err(|_| Error::BadConfig(format!("{what} must be 32 bytes")))
}

/// The core's digit visibility for the WIT one (the core validates it).
pub(crate) fn visibility(v: DigitVisibility) -> Result<core_::DigitVisibility, Error> {
    Ok(match v {
        DigitVisibility::Clear => core_::DigitVisibility::Clear,
        DigitVisibility::Hidden => core_::DigitVisibility::Hidden,
        DigitVisibility::Sealed(s) => core_::DigitVisibility::Sealed {
            processor: card::ProcessorKey {
                kid: s.processor_kid,
                public: bytes32(s.processor_key, "digit seal processor-key")?,
            },
            entropy: card::Zeroizing::new(bytes32(s.entropy, "digit seal entropy")?),
        },
    })
}

/// The core request for a WIT request (the core validates it).
fn request(r: CaptureRequest) -> Result<card::CaptureRequest, Error> {
    let bytes = bytes32;
    Ok(card::CaptureRequest {
        id: r.id,
        config: card::CaptureConfig {
            fields: r.fields.into_iter().map(field).collect(),
            end_key: r.end_key,
            clear_key: r.clear_key,
            field_timeout_ms: r.field_timeout_ms,
            max_attempts: r.max_attempts,
            today: card::YearMonth {
                year: r.year,
                month: r.month,
            },
        },
        processor: card::ProcessorKey {
            kid: r.processor_kid,
            public: bytes(r.processor_key, "processor-key")?,
        },
        entropy: bytes(r.entropy, "entropy")?,
        token_key: r.token_key.map(core_::card::Zeroizing::new),
    })
}

/// Starts a capture through a session's controls.
pub(crate) fn start(ctl: core_::CaptureControl<'_>, r: CaptureRequest) -> Result<(), Error> {
    ctl.start(request(r)?)
        .map_err(|e| Error::BadConfig(e.to_string()))
}

/// The WIT record for a core capture record.
pub(crate) fn event(e: core_::CaptureEmitted) -> CaptureEvent {
    CaptureEvent {
        seq: e.record.seq,
        capture: e.record.capture,
        items: e
            .record
            .items
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    core_::Item::Text(t) => CaptureValue::Text(t),
                    core_::Item::Number(n) => CaptureValue::Number(n),
                };
                (String::from(k), v)
            })
            .collect(),
        signed: e.line,
    }
}
