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

/// Reads an SDP body: where the first audio stream is received (`c=`, `m=audio`) and what
/// its payload types mean (`a=rtpmap` in its section, static types). `None` without an audio
/// description. Only the first audio stream counts: it is the one a media node relays (and
/// [`rewrite_sdp`] disables the others).
#[must_use]
pub fn parse_sdp(body: &str) -> Option<(SocketAddr, PayloadTypes)> {
    #[derive(PartialEq)]
    enum Section {
        Session,
        Audio,
        Other,
    }
    let mut section = Section::Session;
    let (mut session_ip, mut media_ip): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let mut port = None;
    let mut listed: Vec<u8> = Vec::new();
    let mut maps: Vec<(u8, String, u32)> = Vec::new();
    for line in body.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix("c=IN ") {
            // "IP4 127.0.0.1" / "IP6 ::1"; a media-level c= overrides the session's.
            let ip = c.split_whitespace().nth(1).and_then(|a| a.parse().ok());
            match section {
                Section::Session => session_ip = ip.or(session_ip),
                Section::Audio => media_ip = ip.or(media_ip),
                Section::Other => {}
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            if section == Section::Audio {
                break; // past the first audio stream
            }
            if let Some(rest) = m.strip_prefix("audio ") {
                section = Section::Audio;
                let mut f = rest.split_whitespace();
                port = f.next().and_then(|p| p.parse::<u16>().ok());
                listed = f.skip(1).filter_map(|p| p.parse().ok()).collect();
            } else {
                section = Section::Other;
            }
        } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
            if section != Section::Audio {
                continue;
            }
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
    let ip = media_ip.or(session_ip);
    let addr = SocketAddr::new(ip?, port?);
    Some((addr, payload_types(&listed, &maps)))
}

/// What the payload types an `m=audio` line lists mean, from its `a=rtpmap` lines (`maps`:
/// type, lower-cased encoding name, clock rate) and the static types 0 and 8.
fn payload_types(listed: &[u8], maps: &[(u8, String, u32)]) -> PayloadTypes {
    let mut types = PayloadTypes::default();
    for &pt in listed {
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
    types
}

/// How [`rewrite_sdp`] rewrites a description.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rewrite {
    /// Also put the media node's address in the origin line (`o=`): ng `replace: origin`.
    pub origin: bool,
}

/// Rewrites an SDP body so that its audio is received at `at` (the media node's own socket):
/// every `c=` line gets `at`'s address, the first `m=audio` line its port. What the node
/// cannot carry is taken out, so that media never goes around it: other media sections and
/// further audio sections are disabled (port 0), and ICE candidates, ICE credentials and
/// `a=rtcp` (RTCP on a separate port) are removed. Encrypted media (SRTP, DTLS) is refused:
/// the node must hear the tones to mask them. Line endings are kept.
pub fn rewrite_sdp(body: &str, at: SocketAddr, how: Rewrite) -> anyhow::Result<String> {
    let family = if at.is_ipv4() { "IP4" } else { "IP6" };
    let eol = if body.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(body.len() + 64);
    let mut audio_seen = false;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        let mut fields = line.split(' ');
        let rewritten = if line.starts_with("c=IN ") {
            Some(format!("c=IN {family} {}", at.ip()))
        } else if how.origin && line.starts_with("o=") {
            let f: Vec<&str> = line.split(' ').collect();
            (f.len() == 6).then(|| format!("{} {} {} IN {family} {}", f[0], f[1], f[2], at.ip()))
        } else if let Some(m) = line.strip_prefix("m=") {
            let mut f = m.split(' ');
            let (kind, _port) = (f.next().unwrap_or(""), f.next());
            let rest: Vec<&str> = f.collect();
            if rest.first().is_some_and(|p| p.contains("SAVP")) {
                anyhow::bail!("encrypted media ({}) cannot be masked", rest[0]);
            }
            let port = if kind == "audio" && !audio_seen {
                audio_seen = true;
                at.port()
            } else {
                0
            };
            Some(format!("m={kind} {port} {}", rest.join(" ")))
        } else {
            None
        };
        if rewritten.is_none() {
            let attr = fields.next().unwrap_or("");
            if attr.starts_with("a=crypto:") || attr.starts_with("a=fingerprint:") {
                anyhow::bail!("encrypted media (a=crypto / DTLS fingerprint) cannot be masked");
            }
            if [
                "a=rtcp:",
                "a=candidate:",
                "a=ice-ufrag:",
                "a=ice-pwd:",
                "a=ice-options:",
                "a=remote-candidates:",
            ]
            .iter()
            .any(|p| attr.starts_with(p))
                || attr == "a=ice-lite"
                || attr == "a=end-of-candidates"
            {
                continue;
            }
        }
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push_str(eol);
    }
    if !audio_seen {
        anyhow::bail!("the SDP has no audio stream");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_offer_points_every_stream_at_the_node_and_nowhere_else() {
        let offer = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:6001\r\na=candidate:1 1 udp 2122260223 10.0.0.5 6000 typ host\r\na=ice-ufrag:x\r\nm=video 6002 RTP/AVP 96\r\nc=IN IP4 192.0.2.10\r\n";
        let at: SocketAddr = "203.0.113.5:30000".parse().unwrap();
        let out = rewrite_sdp(offer, at, Rewrite { origin: true }).unwrap();
        assert!(out.contains("o=alice 1 1 IN IP4 203.0.113.5\r\n"), "{out}");
        assert!(out.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
        assert!(
            out.contains("m=video 0 RTP/AVP 96\r\n"),
            "other media disabled"
        );
        assert!(
            !out.contains("192.0.2.10") && !out.contains("10.0.0.5"),
            "{out}"
        );
        assert!(!out.contains("a=rtcp:") && !out.contains("candidate") && !out.contains("ice-"));
        assert!(out.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        let (addr, types) = parse_sdp(&out).unwrap();
        assert_eq!(addr, at);
        assert_eq!(types.telephone_event.map(|t| t.pt), Some(101));
        let kept = rewrite_sdp(offer, at, Rewrite::default()).unwrap();
        assert!(
            kept.contains("o=alice 1 1 IN IP4 192.0.2.10\r\n"),
            "origin kept unless asked"
        );
    }

    #[test]
    fn encrypted_or_audio_less_descriptions_are_refused() {
        let at: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        for sdp in [
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/SAVP 0\r\n",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n",
            "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 6000 RTP/AVP 96\r\n",
        ] {
            assert!(rewrite_sdp(sdp, at, Rewrite::default()).is_err(), "{sdp}");
        }
    }

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
    fn only_the_first_audio_stream_counts() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\na=rtpmap:96 H264/90000\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\nm=audio 7000 RTP/AVP 8 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\n";
        let (addr, types) = parse_sdp(sdp).unwrap();
        assert_eq!(addr, "10.0.0.1:6000".parse().unwrap());
        assert_eq!(types.audio.iter().map(|a| a.pt).collect::<Vec<_>>(), [0]);
        assert_eq!(types.telephone_event.map(|t| t.pt), Some(101));
        let at: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        let out = rewrite_sdp(sdp, at, Rewrite::default()).unwrap();
        assert_eq!(parse_sdp(&out).unwrap().0, at);
    }

    #[test]
    fn needs_an_audio_line_and_an_address() {
        assert!(parse_sdp("v=0\r\nc=IN IP4 127.0.0.1\r\n").is_none());
        assert!(parse_sdp("v=0\r\nm=audio 6000 RTP/AVP 0\r\n").is_none());
    }
}
