//! Card capture for agent-assisted payments: the caller types each field (card number,
//! expiry, security code, other numeric fields) on the keypad while the agent stays on the
//! line; the agent and the host see **progress only** — which field, how many digits, the
//! brand, valid or invalid with the reason, the last four of a valid card number — and the
//! card itself leaves only through [`Capture::take_card`] (to be sealed for the processor).
//!
//! Sans-IO like the rest of the core: key presses and the host's time in
//! ([`Capture::handle_key`], [`Capture::handle_timeout`]), progress out
//! ([`Capture::poll_progress`]) and the next deadline ([`Capture::poll_timeout`]). A press is
//! a reported digit — in-band or RFC 4733, once per press. The end key (`#`) finishes a field,
//! the clear key (`*`) starts it again; a field that reaches its full length finishes by
//! itself. A refused field is asked again until its attempts run out; then the capture
//! fails. Every buffer holding digits is zeroized when it is cleared, when the capture
//! completes (after the card is taken), fails or is cancelled.

mod active;
pub mod brand;
pub mod field;
pub mod seal;

pub(crate) use active::Active;
pub use active::{token, CaptureRequest, Items, ProcessorKey};
pub use brand::{brand_of, luhn_ok, Brand};
pub use field::{Field, Invalid, YearMonth};
pub use zeroize::Zeroizing;

use crate::error::ConfigError;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use zeroize::Zeroize;

/// Capacity of the buffer a field is typed into: more than any field holds (a card number
/// finishes at 19 digits, a numeric field at 32), so it never grows — growing would leave a
/// copy of the digits behind in freed memory.
const BUFFER: usize = 40;

/// How a capture runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The fields, in the order they are asked (at least one; a security code needs the card
    /// number before it).
    pub fields: Vec<Field>,
    /// The key that finishes a field.
    pub end_key: char,
    /// The key that clears the field being typed.
    pub clear_key: char,
    /// Time a field may take from when it is asked, ms.
    pub field_timeout_ms: u64,
    /// Attempts per field before the capture fails (1–9).
    pub max_attempts: u8,
    /// The host's date: an expiry before this month is refused.
    pub today: YearMonth,
}

impl CaptureConfig {
    /// Card number, expiry and security code; `#` ends a field, `*` clears it; 30 s and three
    /// attempts per field.
    #[must_use]
    pub fn card(today: YearMonth) -> CaptureConfig {
        CaptureConfig {
            fields: alloc::vec![Field::CardNumber, Field::Expiry, Field::SecurityCode],
            end_key: '#',
            clear_key: '*',
            field_timeout_ms: 30_000,
            max_attempts: 3,
            today,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let range = |ok: bool, field, allowed| {
            ok.then_some(())
                .ok_or(ConfigError::OutOfRange { field, allowed })
        };
        range(!self.fields.is_empty(), "fields", "at least one field")?;
        let card_first = match (
            self.fields.iter().position(|f| *f == Field::CardNumber),
            self.fields.iter().position(|f| *f == Field::SecurityCode),
        ) {
            (_, None) => true,
            (Some(c), Some(s)) => c < s,
            (None, Some(_)) => false,
        };
        range(
            card_first,
            "fields",
            "a security code after the card number",
        )?;
        let numeric_ok = self.fields.iter().all(|f| match *f {
            Field::Numeric { min, max } => (1..=max).contains(&min) && max <= 32,
            _ => true,
        });
        range(
            numeric_ok,
            "fields",
            "numeric fields of 1 to 32 digits, min <= max",
        )?;
        let keys = |k: char| matches!(k, '#' | '*' | 'A'..='D');
        range(
            keys(self.end_key) && keys(self.clear_key) && self.end_key != self.clear_key,
            "end_key/clear_key",
            "two different keys of # * A B C D",
        )?;
        range(
            (1_000..=600_000).contains(&self.field_timeout_ms),
            "field_timeout_ms",
            "1000-600000",
        )?;
        range((1..=9).contains(&self.max_attempts), "max_attempts", "1-9")?;
        range(
            (1..=12).contains(&self.today.month) && (2000..=2099).contains(&self.today.year),
            "today",
            "a month of 2000-2099",
        )
    }
}

/// What the agent and the host may see of a capture: never a digit, except the last four of
/// an accepted card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A field is asked (`attempt` from 1).
    FieldStarted {
        /// The field.
        field: Field,
        /// Which attempt.
        attempt: u8,
    },
    /// A digit was typed: `count` digits in the field so far.
    Digits {
        /// The field.
        field: Field,
        /// Digits typed.
        count: usize,
    },
    /// The field was cleared (the clear key).
    Cleared {
        /// The field.
        field: Field,
    },
    /// The card's brand, once its first six digits tell it.
    Brand(Brand),
    /// A field was accepted (`last4` for the card number).
    Valid {
        /// The field.
        field: Field,
        /// The card number's last four digits (ASCII).
        last4: Option<[u8; 4]>,
    },
    /// A field was refused; it is asked again while attempts are left.
    Invalid {
        /// The field.
        field: Field,
        /// Why.
        reason: Invalid,
        /// Attempts left for it.
        attempts_left: u8,
    },
    /// Every field was accepted: the card is ready for [`Capture::take_card`].
    Completed {
        /// The card's brand.
        brand: Option<Brand>,
    },
    /// A field ran out of attempts; everything typed was erased.
    Failed {
        /// The field.
        field: Field,
        /// Its last refusal.
        reason: Invalid,
    },
    /// The host cancelled the capture; everything typed was erased.
    Cancelled,
}

/// The captured card, for sealing. Zeroized when dropped; `Debug` shows no digit.
pub struct CardData {
    /// The card number (ASCII digits).
    pub pan: Vec<u8>,
    /// The expiry as typed, MMYY (ASCII), when asked.
    pub expiry: Option<[u8; 4]>,
    /// The security code (ASCII), when asked.
    pub security_code: Option<Vec<u8>>,
    /// The other numeric fields, in order (ASCII).
    pub other: Vec<Vec<u8>>,
    /// The brand.
    pub brand: Option<Brand>,
}

impl fmt::Debug for CardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardData")
            .field("brand", &self.brand)
            .finish_non_exhaustive()
    }
}

impl Drop for CardData {
    fn drop(&mut self) {
        self.pan.zeroize();
        if let Some(e) = &mut self.expiry {
            e.zeroize();
        }
        if let Some(c) = &mut self.security_code {
            c.zeroize();
        }
        self.other.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// Where a running capture stands, as the agent may see it: never a digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The field being typed.
    pub field: Field,
    /// Its place among the capture's fields (from 0).
    pub index: usize,
    /// How many fields the capture has.
    pub fields: usize,
    /// Which attempt at the field this is (from 1).
    pub attempt: u8,
    /// Digits typed into it so far.
    pub count: usize,
    /// The card's brand, once known.
    pub brand: Option<Brand>,
}

/// What a capture waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Keys for field `index`, asked at host time `asked_ms`.
    Typing {
        index: usize,
        attempt: u8,
        asked_ms: u64,
    },
    /// [`Capture::take_card`].
    Completed,
    /// Nothing: it failed, was cancelled, or the card was taken.
    Over,
}

/// One capture: the fields of one payment, typed by the caller.
pub struct Capture {
    config: CaptureConfig,
    state: State,
    /// The field being typed (ASCII digits).
    typing: Vec<u8>,
    /// Accepted fields, in the configuration's order.
    accepted: Vec<Vec<u8>>,
    brand: Option<Brand>,
    progress: VecDeque<Progress>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("state", &self.state)
            .field("brand", &self.brand)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Starts a capture at host time `now` (ms): the first field is asked.
    pub fn new(config: CaptureConfig, now: u64) -> Result<Capture, ConfigError> {
        config.validate()?;
        let mut c = Capture {
            state: State::Over,
            typing: Vec::with_capacity(BUFFER),
            accepted: Vec::with_capacity(config.fields.len()),
            brand: None,
            progress: VecDeque::new(),
            config,
        };
        c.ask(0, 1, now);
        Ok(c)
    }

    /// The next progress report, oldest first.
    pub fn poll_progress(&mut self) -> Option<Progress> {
        self.progress.pop_front()
    }

    /// Where the capture stands while a field is typed (`None` once it is over or complete).
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        let State::Typing { index, attempt, .. } = self.state else {
            return None;
        };
        Some(Status {
            field: self.config.fields[index],
            index,
            fields: self.config.fields.len(),
            attempt,
            count: self.typing.len(),
            brand: self.brand,
        })
    }

    /// Whether the card is ready for [`Capture::take_card`].
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.state == State::Completed
    }

    /// A key press at host time `now`. Ignored unless a field is being typed.
    pub fn handle_key(&mut self, now: u64, key: char) {
        let State::Typing { index, attempt, .. } = self.state else {
            return;
        };
        let field = self.config.fields[index];
        if key == self.config.clear_key {
            self.typing.zeroize();
            self.typing.clear();
            if field == Field::CardNumber {
                self.brand = None;
            }
            self.progress.push_back(Progress::Cleared { field });
        } else if key == self.config.end_key {
            self.finish(index, attempt, now);
        } else if key.is_ascii_digit() {
            self.typing.push(key as u8);
            self.progress.push_back(Progress::Digits {
                field,
                count: self.typing.len(),
            });
            if field == Field::CardNumber && self.brand.is_none() {
                self.brand = brand_of(&self.typing);
                if let Some(b) = self.brand {
                    self.progress.push_back(Progress::Brand(b));
                }
            }
            if field::complete(field, &self.typing, self.brand) {
                self.finish(index, attempt, now);
            }
        }
    }

    /// Host time `now` has come: a field not finished in time is refused.
    pub fn handle_timeout(&mut self, now: u64) {
        if let State::Typing { index, attempt, .. } = self.state {
            if self.poll_timeout().is_some_and(|due| now >= due) {
                self.refuse(index, attempt, Invalid::TimedOut, now);
            }
        }
    }

    /// When [`Capture::handle_timeout`] has something to do, while a field is being typed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Typing { asked_ms, .. } => {
                Some(asked_ms.saturating_add(self.config.field_timeout_ms))
            }
            State::Completed | State::Over => None,
        }
    }

    /// Asks `field` again (the agent heard the caller go wrong): it and every field after it
    /// are typed anew. Ignored when the capture does not have that field or is over.
    pub fn rerequest(&mut self, now: u64, field: Field) {
        let Some(index) = self.config.fields.iter().position(|f| *f == field) else {
            return;
        };
        if self.state == State::Over || index > self.accepted.len() {
            return;
        }
        for mut v in self.accepted.drain(index..) {
            v.zeroize();
        }
        if field == Field::CardNumber {
            self.brand = None;
        }
        self.typing.zeroize();
        self.typing.clear();
        self.ask(index, 1, now);
    }

    /// Ends the capture; everything typed is erased.
    pub fn cancel(&mut self) {
        if self.state != State::Over {
            self.erase();
            self.state = State::Over;
            self.progress.push_back(Progress::Cancelled);
        }
    }

    /// The completed card (once); the capture keeps no copy.
    pub fn take_card(&mut self) -> Option<CardData> {
        if self.state != State::Completed {
            return None;
        }
        self.state = State::Over;
        let mut card = CardData {
            pan: Vec::new(),
            expiry: None,
            security_code: None,
            other: Vec::new(),
            brand: self.brand,
        };
        for (f, v) in self.config.fields.iter().zip(self.accepted.drain(..)) {
            match f {
                Field::CardNumber => card.pan = v,
                Field::Expiry => card.expiry = <[u8; 4]>::try_from(v.as_slice()).ok(),
                Field::SecurityCode => card.security_code = Some(v),
                Field::Numeric { .. } => card.other.push(v),
            }
        }
        Some(card)
    }

    fn ask(&mut self, index: usize, attempt: u8, now: u64) {
        self.state = State::Typing {
            index,
            attempt,
            asked_ms: now,
        };
        self.progress.push_back(Progress::FieldStarted {
            field: self.config.fields[index],
            attempt,
        });
    }

    /// The field being typed is finished: accepted (next field, or completion) or refused.
    fn finish(&mut self, index: usize, attempt: u8, now: u64) {
        let field = self.config.fields[index];
        let brand = self.brand;
        if let Err(reason) = field::check(field, &self.typing, brand, self.config.today) {
            return self.refuse(index, attempt, reason, now);
        }
        let last4 = (field == Field::CardNumber)
            .then(|| <[u8; 4]>::try_from(&self.typing[self.typing.len() - 4..]).ok())
            .flatten();
        if field == Field::CardNumber {
            self.brand = brand_of(&self.typing);
        }
        self.accepted.push(core::mem::take(&mut self.typing));
        self.typing.reserve(BUFFER);
        self.progress.push_back(Progress::Valid { field, last4 });
        if index + 1 < self.config.fields.len() {
            self.ask(index + 1, 1, now);
        } else {
            self.state = State::Completed;
            self.progress
                .push_back(Progress::Completed { brand: self.brand });
        }
    }

    fn refuse(&mut self, index: usize, attempt: u8, reason: Invalid, now: u64) {
        let field = self.config.fields[index];
        self.typing.zeroize();
        self.typing.clear();
        if field == Field::CardNumber {
            self.brand = None;
        }
        let attempts_left = self.config.max_attempts.saturating_sub(attempt);
        self.progress.push_back(Progress::Invalid {
            field,
            reason,
            attempts_left,
        });
        if attempts_left == 0 {
            self.erase();
            self.state = State::Over;
            self.progress.push_back(Progress::Failed { field, reason });
        } else {
            self.ask(index, attempt + 1, now);
        }
    }

    fn erase(&mut self) {
        self.typing.zeroize();
        self.typing.clear();
        for mut v in self.accepted.drain(..) {
            v.zeroize();
        }
        self.brand = None;
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.erase();
    }
}
