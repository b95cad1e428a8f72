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
use crate::plugin::CaptureRequest;
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
    let entropy = crate::keys::random_bytes::<32>("a capture's seal")?.to_vec();
    let id = req.text("capture-id").unwrap_or("capture");
    let mut request =
        crate::card::card_request(id, (kid, public), crate::card::this_month(), entropy);
    let names = req.list("fields");
    if !names.is_empty() {
        request.fields = names
            .iter()
            .map(|n| crate::card::field_by_name(n))
            .collect::<Result<_>>()?;
    }
    Ok(request)
}
