//! Bencode (BEP 3), as the rtpengine ng protocol uses it: integers, byte strings, lists and
//! dictionaries.
//!
//! Written here rather than taken from a crate because the control port is reachable by the
//! network and the crates in the field recurse without a depth limit (a few KB of `llll…`
//! overflow the stack and abort the process, taking every call with it). This decoder
//! refuses nesting deeper than [`MAX_DEPTH`], integers that do not fit an `i64`, and lengths
//! past the end of the input — with an error, never a panic. Dictionary keys are kept in
//! arrival order and are not required to be sorted: rtpengine's clients do not sort them.

use std::fmt;

/// Deepest nesting of lists and dictionaries accepted (ng messages nest three levels).
pub const MAX_DEPTH: usize = 32;

/// A bencoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `i…e`
    Int(i64),
    /// `len:bytes`
    Bytes(Vec<u8>),
    /// `l…e`
    List(Vec<Value>),
    /// `d…e`, keys in arrival order.
    Dict(Vec<(Vec<u8>, Value)>),
}

/// Why input is not bencode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start or continue a value, at this offset.
    Unexpected(usize),
    /// An integer or length that is malformed or too large, at this offset.
    BadNumber(usize),
    /// Lists and dictionaries nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes left after the value, at this offset.
    Trailing(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "bencode ends inside a value"),
            DecodeError::Unexpected(at) => write!(f, "unexpected byte at offset {at}"),
            DecodeError::BadNumber(at) => write!(f, "malformed number at offset {at}"),
            DecodeError::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            DecodeError::Trailing(at) => write!(f, "bytes after the value at offset {at}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Value {
    /// A byte string from text.
    #[must_use]
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// A dictionary from (key, value) pairs.
    #[must_use]
    pub fn dict<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// The value under `key`, if this is a dictionary that has it (the first, if repeated).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a byte string that is UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The items of a list.
    #[must_use]
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// This value, encoded.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends this value, encoded, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(pairs) => {
                out.push(b'd');
                for (k, v) in pairs {
                    Value::Bytes(k.clone()).encode_into(out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Decodes exactly one value filling all of `input`.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::Trailing(d.pos));
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' | b'd' if depth >= MAX_DEPTH => Err(DecodeError::TooDeep),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut pairs = Vec::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::Unexpected(self.pos));
                    }
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                }
                self.pos += 1;
                Ok(Value::Dict(pairs))
            }
            _ => Err(DecodeError::Unexpected(self.pos)),
        }
    }

    /// An integer up to `end` (consumed).
    fn number(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(DecodeError::Truncated)?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| DecodeError::BadNumber(start))?;
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::BadNumber(start));
        }
        let n = text.parse().map_err(|_| DecodeError::BadNumber(start))?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let at = self.pos;
        let len = usize::try_from(self.number(b':')?).map_err(|_| DecodeError::BadNumber(at))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.input.len())
            .ok_or(DecodeError::Truncated)?;
        let b = self.input[self.pos..end].to_vec();
        self.pos = end;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ng_offer_with_unsorted_keys_and_writes_it_back() {
        let raw = b"d7:command5:offer7:call-id3:c-18:from-tag2:ft5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione3:sdp3:v=0e";
        let v = decode(raw).unwrap();
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
        assert_eq!(v.get("call-id").and_then(Value::as_str), Some("c-1"));
        let flags = v.get("flags").and_then(Value::as_list).unwrap();
        assert_eq!(flags[0].as_str(), Some("trust-address"));
        assert_eq!(v.encode(), raw.to_vec(), "arrival order kept");
        assert_eq!(decode(b"i-42e"), Ok(Value::Int(-42)));
    }

    #[test]
    fn hostile_input_is_an_error_never_a_panic_or_a_deep_recursion() {
        let deep = [vec![b'l'; 100_000], vec![b'e'; 100_000]].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        for bad in [
            &b""[..],
            b"d",
            b"i12",
            b"ie",
            b"i-e",
            b"i1x2e",
            b"i99999999999999999999e",
            b"5:abc",
            b"99999999999999999999:a",
            b"d3:keye",
            b"di1ei2ee",
            b"x",
            b"i1ei2e",
            b"l",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
