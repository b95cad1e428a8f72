//! Card capture as an agent would see it: presses in, progress out, never a digit of the
//! card but its last four; the card itself only through `take_card`. Test cards only.

use tonemask_core::card::{Brand, Capture, CaptureConfig, Field, Invalid, Progress, YearMonth};

const TODAY: YearMonth = YearMonth {
    year: 2026,
    month: 12,
};

/// Types `keys` one press every 300 ms from `at`; returns the progress reported.
fn typed(c: &mut Capture, at: &mut u64, keys: &str) -> Vec<Progress> {
    let mut out = Vec::new();
    for k in keys.chars() {
        *at += 300;
        c.handle_key(*at, k);
        out.extend(std::iter::from_fn(|| c.poll_progress()));
    }
    out
}

/// Everything the agent would see, as text.
fn shown(p: &[Progress]) -> String {
    p.iter().map(|p| format!("{p:?}\n")).collect()
}

#[test]
fn a_card_typed_with_a_correction_completes_and_the_agent_sees_no_digit_but_the_last_four() {
    let mut c = Capture::new(CaptureConfig::card(TODAY), 0).unwrap();
    let mut at = 0;
    let mut seen: Vec<Progress> = std::iter::from_fn(|| c.poll_progress()).collect();
    assert_eq!(
        seen,
        [Progress::FieldStarted {
            field: Field::CardNumber,
            attempt: 1
        }]
    );
    // A slip after five digits, cleared with `*`, then the whole number and `#`.
    seen.extend(typed(&mut c, &mut at, "41119*"));
    seen.extend(typed(&mut c, &mut at, "4111111111111111#"));
    assert!(seen.contains(&Progress::Cleared {
        field: Field::CardNumber
    }));
    assert!(seen.contains(&Progress::Brand(Brand::Visa)));
    assert!(seen.contains(&Progress::Valid {
        field: Field::CardNumber,
        last4: Some(*b"1111")
    }));
    // Expiry completes at four digits, the code at the brand's three.
    seen.extend(typed(&mut c, &mut at, "0829"));
    seen.extend(typed(&mut c, &mut at, "737"));
    assert_eq!(
        seen.last(),
        Some(&Progress::Completed {
            brand: Some(Brand::Visa)
        })
    );
    let text = shown(&seen);
    assert!(!text.contains("4111111111"), "{text}");
    assert!(!text.contains("737") && !text.contains("0829"), "{text}");
    let card = c.take_card().expect("the completed card");
    assert_eq!(card.pan, b"4111111111111111");
    assert_eq!(card.expiry, Some(*b"0829"));
    assert_eq!(card.security_code.as_deref(), Some(&b"737"[..]));
    assert!(
        !format!("{card:?}").contains("4111"),
        "Debug shows no digit"
    );
    assert!(c.take_card().is_none(), "taken once");
}

#[test]
fn an_invalid_card_is_asked_again_and_then_a_valid_one_goes_through() {
    let mut c = Capture::new(CaptureConfig::card(TODAY), 0).unwrap();
    let mut at = 0;
    let seen = typed(&mut c, &mut at, "4111111111111112#");
    assert!(seen.contains(&Progress::Invalid {
        field: Field::CardNumber,
        reason: Invalid::InvalidCardNumber,
        attempts_left: 2
    }));
    assert!(seen.contains(&Progress::FieldStarted {
        field: Field::CardNumber,
        attempt: 2
    }));
    // Amex: 15 digits finish the field by themselves, and its code has four.
    let seen = typed(&mut c, &mut at, "378282246310005");
    assert!(seen.contains(&Progress::Brand(Brand::Amex)));
    assert!(seen.contains(&Progress::Valid {
        field: Field::CardNumber,
        last4: Some(*b"0005")
    }));
    let seen = typed(&mut c, &mut at, "1126");
    assert!(
        seen.contains(&Progress::Invalid {
            field: Field::Expiry,
            reason: Invalid::Expired,
            attempts_left: 2
        }),
        "{seen:?}"
    );
    typed(&mut c, &mut at, "0130");
    let seen = typed(&mut c, &mut at, "123#");
    assert!(seen.contains(&Progress::Invalid {
        field: Field::SecurityCode,
        reason: Invalid::InvalidSecurityCode,
        attempts_left: 2
    }));
    typed(&mut c, &mut at, "1234");
    assert!(c.is_complete());
    let card = c.take_card().unwrap();
    assert_eq!(card.security_code.as_deref(), Some(&b"1234"[..]));
}

#[test]
fn a_field_that_runs_out_of_attempts_or_time_fails_the_capture() {
    let mut c = Capture::new(CaptureConfig::card(TODAY), 0).unwrap();
    let mut at = 0;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(typed(&mut c, &mut at, "9999999999999995#"));
    }
    assert_eq!(
        seen.last(),
        Some(&Progress::Failed {
            field: Field::CardNumber,
            reason: Invalid::UnknownBrand
        })
    );
    assert!(c.take_card().is_none());
    assert!(
        typed(&mut c, &mut at, "4").is_empty(),
        "keys after the end are ignored"
    );

    // A field not finished within its time is refused: the deadline is the host's.
    let mut c = Capture::new(CaptureConfig::card(TODAY), 1_000).unwrap();
    assert_eq!(c.poll_timeout(), Some(31_000));
    c.handle_timeout(30_999);
    c.handle_key(2_000, '4');
    c.handle_timeout(31_000);
    let seen: Vec<Progress> = std::iter::from_fn(|| c.poll_progress()).collect();
    assert!(seen.contains(&Progress::Invalid {
        field: Field::CardNumber,
        reason: Invalid::TimedOut,
        attempts_left: 2
    }));
    assert_eq!(c.poll_timeout(), Some(61_000), "asked again at the timeout");
}

#[test]
fn the_agent_can_cancel_or_ask_a_field_again() {
    let mut c = Capture::new(CaptureConfig::card(TODAY), 0).unwrap();
    let mut at = 0;
    typed(&mut c, &mut at, "5555555555554444");
    typed(&mut c, &mut at, "12");
    // The caller mistyped the card: ask it again; the expiry is asked after it anew.
    c.rerequest(at, Field::CardNumber);
    let seen = typed(&mut c, &mut at, "2223003122003222");
    assert!(seen.contains(&Progress::Brand(Brand::Mastercard)));
    assert!(seen.contains(&Progress::FieldStarted {
        field: Field::Expiry,
        attempt: 1
    }));
    typed(&mut c, &mut at, "1230");
    c.cancel();
    assert_eq!(c.poll_progress(), Some(Progress::Cancelled));
    assert!(c.take_card().is_none());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn bad_configurations_are_refused_with_the_field_named() {
    let bad = |f: fn(&mut CaptureConfig)| {
        let mut cfg = CaptureConfig::card(TODAY);
        f(&mut cfg);
        Capture::new(cfg, 0).unwrap_err().to_string()
    };
    assert!(bad(|c| c.fields.clear()).contains("fields"));
    assert!(bad(|c| c.fields = vec![Field::SecurityCode, Field::CardNumber]).contains("fields"));
    assert!(bad(|c| c.end_key = '*').contains("end_key"));
    assert!(bad(|c| c.max_attempts = 0).contains("max_attempts"));
    assert!(bad(|c| c.today.month = 13).contains("today"));
    assert!(bad(|c| c.fields.push(Field::Numeric { min: 6, max: 5 })).contains("fields"));
}

/// A completed test card, captured at once.
fn captured() -> tonemask_core::card::CardData {
    let mut c = Capture::new(CaptureConfig::card(TODAY), 0).unwrap();
    let mut at = 0;
    typed(&mut c, &mut at, "4111111111111111#0829737");
    c.take_card().unwrap()
}

#[test]
fn a_sealed_card_opens_only_with_the_processor_key_and_its_own_binding() {
    use tonemask_core::card::seal::{keypair, open, seal, Binding, SealError};
    let (sk, pk) = keypair(&[7; 32]);
    let binding = Binding {
        call_id: "call-1".into(),
        capture_id: "cap-1".into(),
        kid: "proc-2026".into(),
    };
    let card = captured();
    let sealed = seal(&card, &pk, &binding, [42; 32]).unwrap();
    assert_eq!(sealed.enc.len(), 32);
    assert!(
        !sealed.ciphertext.windows(4).any(|w| w == b"4111"),
        "no digits in clear"
    );
    let plain = open(&sealed, &sk, &binding).unwrap();
    assert_eq!(&plain[..], b"4111111111111111;0829;737");

    // Moved to another call or capture, or opened with another key: refused.
    let other_call = Binding {
        call_id: "call-2".into(),
        ..binding.clone()
    };
    assert_eq!(open(&sealed, &sk, &other_call), Err(SealError::Crypto));
    let other_capture = Binding {
        capture_id: "cap-2".into(),
        ..binding.clone()
    };
    assert_eq!(open(&sealed, &sk, &other_capture), Err(SealError::Crypto));
    let (wrong_sk, _) = keypair(&[8; 32]);
    assert_eq!(open(&sealed, &wrong_sk, &binding), Err(SealError::Crypto));
    // Tampered: any flipped bit of the ciphertext or the encapsulated key.
    let mut t = sealed.clone();
    t.ciphertext[3] ^= 1;
    assert_eq!(open(&t, &sk, &binding), Err(SealError::Crypto));
    let mut t = sealed.clone();
    t.enc[0] ^= 1;
    assert!(open(&t, &sk, &binding).is_err());
    assert_eq!(
        seal(&card, &pk[..31], &binding, [42; 32]),
        Err(SealError::BadPublicKey)
    );

    // The host's bytes decide the ephemeral key: other bytes, another record.
    let again = seal(&card, &pk, &binding, [42; 32]).unwrap();
    assert_eq!(again, sealed, "deterministic given the host's entropy");
    let fresh = seal(&card, &pk, &binding, [43; 32]).unwrap();
    assert_ne!(fresh.enc, sealed.enc);
    assert!(!format!("{sealed:?}").contains("4111"));
}
