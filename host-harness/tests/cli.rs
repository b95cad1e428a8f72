//! The `tonemask` CLI end to end: the real component in wasmtime on the committed test calls.

mod common;

use common::*;
use serde_json::Value;
use tonemask_harness::replay::load_manifest;
use tonemask_harness::wav::Wav;

fn detect(name: &str) -> Vec<Value> {
    let o = tonemask(&["detect", calls().join(name).to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn digits(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e["digit"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn detect_prints_each_digit_with_times_in_the_input_timeline() {
    let m = load_manifest(&calls().join("all16_-10dbm0.json")).unwrap();
    let ev = detect("all16_-10dbm0.wav");
    assert_eq!(digits(&ev), m.digits);
    for (e, t) in ev.iter().zip(&m.tones) {
        let (s, end) = (
            e["start_ms"].as_i64().unwrap(),
            e["end_ms"].as_i64().unwrap(),
        );
        assert!(
            (s - t.start_ms as i64).abs() <= 13,
            "start {s} vs {}",
            t.start_ms
        );
        assert!(
            (end - t.end_ms as i64).abs() <= 13,
            "end {end} vs {}",
            t.end_ms
        );
    }
}

#[test]
fn ulaw_and_alaw_give_the_same_digits_as_pcm() {
    for base in ["all16_-10dbm0", "card_visa_-3dbm0", "speech_then_card"] {
        let pcm = detect(&format!("{base}.wav"));
        for law in ["ulaw", "alaw"] {
            let g = detect(&format!("{base}_{law}.wav"));
            assert_eq!(digits(&g), digits(&pcm), "{base} {law}");
        }
    }
}

#[test]
fn speech_alone_gives_no_digit() {
    for lang in ["en", "de", "fr"] {
        assert_eq!(
            detect(&format!("speech_only_{lang}.wav")),
            Vec::<Value>::new(),
            "{lang}"
        );
    }
}

/// Longest run of consecutive samples inside `window` left as they were (unmasked).
fn longest_unchanged_run(input: &[i16], output: &[i16], window: std::ops::Range<usize>) -> usize {
    let (mut best, mut run) = (0, 0);
    for i in window {
        if input[i] != 0 && input[i] == output[i] {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[test]
fn mask_writes_aligned_audio_masking_only_the_tones_and_signed_events() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1", 0x42);
    for name in [
        "speech_then_card",
        "speech_then_card_ulaw",
        "fast_10cps",
        "card_amex_-30dbm0",
    ] {
        let m = load_manifest(&calls().join(format!("{name}.json"))).unwrap();
        let input_path = calls().join(m.audio.as_ref().unwrap());
        let out_path = dir.path().join(format!("{name}.masked.wav"));
        mask_ok(&input_path, &out_path, &key, &[]);
        let input = Wav::parse(&std::fs::read(&input_path).unwrap()).unwrap();
        let output = Wav::parse(&std::fs::read(&out_path).unwrap()).unwrap();
        assert_eq!(
            (output.format, output.sample_rate, output.len()),
            (input.format, input.sample_rate, input.len())
        );

        // Events: signed, verifiable, one per expected digit.
        let events_path = out_path.with_extension("events.jsonl");
        let v = tonemask(&[
            "verify",
            events_path.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert!(v.status.success(), "{}", stdout(&v));
        let reported: Vec<(usize, usize)> = std::fs::read_to_string(&events_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            // Digit records; the last line is the end-of-call record.
            .filter(|e| e["payload"]["digit"].is_string())
            .map(|e| {
                let ms = |k: &str| e["payload"][k].as_u64().unwrap() as usize * 8;
                (ms("start_ms"), ms("end_ms"))
            })
            .collect();
        assert_eq!(reported.len(), m.digits.len(), "{name}");

        // Outside the reported windows (±1 sample for ms rounding) the bytes are identical.
        let width = input.data.len() / input.len();
        let mut inside = vec![false; input.len()];
        for &(s, e) in &reported {
            for f in inside
                .iter_mut()
                .take((e + 8).min(input.len()))
                .skip(s.saturating_sub(8))
            {
                *f = true;
            }
        }
        let pairs = input.data.chunks(width).zip(output.data.chunks(width));
        for (i, ((a, b), masked)) in pairs.zip(&inside).enumerate() {
            if !masked {
                assert_eq!(a, b, "{name} sample {i}");
            }
        }

        // Inside each true tone window no fragment longer than 5 ms (40 samples) survives.
        let (a, b) = (input.linear(), output.linear());
        for t in &m.tones {
            let w = (t.start_ms as usize * 8)..(t.end_ms as usize * 8).min(a.len());
            let run = longest_unchanged_run(&a, &b, w);
            assert!(run <= 40, "{name}: digit {} keeps {run} samples", t.digit);
            assert_eq!(
                run, 0,
                "{name}: digit {} keeps {run} samples at the default look-ahead",
                t.digit
            );
        }
    }
}

#[test]
fn verify_rejects_tampered_forged_replayed_and_reordered_events() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1", 0x42);
    let other = key_file(dir.path(), "k1other", 0x43);
    let out = dir.path().join("m.wav");
    let input = calls().join("card_visa_-3dbm0.wav");
    let o = tonemask(&[
        "mask",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = std::fs::read_to_string(out.with_extension("events.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // The start-of-call record, 16 digits and the end-of-call record.
    assert_eq!(lines.len(), 18);
    assert!(lines[0].contains("\"start_of_call\":{"), "{}", lines[0]);
    assert!(
        lines[17].contains("\"end_of_call\":{\"digits\":16}"),
        "{}",
        lines[17]
    );

    let check = |name: &str, text: String, key: &std::path::Path, expect: &str| {
        let p = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&p, text).unwrap();
        let v = tonemask(&[
            "verify",
            p.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert_eq!(v.status.code(), Some(1), "{name}: {}", stdout(&v));
        assert!(stdout(&v).contains(expect), "{name}: {}", stdout(&v));
    };
    // The first digit of 4111... changed to 5.
    check(
        "altered",
        lines[1].replacen("\"digit\":\"4\"", "\"digit\":\"5\"", 1) + "\n",
        &key,
        "MAC mismatch",
    );
    check(
        "altered_time",
        lines[2].replacen("\"start_ms\":", "\"start_ms\":1", 1) + "\n",
        &key,
        "MAC mismatch",
    );
    check("wrong_key", lines.join("\n"), &other, "unknown key id");
    // Same key id, another secret: a forger who knows the format but not the key.
    let forged = dir.path().join("forged.key");
    write_private(&forged, format!("k1 {}\n", hex::encode([0x99u8; 32])));
    check("forged", lines.join("\n"), &forged, "MAC mismatch");
    check(
        "replayed",
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[1]),
        &key,
        "replayed",
    );
    check(
        "reordered",
        format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]),
        &key,
        "out-of-order",
    );

    // A gap: the records there are accepted, the gap reported, the file is not whole.
    check(
        "gap",
        format!("{}\n{}\n{}\n", lines[0], lines[3], lines[16]),
        &key,
        "missing seq 2..=3",
    );
    // The audit chain: a digit removed from the middle, or the call's start record
    // removed, shows at the line after it.
    let without = |i: usize| {
        let mut l = lines.clone();
        l.remove(i);
        l.join("\n")
    };
    check("removed", without(5), &key, "line 6: CHAIN BROKEN");
    check("no_start", without(0), &key, "line 1: CHAIN BROKEN");
    // Cut: the tail (and with it the end record) dropped.
    check("cut", lines[..10].join("\n"), &key, "no end-of-call record");
    // Empty.
    check("empty", String::new(), &key, "holds no event");
    // Two runs under the same call id spliced into one file.
    let again = dir.path().join("m2.wav");
    let o = tonemask(&[
        "mask",
        input.to_str().unwrap(),
        again.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--call-id",
        "same",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tonemask(&[
        "mask",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--call-id",
        "same",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = std::fs::read_to_string(again.with_extension("events.jsonl")).unwrap();
    let second = std::fs::read_to_string(out.with_extension("events.jsonl")).unwrap();
    let second: Vec<&str> = second.lines().collect();
    let first: Vec<&str> = first.lines().collect();
    check(
        "spliced",
        [&first[..8], &second[8..]].concat().join("\n"),
        &key,
        "spliced",
    );

    // The whole file verifies, and its digits are not printed unless asked for.
    let whole = out.with_extension("events.jsonl");
    let v = tonemask(&[
        "verify",
        whole.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(stdout(&v).contains("— whole"), "{}", stdout(&v));
    assert!(!stdout(&v).contains("digit 4"), "{}", stdout(&v));
    let v = tonemask(&[
        "verify",
        whole.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--show-digits",
    ]);
    assert!(stdout(&v).contains("digit 4"), "{}", stdout(&v));
}

/// Every bad input gives a one-line error naming the problem and exit code 1 — no panic.
#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1", 0x42);
    let good = std::fs::read(calls().join("fast_10cps.wav")).unwrap();
    let mut stereo = good.clone();
    stereo[22] = 2;
    let mut cd = good.clone();
    cd[24..28].copy_from_slice(&44100u32.to_le_bytes());
    let mut eight_bit = good.clone();
    eight_bit[34] = 8;
    let mut two_data = good.clone();
    two_data.extend_from_slice(b"data\x04\0\0\0\x01\x02\x03\x04");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.wav",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        ("stereo.wav", stereo, "2 channels"),
        ("cd.wav", cd, "44100 Hz"),
        ("empty.wav", vec![], "empty"),
        ("eight.wav", eight_bit, "8-bit PCM"),
        ("text.wav", b"not a wave file at all".to_vec(), "not a WAV"),
        ("two_data.wav", two_data, "second data chunk"),
    ];
    for (name, bytes, expect) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        for args in [
            vec!["detect", p.to_str().unwrap()],
            vec![
                "mask",
                p.to_str().unwrap(),
                "/tmp/never.wav",
                "--key",
                key.to_str().unwrap(),
            ],
        ] {
            let o = tonemask(&args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{name}: {err}");
            assert!(err.contains(expect), "{name}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{name}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
    }
    // Short key, key file others can read, missing key file, missing input, output or
    // events over input, events over output, absurd durations.
    let short = dir.path().join("short.key");
    write_private(&short, format!("k1 {}\n", "ab".repeat(16)));
    let open_key = dir.path().join("open.key");
    std::fs::write(&open_key, format!("k1 {}\n", "ab".repeat(32))).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let relay = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "relay",
            "--caller-bind",
            "127.0.0.1:0",
            "--agent-bind",
            "127.0.0.1:0",
            "--agent",
            "127.0.0.1:9",
            "--events",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(dir.path().join("relay.jsonl").display().to_string());
        v.push("--key".into());
        v.push(key.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let relay_huge = relay(&["--max-s", "1e30"]);
    let relay_nan = relay(&["--idle-s", "NaN"]);
    let input = calls().join("fast_10cps.wav");
    let out = dir.path().join("o.wav");
    for (args, expect) in [
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                short.to_str().unwrap(),
            ],
            "at least 32 bytes",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                "/nonexistent.key",
            ],
            "cannot read key file",
        ),
        (
            vec!["detect", "/nonexistent.wav"],
            "cannot read /nonexistent.wav",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                open_key.to_str().unwrap(),
            ],
            "chmod 600",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--events",
                input.to_str().unwrap(),
            ],
            "choose another path",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--events",
                out.to_str().unwrap(),
            ],
            "choose another path",
        ),
        (
            relay_huge.iter().map(String::as_str).collect(),
            "--max-s must be",
        ),
        (
            relay_nan.iter().map(String::as_str).collect(),
            "--idle-s must be",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                input.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
            "is the input file",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--lookahead-ms",
                "900",
            ],
            "lookahead_ms is out of range",
        ),
        (
            vec![
                "mask",
                input.to_str().unwrap(),
                out.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--call-id",
                "bad id!",
            ],
            "call id",
        ),
    ] {
        let o = tonemask(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "nothing is written on error: {args:?}");
    }
    // The input is untouched by a refused run.
    assert_eq!(std::fs::read(&input).unwrap(), good);
    // No plugin is taken from the working directory: a `target/tonemask-plugin.wasm`
    // planted there is never loaded (the default is next to the executable).
    let planted = dir.path().join("target");
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::write(planted.join("tonemask-plugin.wasm"), b"\0asm planted").unwrap();
    let exe_dir_plugin = std::path::Path::new(env!("CARGO_BIN_EXE_tonemask"))
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("tonemask-plugin.wasm");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .current_dir(dir.path())
        .env_remove("TONEMASK_PLUGIN")
        .args(["detect", input.to_str().unwrap()])
        .output()
        .unwrap();
    // The planted file is no plugin: loading it would fail. The run succeeds on the plugin
    // next to the executable (or, where there is none, fails without naming the planted one).
    if exe_dir_plugin.exists() {
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 10, "{}", stdout(&o));
    } else {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(!stderr(&o).contains("planted"), "{}", stderr(&o));
    }
    // A missing plugin names the build command.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .args([
            "--plugin",
            "/nonexistent.wasm",
            "detect",
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cargo xtask plugin"), "{}", stderr(&o));
}

#[test]
fn replay_passes_the_test_calls_and_fails_a_wrong_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let o = tonemask(&[
        "replay",
        calls().to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let report: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(reports.join("report.json")).unwrap())
            .unwrap();
    assert!(report.len() >= 17);
    assert!(std::fs::read_to_string(reports.join("junit.xml"))
        .unwrap()
        .contains("failures=\"0\""));

    // A manifest claiming other digits fails, and the run exits 1.
    let wrong = dir.path().join("wrong.json");
    let audio = calls().join("fast_10cps.wav");
    std::fs::write(
        &wrong,
        serde_json::json!({"audio": audio, "digits": "0123456780"}).to_string(),
    )
    .unwrap();
    let o = tonemask(&[
        "replay",
        wrong.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL") && stdout(&o).contains("expected \"0123456780\""),
        "{}",
        stdout(&o)
    );
    assert!(std::fs::read_to_string(reports.join("junit.xml"))
        .unwrap()
        .contains("<failure"));
}

#[test]
fn keygen_makes_a_key_file_that_mask_and_verify_accept() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let o = tonemask(&[
        "keygen",
        "--kid",
        "pbx-2026",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A key file is never overwritten.
    let again = tonemask(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    let text = std::fs::read(&key).unwrap();
    let out = dir.path().join("o.wav");
    let input = calls().join("fast_10cps_.wav".replace("_.", "."));
    let m = tonemask(&[
        "mask",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--mode",
        "tone",
    ]);
    assert!(m.status.success(), "{}", stderr(&m));
    let v = tonemask(&[
        "verify",
        out.with_extension("events.jsonl").to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(v.status.success());
    assert!(
        stdout(&v).contains("10 accepted, 0 rejected"),
        "{}",
        stdout(&v)
    );
    // The key never appears in anything the commands print.
    let secret = String::from_utf8_lossy(&text)
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    for out in [stderr(&m), stdout(&m), stdout(&v), stderr(&v)] {
        assert!(!out.contains(&secret));
    }
}

#[test]
fn capture_shows_the_agent_no_card_digit_and_open_recovers_the_sealed_card() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let key = key_file(dir.path(), "k1", 7);
    let o = tonemask(&[
        "keygen",
        "--processor",
        "--kid",
        "proc-1",
        "--out",
        &p("proc.key"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let call = calls().join("capture_card_corrected.json");
    let m = load_manifest(&call).unwrap();
    let truth = m.card_capture.unwrap();
    let at = format!("{}", truth.at_ms as f64 / 1000.0);
    let wav = calls().join("capture_card_corrected.wav");
    let args = |events: &str| {
        vec![
            "capture".to_string(),
            wav.to_str().unwrap().to_string(),
            "--processor-key".into(),
            p("proc.key.pub"),
            "--key".into(),
            key.to_str().unwrap().into(),
            "--events".into(),
            p(events),
            "--at".into(),
            at.clone(),
            "--today".into(),
            "2026-12".into(),
        ]
    };
    let run = |a: Vec<String>| tonemask(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let c = run(args("rec.jsonl"));
    assert!(c.status.success(), "{}", stderr(&c));
    let view = stdout(&c);
    assert!(
        view.contains("last4=1111") && view.contains("completed brand=visa"),
        "{view}"
    );
    assert!(
        view.contains("cleared field=card-number"),
        "the correction shows: {view}"
    );
    for digits in ["41111", "0829", "737"] {
        assert!(!view.contains(digits), "the agent sees {digits}: {view}");
    }
    let records = std::fs::read_to_string(p("rec.jsonl")).unwrap();
    assert!(
        !records.contains("41111111"),
        "no card number in clear in the records"
    );

    let open = |events: &str| {
        tonemask(&[
            "open",
            &p(events),
            "--processor-private",
            &p("proc.key"),
            "--key",
            key.to_str().unwrap(),
        ])
    };
    let o = open("rec.jsonl");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("card 4111111111111111 expiry 0829 code 737 (visa)"),
        "{}",
        stdout(&o)
    );

    // A record removed, or the sealed card altered: open refuses (exit 1).
    let lines: Vec<&str> = records.lines().collect();
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    write_private(&dir.path().join("removed.jsonl"), removed);
    assert_eq!(open("removed.jsonl").status.code(), Some(1));
    let last = lines.len() - 2;
    let tampered: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = if i == last {
                let at = l.find("\"sealed\":\"").unwrap() + 12;
                let flip = if &l[at..=at] == "0" { "1" } else { "0" };
                format!("{}{flip}{}", &l[..at], &l[at + 1..])
            } else {
                l.to_string()
            };
            format!("{l}\n")
        })
        .collect();
    write_private(&dir.path().join("tampered.jsonl"), tampered);
    let t = open("tampered.jsonl");
    assert_eq!(t.status.code(), Some(1), "{}", stdout(&t));

    // Another processor's private key does not open it.
    let o = tonemask(&[
        "keygen",
        "--processor",
        "--kid",
        "proc-1",
        "--out",
        &p("other.key"),
    ]);
    assert!(o.status.success());
    let w = tonemask(&[
        "open",
        &p("rec.jsonl"),
        "--processor-private",
        &p("other.key"),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(w.status.code(), Some(1));
    assert!(stdout(&w).contains("does not open"), "{}", stdout(&w));
}

/// `detect` into a pipe whose reader has gone (`tonemask detect … | head -1` once `head` is
/// done): the lines stop quietly — no error message, the run's own exit status — for a
/// recording and for a capture alike.
#[test]
fn detect_into_a_closed_pipe_ends_quietly() {
    let wav = calls().join("fast_10cps.wav");
    let pcap = root().join("testdata/captures/capture_inband_ipv4.pcap");
    for input in [wav, pcap] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // every write now fails with a broken pipe
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tonemask"))
            .arg("--plugin")
            .arg(plugin_path())
            .args(["detect", input.to_str().unwrap()])
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!err.contains("error"), "{}: {err}", input.display());
        assert!(
            matches!(o.status.code(), Some(0 | 3)),
            "{}: {err}",
            input.display()
        );
    }
}
