//! The `capture` command (tonemask's own, beside rtpengine's): the agent's desktop — or the
//! contact-centre application behind it — starts or cancels a card capture in a call.
//!
//! ```text
//! d7:command7:capture7:call-id…6:action5:start10:capture-id5:pay-16:fieldsl11:card-number6:expiry13:security-codeee
//! ```
//!
//! `action` is `start` (default) or `cancel`; `capture-id` (default `capture`) names the
//! capture in its records; `fields` (default card number, expiry, security code) lists
//! `card-number`, `expiry`, `security-code` or `numeric:MIN-MAX`. `#` ends a field, `*`
//! clears it; 30 s and three attempts per field; expiry checked against the node's clock.
//! The capture is sealed to the node's processor key; fresh entropy for every capture. The
//! answer is `ok` once the command is queued: the capture's progress arrives as signed
//! records where the call's events go (file, HTTP collector, UDP).

use super::calls::Calls;
use crate::ng::{self, Request, Value};
use crate::plugin::{CaptureField, CaptureRequest, NumericField};
use crate::relay::Control;
use anyhow::{anyhow, bail, Result};

/// Starts or cancels a capture in the call `req` names.
pub(super) fn command(calls: &mut Calls, req: &Request) -> Result<Value> {
    let call_id = req
        .text("call-id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow!("no call-id in the message"))?;
    let control = match req.text("action").unwrap_or("start") {
        "start" => Control::StartCapture(Box::new(request(calls, req)?)),
        "cancel" => Control::CancelCapture,
        other => bail!("capture: unknown action '{other}' (start or cancel)"),
    };
    calls.control(call_id, control)?;
    Ok(ng::ok([]))
}

/// The capture request `req` asks for, sealed to the node's processor key.
fn request(calls: &Calls, req: &Request) -> Result<CaptureRequest> {
    let (kid, public) = calls
        .processor_key()
        .ok_or_else(|| anyhow!("capture: the node has no processor key (--processor-key)"))?;
    let names = req.list("fields");
    let fields = if names.is_empty() {
        vec![
            CaptureField::CardNumber,
            CaptureField::Expiry,
            CaptureField::SecurityCode,
        ]
    } else {
        names.iter().map(|n| field(n)).collect::<Result<_>>()?
    };
    let (year, month) = crate::card::this_month();
    Ok(CaptureRequest {
        id: req.text("capture-id").unwrap_or("capture").to_string(),
        fields,
        end_key: '#',
        clear_key: '*',
        field_timeout_ms: 30_000,
        max_attempts: 3,
        year,
        month,
        processor_kid: kid.clone(),
        processor_key: public.to_vec(),
        entropy: crate::keys::random_bytes::<32>("a capture's seal")?.to_vec(),
        token_key: None,
    })
}

/// One field by name.
fn field(name: &str) -> Result<CaptureField> {
    Ok(match name {
        "card-number" => CaptureField::CardNumber,
        "expiry" => CaptureField::Expiry,
        "security-code" => CaptureField::SecurityCode,
        other => {
            let range = other
                .strip_prefix("numeric:")
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
            let Some((min, max)) = range else {
                bail!("capture: unknown field '{other}' (card-number, expiry, security-code, numeric:MIN-MAX)");
            };
            CaptureField::Numeric(NumericField { min, max })
        }
    })
}
