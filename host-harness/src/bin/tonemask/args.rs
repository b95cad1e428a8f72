//! Arguments several commands share: the call's settings, twist, payload types.

use anyhow::{bail, Result};
use clap::ValueEnum;
use std::path::PathBuf;
use tonemask_harness::keys;
use tonemask_harness::plugin::{
    CallSettings, DigitSeal, DigitVisibility, EventPayload, MaskMode, Twist,
};
use tonemask_harness::sdp::PayloadTypes;

/// The call's settings, as every command that masks takes them (one place; mirrored from
/// the plugin's `call-settings`).
#[derive(clap::Args)]
pub struct CallArgs {
    /// What replaces each tone
    #[arg(long, value_enum, default_value_t = Mode::Silence)]
    pub mode: Mode,
    /// Look-ahead in ms: audio (on RTP, each caller→agent packet) is delayed this long so a
    /// tone is masked from its first sample (0–500)
    #[arg(long, default_value_t = tonemask_core::DEFAULT_LOOKAHEAD_MS, value_name = "MS")]
    pub lookahead_ms: u32,
    /// Call id written into each event [default: `call-` and 16 random hex digits, new for
    /// every run, so that two runs' events never pass for one call]
    #[arg(long, value_name = "ID")]
    pub call_id: Option<String>,
    /// What the events say of each digit: `clear`, `hidden` (a key was pressed, not which) or
    /// `sealed` to the processor key --digit-key [default: clear for mask and capture, hidden
    /// for relay and serve — whatever receives clear digits is in PCI scope]
    #[arg(long, value_enum)]
    pub digits: Option<Digits>,
    /// The processor's public key file the digits are sealed to (`--digits sealed`; see
    /// `tonemask keygen --processor`)
    #[arg(long, value_name = "FILE")]
    pub digit_key: Option<PathBuf>,
    #[command(flatten)]
    pub tuning: Tuning,
}

impl CallArgs {
    /// The plugin's settings (unsigned: the key is set per session), digits as asked or
    /// `default`.
    pub fn settings_or(&self, default: Digits) -> Result<CallSettings> {
        let digits = match (self.digits.unwrap_or(default), &self.digit_key) {
            (Digits::Sealed, Some(path)) => {
                let (kid, public) = tonemask_harness::card::load_public(path)?;
                DigitVisibility::Sealed(DigitSeal {
                    processor_kid: kid,
                    processor_key: public.to_vec(),
                    entropy: keys::random_bytes::<32>("the digit seals")?.to_vec(),
                })
            }
            (Digits::Sealed, None) => bail!("--digits sealed needs --digit-key FILE"),
            (_, Some(_)) => bail!("--digit-key goes with --digits sealed"),
            (Digits::Clear, None) => DigitVisibility::Clear,
            (Digits::Hidden, None) => DigitVisibility::Hidden,
        };
        Ok(CallSettings {
            call_id: self.call_id.clone().map_or_else(fresh_call_id, Ok)?,
            lookahead_ms: self.lookahead_ms,
            mask_mode: self.mode.into(),
            twist: self.tuning.twist.into(),
            key: None,
            digits,
        })
    }

    /// As [`CallArgs::settings_or`] with digits in clear by default (offline tools).
    pub fn settings(&self) -> Result<CallSettings> {
        self.settings_or(Digits::Clear)
    }
}

/// What events say of each digit.
#[derive(Clone, Copy, ValueEnum)]
pub enum Digits {
    /// The digit in clear
    Clear,
    /// No digit: a key was pressed, when and how
    Hidden,
    /// The digit sealed (HPKE) to --digit-key
    Sealed,
}

/// The key that signs events, and where the signed events go (`relay`, `serve`).
#[derive(clap::Args)]
pub struct SinkArgs {
    /// Key file that signs the events
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// Append signed events to this file (one line each; created owner-only)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// POST each signed event to this local collector (http://127.0.0.1:PORT/PATH)
    #[arg(long, value_name = "URL")]
    pub events_url: Option<String>,
    /// Send each signed event as one UDP datagram to this local address (as rtpengine's
    /// --dtmf-log-dest; loopback only — the events carry card digits)
    #[arg(long, value_name = "ADDR:PORT")]
    pub dtmf_log_dest: Option<std::net::SocketAddr>,
}

impl SinkArgs {
    /// Refuses a command line that names no place for the events.
    pub fn check(&self) -> Result<()> {
        if self.events.is_none() && self.events_url.is_none() && self.dtmf_log_dest.is_none() {
            bail!("say where the signed events go: --events FILE, --events-url URL and/or --dtmf-log-dest ADDR:PORT");
        }
        Ok(())
    }
}

#[derive(clap::Args)]
pub struct Tuning {
    /// Twist limits per administration
    #[arg(long, value_enum, default_value_t = Preset::Att)]
    pub twist: Preset,
}

/// Payload types for captures whose SIP signalling is not in the file.
#[derive(clap::Args)]
pub struct RtpArgs {
    /// Telephone-event payload type (8000 Hz) of streams the capture's SDP does not describe
    #[arg(long, value_name = "PT", value_parser = clap::value_parser!(u8).range(0..=127))]
    event_pt: Option<u8>,
    /// RED payload type of streams the capture's SDP does not describe
    #[arg(long, value_name = "PT", value_parser = clap::value_parser!(u8).range(0..=127))]
    red_pt: Option<u8>,
}

impl RtpArgs {
    pub fn fallback(&self) -> PayloadTypes {
        PayloadTypes {
            telephone_event: self.event_pt.map(|pt| EventPayload {
                pt,
                clock_rate: 8000,
            }),
            red: self.red_pt,
            ..PayloadTypes::static_only()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Preset {
    /// Q.24 AT&T: 8 dB normal, 4 dB reverse
    Att,
    /// ETSI: 6 dB
    Etsi,
    /// NTT: 5 dB
    Ntt,
    /// Australia: 10 dB
    Australia,
    /// Brazil: 9 dB
    Brazil,
}

impl From<Preset> for Twist {
    fn from(p: Preset) -> Twist {
        match p {
            Preset::Att => Twist::Att,
            Preset::Etsi => Twist::Etsi,
            Preset::Ntt => Twist::Ntt,
            Preset::Australia => Twist::Australia,
            Preset::Brazil => Twist::Brazil,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Digital silence
    Silence,
    /// A neutral 400 Hz tone (the agent hears that a key was pressed, not which)
    Tone,
    /// Comfort noise
    Noise,
    /// Detect only, change nothing
    Off,
}

impl From<Mode> for MaskMode {
    fn from(m: Mode) -> MaskMode {
        match m {
            Mode::Silence => MaskMode::Silence,
            Mode::Tone => MaskMode::Tone,
            Mode::Noise => MaskMode::Noise,
            Mode::Off => MaskMode::Off,
        }
    }
}

/// A call id of its own for this run: `call-` and 16 random hex digits.
pub fn fresh_call_id() -> Result<String> {
    let r = keys::random_bytes::<8>("a call id")?;
    Ok(format!("call-{}", hex::encode(r)))
}
