//! Capture counters (the KPIs and the fraud signal) from capture records: what a
//! contact-centre dashboard or a metrics endpoint shows. Counted from the records themselves,
//! so the plugin's records stay the one source.

use super::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Counters over any number of capture records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Captures started.
    pub started: u64,
    /// Captures completed (the card sealed).
    pub completed: u64,
    /// Captures cancelled (by the agent, or by the call's end).
    pub cancelled: u64,
    /// Captures failed, by reason (`invalid-card-number`, `timeout`, …).
    pub failed: BTreeMap<String, u64>,
    /// Entries refused and asked again (retries), by reason.
    pub retries: BTreeMap<String, u64>,
    /// Keys seen on the agent's leg while a capture ran (the fraud signal).
    pub agent_keys: u64,
    /// Time from start to completion of each completed capture, ms of media time.
    pub complete_ms: Vec<u64>,
    /// Start time of the capture being counted, per capture id.
    open: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one record of capture `id`, given as its items.
    pub fn add<'a>(&mut self, id: &str, items: impl Iterator<Item = (&'a str, Value<'a>)>) {
        let (mut event, mut reason, mut at) = ("", "", 0);
        for (k, v) in items {
            match (k, v) {
                ("event", Value::Text(t)) => event = t,
                ("reason", Value::Text(t)) => reason = t,
                ("at_ms", Value::Number(n)) => at = n,
                _ => {}
            }
        }
        match event {
            "started" => {
                self.started += 1;
                self.open.insert(id.to_string(), at);
            }
            "completed" => {
                self.completed += 1;
                if let Some(t0) = self.open.remove(id) {
                    self.complete_ms.push(at.saturating_sub(t0));
                }
            }
            "cancelled" => {
                self.cancelled += 1;
                self.open.remove(id);
            }
            "failed" => {
                *self.failed.entry(reason.to_string()).or_default() += 1;
                self.open.remove(id);
            }
            "invalid" => *self.retries.entry(reason.to_string()).or_default() += 1,
            "agent-dtmf" => self.agent_keys += 1,
            _ => {}
        }
    }
}

impl fmt::Display for Tally {
    /// One line: `1 started, 1 completed (14.2 s), 0 cancelled, 0 failed, 1 retry
    /// (invalid-card-number 1), 0 agent keys`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = |m: &BTreeMap<String, u64>| {
            let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        };
        let times: Vec<String> = self
            .complete_ms
            .iter()
            .map(|ms| format!("{:.1} s", *ms as f64 / 1000.0))
            .collect();
        write!(
            f,
            "{} started, {} completed{}, {} cancelled, {} failed{}, {} retr{}{}, {} agent key(s) during a capture",
            self.started,
            self.completed,
            if times.is_empty() {
                String::new()
            } else {
                format!(" ({})", times.join(", "))
            },
            self.cancelled,
            self.failed.values().sum::<u64>(),
            by(&self.failed),
            self.retries.values().sum::<u64>(),
            if self.retries.values().sum::<u64>() == 1 { "y" } else { "ies" },
            by(&self.retries),
            self.agent_keys
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(items: &'a [(&'a str, Value<'a>)]) -> impl Iterator<Item = (&'a str, Value<'a>)> {
        items.iter().copied()
    }

    #[test]
    fn counts_outcomes_retries_times_and_agent_keys() {
        let mut t = Tally::default();
        let ev = |e| ("event", Value::Text(e));
        t.add("a", rec(&[ev("started"), ("at_ms", Value::Number(1000))]));
        t.add("a", rec(&[ev("digits"), ("count", Value::Number(3))]));
        let invalid = [
            ev("invalid"),
            ("reason", Value::Text("invalid-card-number")),
        ];
        t.add("a", rec(&invalid));
        t.add("a", rec(&[ev("agent-dtmf")]));
        t.add(
            "a",
            rec(&[ev("completed"), ("at_ms", Value::Number(15_200))]),
        );
        t.add("b", rec(&[ev("started"), ("at_ms", Value::Number(20_000))]));
        t.add(
            "b",
            rec(&[ev("failed"), ("reason", Value::Text("timeout"))]),
        );
        t.add("c", rec(&[ev("started")]));
        t.add("c", rec(&[ev("cancelled")]));
        assert_eq!(
            (t.started, t.completed, t.cancelled, t.agent_keys),
            (3, 1, 1, 1)
        );
        assert_eq!(t.complete_ms, [14_200]);
        assert_eq!(t.failed.get("timeout"), Some(&1));
        assert_eq!(t.retries.get("invalid-card-number"), Some(&1));
        assert_eq!(
            t.to_string(),
            "3 started, 1 completed (14.2 s), 1 cancelled, 1 failed (timeout 1), 1 retry (invalid-card-number 1), 1 agent key(s) during a capture"
        );
    }
}
