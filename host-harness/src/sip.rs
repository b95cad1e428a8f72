//! SIP messages in a capture: who the caller is and whose media description each SDP is.
//!
//! The caller is the party whose tag is in the `From` of the dialog's first INVITE (one
//! without a `To` tag). An SDP body belongs to the sender of the message that carries it: for
//! a request that is the `From` party, for a response the other one (a response keeps the
//! request's `From`). So an answer in a 183, a late offer in an ACK, a re-INVITE from either
//! side and an UPDATE are all placed on the right side. Where the dialog's first INVITE is not
//! in the capture, the side of its descriptions is [`Party::Unknown`] — nothing is proven.

use crate::sdp::{parse_sdp, Media};

/// Which side of the call a media description belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The party that placed the call (the paying customer).
    Caller,
    /// The called party (the agent, or the PBX in front of it).
    Agent,
    /// Not provable from the signalling in the capture.
    Unknown,
}

/// The parts of a SIP message this host reads.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The request method, or `None` for a response.
    pub method: Option<&'a str>,
    /// `Call-ID`.
    pub call_id: &'a str,
    /// The `tag` of `From`.
    pub from_tag: Option<&'a str>,
    /// The `tag` of `To`.
    pub to_tag: Option<&'a str>,
    /// `Content-Type`, lower case parameters included.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a str,
}

impl<'a> Message<'a> {
    /// Parses a UDP payload as a SIP request or response; `None` if it is not one.
    #[must_use]
    pub fn parse(payload: &'a [u8]) -> Option<Message<'a>> {
        let text = std::str::from_utf8(payload).ok()?;
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text, ""),
        };
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        let method = if first.starts_with("SIP/2.0 ") {
            None
        } else {
            let mut f = first.split(' ');
            let (Some(m), Some(_), Some("SIP/2.0"), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return None;
            };
            Some(m)
        };
        let mut msg = Message {
            method,
            call_id: "",
            from_tag: None,
            to_tag: None,
            content_type: None,
            body,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "call-id" | "i" => msg.call_id = value,
                "from" | "f" => msg.from_tag = tag(value),
                "to" | "t" => msg.to_tag = tag(value),
                "content-type" | "c" => msg.content_type = Some(value),
                _ => {}
            }
        }
        Some(msg)
    }

    /// Whether the body carries DTMF digits (SIP INFO `application/dtmf-relay` and kin).
    #[must_use]
    pub fn carries_dtmf(&self) -> bool {
        self.content_type.is_some_and(|c| {
            let c = c.to_ascii_lowercase();
            c.starts_with("application/dtmf") || c.starts_with("audio/telephone-event")
        })
    }
}

/// The `tag` parameter of a `From`/`To` value (after the URI's closing `>`, if any).
fn tag(value: &str) -> Option<&str> {
    let params = value.rfind('>').map_or(value, |i| &value[i..]);
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("tag").then(|| v.trim())
    })
}

/// Every media description in a capture's SIP messages (in order), each placed on its side.
#[must_use]
pub fn media_descriptions<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Media> {
    let mut callers: Vec<(String, String)> = Vec::new(); // (Call-ID, caller's tag)
    let mut media = Vec::new();
    for payload in payloads {
        let Some(m) = Message::parse(payload) else {
            continue;
        };
        if m.method == Some("INVITE") && m.to_tag.is_none() {
            if let Some(from) = m.from_tag {
                if !callers.iter().any(|(c, _)| c == m.call_id) {
                    callers.push((m.call_id.to_string(), from.to_string()));
                }
            }
        }
        let is_sdp = m
            .content_type
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if !is_sdp {
            continue;
        }
        let Some((addr, types)) = parse_sdp(m.body) else {
            continue;
        };
        let caller_tag = callers
            .iter()
            .find(|(c, _)| c == m.call_id)
            .map(|(_, t)| t.as_str());
        let from_is_caller = match (caller_tag, m.from_tag) {
            (Some(c), Some(f)) => Some(c == f),
            _ => None,
        };
        let party = match (from_is_caller, m.method.is_some()) {
            (None, _) => Party::Unknown,
            (Some(true), true) | (Some(false), false) => Party::Caller,
            (Some(false), true) | (Some(true), false) => Party::Agent,
        };
        media.push(Media {
            addr,
            types,
            party,
            call_id: m.call_id.to_string(),
        });
    }
    media
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(first: &str, from: &str, to: &str, sdp_port: Option<u16>) -> Vec<u8> {
        let mut s = format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: <sip:a@x>;tag={from}\r\nTo: <sip:b@y>{to}\r\nCall-ID: c1@x\r\n"
        );
        match sdp_port {
            Some(p) => s.push_str(&format!(
                "Content-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 10.0.0.1\r\nm=audio {p} RTP/AVP 0\r\n"
            )),
            None => s.push_str("\r\n"),
        }
        s.into_bytes()
    }

    fn parties(msgs: &[Vec<u8>]) -> Vec<(u16, Party)> {
        media_descriptions(msgs.iter().map(Vec::as_slice))
            .iter()
            .map(|m| (m.addr.port(), m.party))
            .collect()
    }

    #[test]
    fn answers_in_provisional_responses_and_reinvites_are_placed_on_their_side() {
        let msgs = [
            msg("INVITE sip:b@y SIP/2.0", "caller", "", Some(4000)),
            msg(
                "SIP/2.0 183 Session Progress",
                "caller",
                ";tag=agent",
                Some(5000),
            ),
            msg("SIP/2.0 200 OK", "caller", ";tag=agent", None),
            // The agent moves its media with a re-INVITE: its From is the agent's tag.
            msg("INVITE sip:a@x SIP/2.0", "agent", ";tag=caller", Some(5002)),
            msg("SIP/2.0 200 OK", "agent", ";tag=caller", Some(4000)),
        ];
        assert_eq!(
            parties(&msgs),
            [
                (4000, Party::Caller),
                (5000, Party::Agent),
                (5002, Party::Agent),
                (4000, Party::Caller)
            ]
        );
    }

    #[test]
    fn without_the_first_invite_nothing_is_proven() {
        let msgs = [msg("SIP/2.0 200 OK", "caller", ";tag=agent", Some(5000))];
        assert_eq!(parties(&msgs), [(5000, Party::Unknown)]);
    }

    #[test]
    fn reads_compact_headers_and_dtmf_bodies_and_ignores_other_bytes() {
        let info = b"INFO sip:b@y SIP/2.0\r\ni: c9\r\nf: <sip:a@x>;tag=1\r\nc: application/dtmf-relay\r\n\r\nSignal=4\r\nDuration=160\r\n";
        let m = Message::parse(info).unwrap();
        assert_eq!((m.call_id, m.from_tag), ("c9", Some("1")));
        assert!(m.carries_dtmf());
        assert!(Message::parse(&[0x80, 0, 1, 2]).is_none());
        assert!(Message::parse(b"GET / HTTP/1.1\r\n\r\n").is_none());
    }
}
