//! The rtpengine **ng control protocol**, as Kamailio's and OpenSIPS's `rtpengine` modules
//! speak it: a UDP datagram is a cookie, one space, and a bencoded dictionary whose
//! `command` says what to do (`ping`, `offer`, `answer`, `delete`, `query`, `list`); the reply
//! repeats the cookie and carries `result` (`pong`, `ok` or `error` with `error-reason`).
//! This module frames and reads messages; [`crate::serve`] acts on them.

pub mod bencode;
mod client;

pub use bencode::Value;
pub use client::Client;

/// Longest cookie accepted (rtpengine's clients send 10–30 characters).
pub const MAX_COOKIE: usize = 64;

/// A request read off the control socket.
#[derive(Clone, Debug)]
pub struct Request {
    /// The cookie, repeated in the reply.
    pub cookie: Vec<u8>,
    /// The dictionary.
    pub body: Value,
}

/// A datagram that is not a request: why, and the cookie to answer with when there is one.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The cookie, if the datagram had one (then an error reply can be sent).
    pub cookie: Option<Vec<u8>>,
    /// What is wrong, for the error reply and the log.
    pub reason: String,
}

impl Request {
    /// Reads one datagram.
    pub fn parse(datagram: &[u8]) -> Result<Request, Refusal> {
        let space = datagram.iter().position(|&b| b == b' ');
        let cookie = match space {
            Some(i)
                if i > 0 && i <= MAX_COOKIE && datagram[..i].iter().all(u8::is_ascii_graphic) =>
            {
                datagram[..i].to_vec()
            }
            _ => {
                return Err(Refusal {
                    cookie: None,
                    reason: "no cookie (a datagram is COOKIE, a space, a bencoded dictionary)"
                        .into(),
                })
            }
        };
        let refuse = |reason: String| Refusal {
            cookie: Some(cookie.clone()),
            reason,
        };
        let body = bencode::decode(&datagram[cookie.len() + 1..])
            .map_err(|e| refuse(format!("the message is not bencode: {e}")))?;
        if !matches!(body, Value::Dict(_)) {
            return Err(refuse("the message is not a bencoded dictionary".into()));
        }
        Ok(Request { cookie, body })
    }

    /// The command, lower-cased (`None` when missing or not text).
    #[must_use]
    pub fn command(&self) -> Option<String> {
        self.text("command").map(str::to_ascii_lowercase)
    }

    /// A text value of the dictionary.
    #[must_use]
    pub fn text(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// The text items of a list value (`flags`, `replace`, …); empty when absent.
    #[must_use]
    pub fn list(&self, key: &str) -> Vec<String> {
        self.body
            .get(key)
            .and_then(Value::as_list)
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
            .collect()
    }

    /// The keys of the dictionary, for logging what was ignored.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        match &self.body {
            Value::Dict(pairs) => pairs
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The datagram answering `cookie` with `body`.
#[must_use]
pub fn reply(cookie: &[u8], body: &Value) -> Vec<u8> {
    let mut out = cookie.to_vec();
    out.push(b' ');
    body.encode_into(&mut out);
    out
}

/// An error reply's body.
#[must_use]
pub fn error(reason: &str) -> Value {
    Value::dict([
        ("result", Value::str("error")),
        ("error-reason", Value::str(reason)),
    ])
}

/// An `ok` reply's body with more `fields`.
#[must_use]
pub fn ok<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::dict(std::iter::once(("result", Value::str("ok"))).chain(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_cookie_and_a_dictionary() {
        let r = Request::parse(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(r.cookie, b"5323_1");
        assert_eq!(r.command().as_deref(), Some("ping"));
        let out = reply(&r.cookie, &Value::dict([("result", Value::str("pong"))]));
        assert_eq!(out, b"5323_1 d6:result4:ponge");
    }

    #[test]
    fn malformed_datagrams_are_refused_with_the_cookie_when_there_is_one() {
        for (d, has_cookie) in [
            (&b"nospace"[..], false),
            (b" d7:command4:pinge", false),
            (b"c1 li1ee", true),
            (b"c1 d7:command", true),
            (b"c1 ", true),
        ] {
            let e = Request::parse(d).unwrap_err();
            assert_eq!(e.cookie.is_some(), has_cookie, "{e:?}");
        }
    }
}
