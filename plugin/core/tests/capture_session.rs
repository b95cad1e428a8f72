//! Card capture inside a call: the caller's key tones go to the capture, the agent's side
//! sees only progress records, the card leaves only sealed to the processor, and the whole
//! call's records verify as one numbering. Test cards only.

mod common;

use common::sequence;
use tonemask_core::card::seal::{keypair, open, Binding, Sealed};
use tonemask_core::card::{CaptureConfig, CaptureRequest, Field, ProcessorKey, YearMonth};
use tonemask_core::g711::linear_to_ulaw;
use tonemask_core::{
    CaptureEmitted, CaptureRecord, Codec, Emitted, Key, Record, Session, SessionConfig, Signer,
    Verifier,
};

const TODAY: YearMonth = YearMonth {
    year: 2026,
    month: 12,
};

fn session(key: &Key) -> Session {
    let mut cfg = SessionConfig::new("call-7", Codec::Pcmu);
    cfg.settings.signer = Some(Signer::new(key.clone(), [0x5A; 16]).unwrap());
    Session::new(cfg).unwrap()
}

/// Plays `keys` as tones (60 ms on, 90 ms off, −12 dBm0) in 20 ms µ-law frames; returns
/// what left the session meanwhile.
fn play(s: &mut Session, keys: &str) -> (Vec<Emitted>, Vec<CaptureEmitted>) {
    let pcm = sequence(keys, 40.0, 60.0, 90.0, -12.0);
    let bytes: Vec<u8> = pcm.iter().map(|&v| linear_to_ulaw(v)).collect();
    let mut out = Vec::new();
    for frame in bytes.chunks(160) {
        s.process_bytes(frame, &mut out).unwrap();
    }
    (
        std::iter::from_fn(|| s.poll_event()).collect(),
        std::iter::from_fn(|| s.poll_capture()).collect(),
    )
}

fn request(public: [u8; 32]) -> CaptureRequest {
    CaptureRequest {
        id: "pay-1".into(),
        config: CaptureConfig::card(TODAY),
        processor: ProcessorKey {
            kid: "proc-1".into(),
            public,
        },
        entropy: [0x33; 32],
        token_key: Some(zeroize::Zeroizing::new(vec![0x44; 32])),
    }
}

fn events(records: &[CaptureEmitted]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.record.event().to_string())
        .collect()
}

#[test]
fn a_card_typed_during_a_capture_leaves_only_as_progress_and_a_sealed_record() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (sk, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    // The call's audit chain begins with its start record.
    let mut lines = vec![s.start_record().unwrap().to_string()];

    // Before the capture, presses are ordinary digit events.
    let (before, none) = play(&mut s, "12");
    assert_eq!(digits(&before), "12");
    assert!(none.is_empty());
    lines.extend(before.iter().map(|e| e.line.clone().unwrap()));

    s.capture().start(request(pk)).unwrap();
    assert_eq!(s.capture().running(), Some("pay-1"));
    // A slip corrected with `*`, the card, its expiry and code: no digit event at all.
    let (during, records) = play(&mut s, "41119*4111111111111111#0829737");
    assert!(during.is_empty(), "{during:?}");
    lines.extend(records.iter().map(|r| r.line.clone().unwrap()));
    let names = events(&records);
    assert_eq!(names.first().map(String::as_str), Some("started"));
    assert_eq!(names.last().map(String::as_str), Some("completed"));
    assert!(names.contains(&"cleared".to_string()), "{names:?}");
    let valid: Vec<&CaptureRecord> = records
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.event() == "valid")
        .collect();
    assert_eq!(valid.len(), 3);
    assert_eq!(valid[0].text("last4"), Some("1111"));
    assert_eq!(valid[0].text("field"), Some("card-number"));
    let brand = records
        .iter()
        .find(|r| r.record.event() == "brand")
        .unwrap();
    assert_eq!(brand.record.text("brand"), Some("visa"));
    // The agent's view: counts, brand, validity, last four — never the card.
    for r in &records {
        let line = r.line.as_deref().unwrap();
        let shown = r
            .record
            .items
            .iter()
            .filter(|(k, _)| !matches!(*k, "enc" | "sealed"))
            .map(|(k, v)| format!("{k}={v:?} "))
            .collect::<String>();
        assert!(!shown.contains("411111") && !shown.contains("0829") && !shown.contains("737"));
        assert!(!line.contains("4111111111"), "{line}");
    }
    assert_eq!(
        s.capture().running(),
        None,
        "the capture ended with the card"
    );
    // Each record says when (media time): the capture took from its start to the last key.
    let (t0, t1) = (
        records[0].record.number("at_ms").unwrap(),
        records.last().unwrap().record.number("at_ms").unwrap(),
    );
    assert!(t1 > t0 + 4_000, "{t0} → {t1} ms");

    // The processor opens the sealed card with its key and the record's own binding.
    let done = &records.last().unwrap().record;
    let sealed = Sealed {
        enc: hex::decode(done.text("enc").unwrap()).unwrap(),
        ciphertext: hex::decode(done.text("sealed").unwrap()).unwrap(),
    };
    let binding = Binding {
        call_id: "call-7".into(),
        capture_id: "pay-1".into(),
        kid: done.text("pkid").unwrap().into(),
    };
    assert_eq!(
        &open(&sealed, &sk, &binding).unwrap()[..],
        b"4111111111111111;0829;737"
    );
    // The token matches the card on file without holding it: HMAC of the card number.
    let expected = {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(&[0x44; 32]).unwrap();
        m.update(b"4111111111111111");
        hex::encode(m.finalize().into_bytes())
    };
    assert_eq!(done.text("token"), Some(expected.as_str()));

    // After the capture, presses are digit events again, on the same numbering.
    let (after, _) = play(&mut s, "5");
    assert_eq!(digits(&after), "5");
    assert_eq!(after[0].event.seq, 4 + records.len() as u64);
    lines.extend(after.iter().map(|e| e.line.clone().unwrap()));
    s.flush_bytes(&mut Vec::new()).unwrap();
    lines.push(s.end_record().unwrap().to_string());

    // Every line verifies, in order, and the end record counts digits and captures.
    let mut v = Verifier::new(vec![key]);
    for l in &lines {
        let ok = v.verify(l).unwrap();
        assert_eq!((ok.gap, ok.broken_chain), (None, false));
    }
    assert_eq!(v.finish(), []);
    let Record::End(end) = Record::parse_payload(payload(lines.last().unwrap())).unwrap() else {
        panic!("the last line is the end record");
    };
    assert_eq!((end.digits, end.captures), (3, records.len() as u64));

    // A capture record removed from the file: the next line breaks the chain, and the end
    // record says a record is missing.
    let mut v = Verifier::new(vec![Key::new("k1", &[9; 32]).unwrap()]);
    let mut broken = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i != 5 && v.verify(l).unwrap().broken_chain {
            broken.push(i);
        }
    }
    assert_eq!(broken, [6]);
    assert_eq!(v.finish().len(), 1, "a missing record is reported");
}

#[test]
fn a_capture_is_refused_when_one_runs_and_ends_cancelled_with_the_call() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (_, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    s.capture().start(request(pk)).unwrap();
    assert!(s.capture().start(request(pk)).is_err(), "one at a time");
    let bad = CaptureRequest {
        id: "bad id with spaces".into(),
        ..request(pk)
    };
    let mut other = session(&key);
    assert!(other.capture().start(bad).is_err());
    let zero = CaptureRequest {
        entropy: [0; 32],
        ..request(pk)
    };
    assert!(other.capture().start(zero).is_err(), "entropy is required");
    let short = CaptureRequest {
        token_key: Some(zeroize::Zeroizing::new(vec![1; 16])),
        ..request(pk)
    };
    assert!(
        other.capture().start(short).is_err(),
        "a token key of 32 bytes at least"
    );

    let (_, records) = play(&mut s, "4111");
    assert_eq!(records.last().unwrap().record.number("count"), Some(4));
    assert!(s.capture().rerequest(Field::CardNumber));
    s.flush_bytes(&mut Vec::new()).unwrap();
    let rest: Vec<CaptureEmitted> = std::iter::from_fn(|| s.poll_capture()).collect();
    assert_eq!(
        events(&rest),
        ["field", "cancelled"],
        "the card number asked again, then the call's end cancels the capture"
    );
}

#[test]
fn a_field_not_typed_in_time_is_refused_on_media_time() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (_, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    let config = CaptureConfig {
        field_timeout_ms: 1_000,
        max_attempts: 1,
        ..CaptureConfig::card(TODAY)
    };
    s.capture()
        .start(CaptureRequest {
            config,
            ..request(pk)
        })
        .unwrap();
    let silence = vec![0xFFu8; 160];
    let mut out = Vec::new();
    for _ in 0..60 {
        s.process_bytes(&silence, &mut out).unwrap();
    }
    let records: Vec<CaptureEmitted> = std::iter::from_fn(|| s.poll_capture()).collect();
    let names = events(&records);
    assert_eq!(names[names.len() - 2..], ["invalid", "failed"], "{names:?}");
    assert_eq!(
        records.last().unwrap().record.text("reason"),
        Some("timeout")
    );
}

fn digits(e: &[Emitted]) -> String {
    e.iter().map(|e| e.event.digit.to_char()).collect()
}

/// The payload of an envelope line.
fn payload(line: &str) -> &str {
    let start = line.find("\"payload\":").unwrap() + "\"payload\":".len();
    &line[start..line.len() - 1]
}

#[test]
fn a_field_times_out_on_host_time_when_the_audio_stops() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (_, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    let mut out = Vec::new();
    // One second of frames with the host's time (ms 0..1000), the capture started at 200 ms
    // of media time with 5 s for the card number and one attempt.
    for i in 0..50u64 {
        if i == 10 {
            s.capture()
                .start(CaptureRequest {
                    config: CaptureConfig {
                        field_timeout_ms: 5_000,
                        max_attempts: 1,
                        ..CaptureConfig::card(TODAY)
                    },
                    ..request(pk)
                })
                .unwrap();
        }
        s.process_bytes_at(i * 20, &[0xFF; 160], &mut out).unwrap();
    }
    // Frames stop after host time 980 (media time 1000): the field is due at media 5200,
    // host 980 + 4200.
    assert_eq!(s.poll_timeout(), Some(5_180));
    s.handle_timeout(3_000).unwrap();
    let early: Vec<CaptureEmitted> = std::iter::from_fn(|| s.poll_capture()).collect();
    assert!(
        !events(&early).contains(&"failed".to_string()),
        "not before"
    );
    s.handle_timeout(5_180).unwrap();
    let late: Vec<CaptureEmitted> = std::iter::from_fn(|| s.poll_capture()).collect();
    assert_eq!(events(&late), ["invalid", "failed"]);
    assert_eq!(late[0].record.text("reason"), Some("timeout"));
    assert_eq!(s.poll_timeout(), None, "nothing waits any more");
}

#[test]
fn a_key_on_the_agents_leg_during_a_capture_is_a_signed_security_record() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (_, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    // No capture: nothing to say.
    assert!(!s.capture().agent_key());
    assert!(s.poll_capture().is_none());
    s.capture().start(request(pk)).unwrap();
    let _ = play(&mut s, "41");
    assert!(s.capture().agent_key());
    let records: Vec<CaptureEmitted> = std::iter::from_fn(|| s.poll_capture()).collect();
    assert_eq!(events(&records), ["agent-dtmf"]);
    let r = &records[0];
    assert_eq!(r.record.capture, "pay-1");
    assert!(r.record.number("at_ms").unwrap() > 0);
    // It verifies like every record, and the capture goes on.
    let mut v = Verifier::new(vec![key]);
    v.verify(s.start_record().unwrap()).unwrap();
    assert!(v.verify(r.line.as_deref().unwrap()).is_ok());
    let (_, more) = play(&mut s, "1");
    assert_eq!(more.last().unwrap().record.number("count"), Some(3));
}

#[test]
fn the_status_of_a_capture_says_where_the_caller_is_without_a_digit() {
    let key = Key::new("k1", &[9; 32]).unwrap();
    let (_, pk) = keypair(&[5; 32]);
    let mut s = session(&key);
    assert_eq!(s.capture().status(), None);
    s.capture().start(request(pk)).unwrap();
    let (id, st) = s.capture().status().unwrap();
    assert_eq!(
        (id.as_str(), st.field, st.index, st.fields),
        ("pay-1", Field::CardNumber, 0, 3)
    );
    assert_eq!((st.attempt, st.count, st.brand), (1, 0, None));
    let _ = play(&mut s, "411111");
    let (_, st) = s.capture().status().unwrap();
    assert_eq!(
        (st.count, st.brand),
        (6, Some(tonemask_core::card::Brand::Visa))
    );
    let _ = play(&mut s, "1111111111#");
    let (_, st) = s.capture().status().unwrap();
    assert_eq!((st.field, st.index, st.count), (Field::Expiry, 1, 0));
    s.capture().cancel();
    assert_eq!(s.capture().status(), None);
}
