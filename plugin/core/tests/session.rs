//! A session end to end in the native core: masking, alignment, bit identity, events.

mod common;

use common::*;
use tonemask_core::{
    CallEnd, Codec, Key, MaskMode, Record, Session, SessionConfig, Signer, Verifier,
};

fn card(rate: f32) -> (Vec<i16>, Vec<(usize, usize)>) {
    let mut b = Vec::new();
    let mut windows = Vec::new();
    push_silence(&mut b, rate, 95.0);
    for d in "4111111111111111".chars() {
        let s = b.len();
        push_tone(&mut b, rate, &Tone::new(d, 65.0));
        windows.push((s, b.len()));
        push_silence(&mut b, rate, 75.0);
    }
    (to_i16(&b), windows)
}

fn run_samples(s: &mut Session, input: &[i16], frame: usize) -> Vec<i16> {
    let mut out = Vec::new();
    for c in input.chunks(frame) {
        s.process_samples(c, &mut out).unwrap();
    }
    s.flush_samples(&mut out).unwrap();
    out.drain(..s.delay_samples());
    out
}

#[test]
fn masks_every_tone_sample_and_nothing_else_at_8_and_16_khz() {
    for rate in [8000u32, 16000] {
        let (input, windows) = card(rate as f32);
        let cfg = SessionConfig {
            sample_rate: rate,
            ..SessionConfig::new("c1", Codec::L16)
        };
        let mut s = Session::new(cfg).unwrap();
        let out = run_samples(&mut s, &input, rate as usize / 50);
        assert_eq!(out.len(), input.len());
        let digits: String = std::iter::from_fn(|| s.poll_event())
            .map(|e| e.event.digit.to_char())
            .collect();
        assert_eq!(digits, "4111111111111111", "{rate} Hz");
        for &(a, b) in &windows {
            assert!(
                out[a..b].iter().all(|&v| v == 0),
                "{rate} Hz: tone at {a}..{b} not fully masked"
            );
        }
        // Outside the tones (and a 2 ms guard each side) the audio is untouched.
        let guard = rate as usize / 500;
        let mut inside = vec![false; input.len()];
        for &(a, b) in &windows {
            inside[a.saturating_sub(guard)..(b + guard).min(input.len())]
                .iter_mut()
                .for_each(|f| *f = true);
        }
        assert!(
            input
                .iter()
                .zip(&out)
                .zip(&inside)
                .all(|((x, y), m)| *m || x == y),
            "{rate} Hz"
        );
    }
}

#[test]
fn g711_audio_outside_tones_keeps_its_exact_bytes() {
    // 0x7F ("negative zero") decodes to 0 and would re-encode as 0xFF: it must pass as 0x7F.
    let mut input = vec![0x7Fu8; 800];
    input.extend((0..800).map(|i| (i % 256) as u8));
    let mut s = Session::new(SessionConfig::new("c1", Codec::Pcmu)).unwrap();
    let mut out = Vec::new();
    for c in input.chunks(160) {
        s.process_bytes(c, &mut out).unwrap();
    }
    s.flush_bytes(&mut out).unwrap();
    assert_eq!(&out[s.delay_samples()..], &input[..]);
}

#[test]
fn events_are_signed_in_sequence_and_verify() {
    let (input, _) = card(8000.0);
    let key = Key::new("k1", &[7; 32]).unwrap();
    let mut cfg = SessionConfig::new("call-9", Codec::L16);
    cfg.settings.signer = Some(Signer::new(key.clone(), [0x5A; 16]).unwrap());
    cfg.settings.mask_mode = MaskMode::Tone;
    let mut s = Session::new(cfg).unwrap();
    run_samples(&mut s, &input, 160);
    let mut v = Verifier::new(vec![key]);
    // The start record opens the numbering and the audit chain.
    let start = v.verify(s.start_record().unwrap()).unwrap();
    assert!(matches!(start.record, Record::Start(_)) && !start.broken_chain);
    let mut n = 0;
    while let Some(e) = s.poll_event() {
        n += 1;
        assert_eq!(e.event.seq, n + 1);
        assert_eq!(e.leaked_samples, 0);
        let ok = v.verify(e.line.as_deref().unwrap()).unwrap();
        assert_eq!(ok.digit(), Some(&e.event));
        assert_eq!((ok.gap, ok.broken_chain), (None, false));
    }
    assert_eq!(n, 16);
    // The flush closed the numbering with a signed end record counting all 16.
    assert!(
        v.finish().len() == 1,
        "the call has not ended before its end record"
    );
    let end = v.verify(s.end_record().unwrap()).unwrap();
    assert!(matches!(
        end.record,
        Record::End(CallEnd {
            seq: 18,
            digits: 16,
            ..
        })
    ));
    assert_eq!(v.finish(), []);
}

#[test]
fn frame_size_does_not_change_the_result() {
    let (input, _) = card(8000.0);
    let reference = run_samples(
        &mut Session::new(SessionConfig::new("c", Codec::L16)).unwrap(),
        &input,
        160,
    );
    for frame in [1, 7, 80, 333, 8000] {
        let out = run_samples(
            &mut Session::new(SessionConfig::new("c", Codec::L16)).unwrap(),
            &input,
            frame,
        );
        assert_eq!(out, reference, "frame {frame}");
    }
}

#[test]
fn tones_too_far_off_to_report_are_still_masked() {
    // 697 Hz 3 % low: Q.24 says a receiver must not report it (and tonemask does not), but a
    // looser receiver would (spandsp answers down to −3.7 % on this tone); so it is masked.
    let mut b = Vec::new();
    push_silence(&mut b, 8000.0, 60.0);
    let start = b.len();
    push_tone(
        &mut b,
        8000.0,
        &Tone {
            row_dev: -0.03,
            ..Tone::new('2', 80.0)
        },
    );
    let end = b.len();
    push_silence(&mut b, 8000.0, 100.0);
    let input = to_i16(&b);
    let mut s = Session::new(SessionConfig::new("c", Codec::L16)).unwrap();
    let out = run_samples(&mut s, &input, 160);
    assert!(s.poll_event().is_none(), "a 3 % tone must not be reported");
    assert!(
        out[start..end].iter().all(|&v| v == 0),
        "the 3 % tone must be masked"
    );
    assert!(out[..start - 16].iter().zip(&input).all(|(a, b)| a == b));
}

#[test]
fn aligned_output_is_the_stream_output_without_the_delay_lines_fill() {
    // The same call through a streaming session (frames out as long as frames in, delayed)
    // and an aligned one (the look-ahead's fill withheld): the aligned output is exactly the
    // input's length and equals the stream's output after its first look-ahead's worth.
    let (input, _) = card(8000.0);
    let run = |output: tonemask_core::Output, frame: usize| {
        let mut s = Session::new(SessionConfig {
            output,
            ..SessionConfig::new("c1", Codec::L16)
        })
        .unwrap();
        let mut out = Vec::new();
        let mut lengths = Vec::new();
        for c in input.chunks(frame) {
            let before = out.len();
            s.process_samples(c, &mut out).unwrap();
            lengths.push(out.len() - before);
        }
        s.flush_samples(&mut out).unwrap();
        (out, lengths, s.delay_samples())
    };
    let (stream, stream_lengths, delay) = run(tonemask_core::Output::Stream, 160);
    let chunks: Vec<usize> = input.chunks(160).map(<[i16]>::len).collect();
    assert_eq!(
        stream_lengths, chunks,
        "a stream frame out is as long as the frame in"
    );
    assert_eq!(stream.len(), input.len() + delay);
    for frame in [160, 37, 1000] {
        let (aligned, lengths, _) = run(tonemask_core::Output::Aligned, frame);
        assert_eq!(aligned.len(), input.len(), "frame {frame}");
        assert_eq!(aligned, stream[delay..], "frame {frame}");
        assert!(
            lengths[0] < frame.min(input.len()),
            "the fill is withheld at the start"
        );
    }
}

/// A live host whose frames stop in the middle of a press: `handle_timeout` reports the press
/// with no further frame; when frames resume with the same tone it stays masked and is not
/// reported twice; the next press is reported as usual.
#[test]
fn a_press_completes_on_handle_timeout_when_frames_stop() {
    let rate = 8000.0;
    let mut b = Vec::new();
    push_silence(&mut b, rate, 200.0);
    push_tone(&mut b, rate, &Tone::new('5', 300.0));
    let before = to_i16(&b);
    let mut b = Vec::new();
    push_tone(&mut b, rate, &Tone::new('5', 100.0));
    push_silence(&mut b, rate, 200.0);
    push_tone(&mut b, rate, &Tone::new('7', 80.0));
    push_silence(&mut b, rate, 200.0);
    let after = to_i16(&b);

    let mut s = Session::new(SessionConfig::new("c1", Codec::L16)).unwrap();
    let mut out = Vec::new();
    assert_eq!(s.poll_timeout(), None, "no frame with a time yet");
    let mut now = 1_000;
    for c in before.chunks(160) {
        s.process_samples_at(now, c, &mut out).unwrap();
        now += 20;
    }
    let last = now - 20;
    assert!(s.poll_event().is_none(), "the press is still on");
    let due = s.poll_timeout().expect("a press is on: a deadline");
    assert_eq!(
        due,
        last + 60 + 100,
        "look-ahead + 100 ms after the last frame"
    );
    s.handle_timeout(due - 1).unwrap();
    assert!(s.poll_event().is_none(), "not due yet");
    s.handle_timeout(due).unwrap();
    let e = s
        .poll_event()
        .expect("the press completes with no further frame");
    assert_eq!(e.event.digit.to_char(), '5');
    assert!((195..=205).contains(&e.event.start_ms), "{:?}", e.event);
    assert_eq!(e.event.end_ms, 500, "ends at the last sample received");
    assert_eq!(s.poll_timeout(), None, "nothing waits once it is reported");

    // Frames resume 2 s later: the rest of the tone is masked, not reported again.
    now += 2_000;
    let from = out.len();
    for c in after.chunks(160) {
        s.process_samples_at(now, c, &mut out).unwrap();
        now += 20;
    }
    s.flush_samples(&mut out).unwrap();
    let resumed = &out[from + s.delay_samples()..from + s.delay_samples() + 800];
    assert!(
        resumed.iter().all(|&v| v == 0),
        "the rest of the tone stays masked"
    );
    let rest: String = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.event.digit.to_char())
        .collect();
    assert_eq!(
        rest, "7",
        "the cut press is not reported again; the next one is"
    );
}

#[test]
fn hidden_and_sealed_digits_leave_only_as_press_records() {
    use tonemask_core::card::seal::{keypair, open_bytes, Binding, Sealed};
    use tonemask_core::card::ProcessorKey;
    use tonemask_core::event::PressRecord;
    use tonemask_core::DigitVisibility;
    let (input, _) = card(8000.0);
    let digits = "4111111111111111";
    let key = Key::new("k1", &[7; 32]).unwrap();
    let (sk, pk) = keypair(&[2; 32]);
    for visibility in [
        DigitVisibility::Hidden,
        DigitVisibility::Sealed {
            processor: ProcessorKey {
                kid: "proc".into(),
                public: pk,
            },
            entropy: zeroize::Zeroizing::new([0x66; 32]),
        },
    ] {
        let sealed = matches!(visibility, DigitVisibility::Sealed { .. });
        let mut cfg = SessionConfig::new("call-h", Codec::L16);
        cfg.settings.signer = Some(Signer::new(key.clone(), [0x5A; 16]).unwrap());
        cfg.settings.digits = visibility;
        let mut s = Session::new(cfg).unwrap();
        run_samples(&mut s, &input, 160);
        let mut v = Verifier::new(vec![key.clone()]);
        let mut opened = String::new();
        while let Some(e) = s.poll_event() {
            assert!(!e.digit_visible);
            let line = e.line.as_deref().unwrap();
            assert!(!line.contains("\"digit\""), "{line}");
            let Record::Press(p) = v.verify(line).unwrap().record else {
                panic!("a press record: {line}");
            };
            assert_eq!(p.seq, e.event.seq);
            assert_eq!(p.start_ms, e.event.start_ms);
            assert_eq!(p.sealed.is_some(), sealed);
            if let Some(d) = p.sealed {
                let b = Binding {
                    call_id: "call-h".into(),
                    capture_id: PressRecord::binding_id(p.seq),
                    kid: d.pkid.clone(),
                };
                let sealed = Sealed {
                    enc: hex::decode(&d.enc).unwrap(),
                    ciphertext: hex::decode(&d.sealed).unwrap(),
                };
                opened.push(open_bytes(&sealed, &sk, &b).unwrap()[0] as char);
                // Bound to its record: under another seq it does not open.
                let other = Binding {
                    capture_id: PressRecord::binding_id(p.seq + 1),
                    ..b
                };
                assert!(open_bytes(&sealed, &sk, &other).is_err());
            }
        }
        v.verify(s.end_record().unwrap()).unwrap();
        assert_eq!(v.finish(), [], "whole, the press records counted as digits");
        if sealed {
            assert_eq!(opened, digits, "the processor opens every digit");
        }
    }
}

/// Everything a session reports, in order: its events (digit, times, source, leak, signed
/// line) and its end record.
fn reported(s: &mut Session) -> (Vec<String>, Option<String>) {
    let mut events = Vec::new();
    while let Some(e) = s.poll_event() {
        events.push(format!(
            "{:?} leak {} line {:?}",
            e.event, e.leaked_samples, e.line
        ));
    }
    (events, s.end_record().map(String::from))
}

#[test]
fn detecting_only_reports_exactly_what_processing_reports_and_nothing_comes_out() {
    let (pcm, _) = card(8000.0);
    let ulaw: Vec<u8> = pcm
        .iter()
        .map(|&v| tonemask_core::g711::linear_to_ulaw(v))
        .collect();
    let key = Key::new("k1", &[7; 32]).unwrap();
    // Signed and unsigned, masking or not, and a look-ahead so short that onsets leak (the
    // leak is counted the same way when nothing leaves).
    for (codec, mode, ms, signed) in [
        (Codec::L16, MaskMode::Off, 60, false),
        (Codec::L16, MaskMode::Tone, 5, true),
        (Codec::Pcmu, MaskMode::Silence, 60, true),
        (Codec::Pcmu, MaskMode::Off, 0, false),
    ] {
        let session = || {
            let mut cfg = SessionConfig::new("call-d", codec);
            cfg.settings.mask_mode = mode;
            cfg.settings.lookahead = tonemask_core::Lookahead::from_ms(ms);
            if signed {
                cfg.settings.signer = Some(Signer::new(key.clone(), [0x5A; 16]).unwrap());
            }
            Session::new(cfg).unwrap()
        };
        let (mut processed, mut detected) = (session(), session());
        let mut out = Vec::new();
        for (i, frame) in [160usize, 7, 1000].iter().cycle().enumerate().take(10_000) {
            let at = i * 389 % pcm.len();
            let end = (at + frame).min(pcm.len());
            if codec == Codec::L16 {
                processed
                    .process_samples(&pcm[at..end], &mut Vec::new())
                    .unwrap();
                detected.detect_samples(&pcm[at..end]).unwrap();
            } else {
                processed.process_bytes(&ulaw[at..end], &mut out).unwrap();
                detected.detect_bytes(&ulaw[at..end]).unwrap();
            }
        }
        let mut rest = Vec::new();
        if codec == Codec::L16 {
            let mut rest16 = Vec::new();
            detected.flush_samples(&mut rest16).unwrap();
            assert!(
                rest16.is_empty(),
                "a detecting session's flush gives no audio"
            );
            processed.flush_samples(&mut Vec::new()).unwrap();
        } else {
            detected.flush_bytes(&mut rest).unwrap();
            assert!(
                rest.is_empty(),
                "a detecting session's flush gives no audio"
            );
            processed.flush_bytes(&mut out).unwrap();
        }
        let want = reported(&mut processed);
        assert!(want.0.len() >= 16, "{codec:?} {mode:?}: {:?}", want.0);
        if ms < 10 && mode != MaskMode::Off {
            assert!(want.0.iter().any(|e| !e.contains("leak 0 ")), "{want:?}");
        }
        assert_eq!(reported(&mut detected), want, "{codec:?} {mode:?} {ms} ms");
    }
}

#[test]
fn a_session_detects_only_or_processes_and_cannot_switch() {
    let (pcm, _) = card(8000.0);
    let mut s = Session::new(SessionConfig::new("c", Codec::L16)).unwrap();
    s.detect_samples(&pcm[..160]).unwrap();
    let e = s
        .process_samples(&pcm[160..320], &mut Vec::new())
        .unwrap_err();
    assert!(e.to_string().contains("cannot switch"), "{e}");
    s.detect_samples(&pcm[160..320]).unwrap();
    let mut s = Session::new(SessionConfig::new("c", Codec::Pcmu)).unwrap();
    s.process_bytes(&[0xFF; 160], &mut Vec::new()).unwrap();
    assert!(s.detect_bytes(&[0xFF; 160]).is_err());
    // The usual refusals hold for detection too.
    assert!(s.detect_samples(&pcm[..10]).is_err());
    s.flush_bytes(&mut Vec::new()).unwrap();
    let mut d = Session::new(SessionConfig::new("c", Codec::Pcmu)).unwrap();
    d.flush_bytes(&mut Vec::new()).unwrap();
    assert!(
        d.detect_bytes(&[0xFF; 160]).is_err(),
        "detecting after the flush"
    );
}
