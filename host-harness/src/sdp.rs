//! What a call's SIP signalling says about its media: who called, where each side receives
//! RTP, and which payload type means what (SDP `m=audio`, `c=`, `a=rtpmap`).
//!
//! Only what replaying a capture needs: SIP over UDP, one audio stream per side. Which side a
//! description belongs to is [`crate::sip`]'s business.

use crate::plugin::{AudioPayload, CallSettings, Codec, EventPayload, RtpConfig};
use crate::sip::Party;
use std::net::{IpAddr, SocketAddr};

/// The payload types of one side's audio (as that side offered or answered them).
#[derive(Clone, Debug, Default)]
pub struct PayloadTypes {
    /// Audio codecs the plugin can carry.
    pub audio: Vec<AudioPayload>,
    /// The telephone-event type.
    pub telephone_event: Option<EventPayload>,
    /// The RED type.
    pub red: Option<u8>,
}

impl PayloadTypes {
    /// PCMU on its static type 0, nothing else.
    #[must_use]
    pub fn pcmu() -> PayloadTypes {
        PayloadTypes {
            audio: vec![AudioPayload {
                pt: 0,
                codec: Codec::Pcmu,
                sample_rate: 8000,
            }],
            telephone_event: None,
            red: None,
        }
    }

    /// An RTP session's configuration: these payload types with `settings`.
    #[must_use]
    pub fn rtp_config(&self, settings: CallSettings) -> RtpConfig {
        RtpConfig {
            settings,
            audio: self.audio.clone(),
            telephone_event: self.telephone_event,
            red: self.red,
        }
    }

    /// The static RFC 3551 types (PCMU 0, PCMA 8) and nothing dynamic: what is assumed when a
    /// capture holds no SDP.
    #[must_use]
    pub fn static_only() -> PayloadTypes {
        PayloadTypes {
            audio: vec![
                AudioPayload {
                    pt: 0,
                    codec: Codec::Pcmu,
                    sample_rate: 8000,
                },
                AudioPayload {
                    pt: 8,
                    codec: Codec::Pcma,
                    sample_rate: 8000,
                },
            ],
            telephone_event: None,
            red: None,
        }
    }
}

/// One side's media description, as a SIP message in the capture carried it.
#[derive(Clone, Debug)]
pub struct Media {
    /// Where this side receives RTP.
    pub addr: SocketAddr,
    /// Its payload types.
    pub types: PayloadTypes,
    /// Whose description it is.
    pub party: Party,
    /// The SIP Call-ID.
    pub call_id: String,
}

/// Reads an SDP body: where the audio is received (`c=`, `m=audio`) and what its payload
/// types mean (`a=rtpmap`, static types). `None` without an audio description.
#[must_use]
pub fn parse_sdp(body: &str) -> Option<(SocketAddr, PayloadTypes)> {
    let mut ip: Option<IpAddr> = None;
    let mut port = None;
    let mut listed: Vec<u8> = Vec::new();
    let mut maps: Vec<(u8, String, u32)> = Vec::new();
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN ") {
            // "IP4 127.0.0.1" / "IP6 ::1"; a media-level c= overrides the session's.
            ip = c
                .split_whitespace()
                .nth(1)
                .and_then(|a| a.parse().ok())
                .or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            let mut f = m.split_whitespace();
            port = f.next().and_then(|p| p.parse::<u16>().ok());
            listed = f.skip(1).filter_map(|p| p.parse().ok()).collect();
        } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
            let mut f = a.split_whitespace();
            let (Some(pt), Some(enc)) = (f.next().and_then(|p| p.parse().ok()), f.next()) else {
                continue;
            };
            let mut e = enc.split('/');
            let name = e.next().unwrap_or("").to_ascii_lowercase();
            let rate = e.next().and_then(|r| r.parse().ok()).unwrap_or(8000);
            maps.push((pt, name, rate));
        }
    }
    let addr = SocketAddr::new(ip?, port?);
    let mut types = PayloadTypes::default();
    for pt in listed {
        let (name, rate) = match maps.iter().find(|m| m.0 == pt) {
            Some((_, n, r)) => (n.as_str(), *r),
            None if pt == 0 => ("pcmu", 8000),
            None if pt == 8 => ("pcma", 8000),
            None => continue,
        };
        match name {
            "pcmu" if rate == 8000 => types.audio.push(AudioPayload {
                pt,
                codec: Codec::Pcmu,
                sample_rate: 8000,
            }),
            "pcma" if rate == 8000 => types.audio.push(AudioPayload {
                pt,
                codec: Codec::Pcma,
                sample_rate: 8000,
            }),
            "l16" if rate == 8000 || rate == 16000 => types.audio.push(AudioPayload {
                pt,
                codec: Codec::L16,
                sample_rate: rate,
            }),
            "telephone-event" => {
                types.telephone_event = Some(EventPayload {
                    pt,
                    clock_rate: rate,
                });
            }
            "red" => types.red = Some(pt),
            _ => {}
        }
    }
    Some((addr, types))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_offer() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 96 121\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\na=rtpmap:121 red/8000\r\n";
        let (addr, types) = parse_sdp(sdp).unwrap();
        assert_eq!(addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(types.audio.len(), 1);
        let te = types.telephone_event.unwrap();
        assert_eq!((te.pt, te.clock_rate), (96, 8000));
        assert_eq!(types.red, Some(121));
    }

    #[test]
    fn needs_an_audio_line_and_an_address() {
        assert!(parse_sdp("v=0\r\nc=IN IP4 127.0.0.1\r\n").is_none());
        assert!(parse_sdp("v=0\r\nm=audio 6000 RTP/AVP 0\r\n").is_none());
    }
}
