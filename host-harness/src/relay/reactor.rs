//! The relay's event loop: a few worker threads (one per core), each waiting on many legs'
//! sockets with one `epoll` (mio) and running their timers from one heap.
//!
//! A thread per leg cost a context switch per packet and per timer: at a few hundred calls
//! the node spent more time switching than relaying. A worker instead takes every socket
//! that is ready and every timer that fell due in one wake. Both legs of a call live on the
//! same worker (they talk: a key on the agent's leg is noted on the caller's); calls are
//! spread over the workers in turn. A leg whose code panics ends alone — its call reports
//! the error — and the worker goes on with the others.

use super::inbox::Inbox;
use super::leg::{Leg, Next, Pump};
use anyhow::{anyhow, Result};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What is told when a leg ends: its result, or why it failed.
pub(super) type Done = Box<dyn FnOnce(Result<Leg>) + Send>;

/// The legs of one call, to run on one worker.
pub(super) type Job = Vec<(Pump, Done)>;

/// The token the worker's waker signals with (legs count up from 1).
const WAKE: Token = Token(0);

/// The least time between two wakes of a worker: the most a packet waits for the worker
/// beyond its own schedule (the look-ahead's deadlines included). `scripts/bench-serve.sh`,
/// 300 two-way calls: 372 -> 496 calls per core, p99 to the agent 61 -> 63 ms.
pub const BATCH: Duration = Duration::from_millis(1);

/// The workers the process's relays run on.
pub(super) struct Reactor {
    workers: Vec<(Sender<Job>, Arc<Waker>)>,
    next: AtomicUsize,
}

impl Reactor {
    /// The process's reactor: one worker per core, started on first use.
    pub(super) fn shared() -> Result<&'static Reactor> {
        static SHARED: OnceLock<Reactor> = OnceLock::new();
        if let Some(r) = SHARED.get() {
            return Ok(r);
        }
        let n = std::thread::available_parallelism().map_or(2, usize::from);
        let r = Reactor::start(n)?;
        Ok(SHARED.get_or_init(|| r))
    }

    /// `n` workers.
    fn start(n: usize) -> Result<Reactor> {
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
            let (tx, rx) = channel();
            std::thread::Builder::new()
                .name(format!("relay worker {i}"))
                .spawn(move || Worker::new(poll, rx).run())?;
            workers.push((tx, waker));
        }
        Ok(Reactor {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a call's legs until each is over; each one's `Done` is told on the worker.
    pub(super) fn run(&self, job: Job) -> Result<()> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let (tx, waker) = &self.workers[i];
        tx.send(job)
            .map_err(|_| anyhow!("the relay worker has stopped"))?;
        waker.wake()?;
        Ok(())
    }
}

/// A leg on a worker.
struct Entry {
    pump: Pump,
    done: Done,
    /// When it is to be woken (the heap may hold older times for it: those are skipped).
    at: Instant,
}

struct Worker {
    poll: Poll,
    jobs: Receiver<Job>,
    legs: HashMap<usize, Entry>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Legs whose socket may hold more than their last wake took.
    again: Vec<usize>,
    next_token: usize,
    inbox: Inbox,
}

impl Worker {
    fn new(poll: Poll, jobs: Receiver<Job>) -> Worker {
        Worker {
            poll,
            jobs,
            legs: HashMap::new(),
            timers: BinaryHeap::new(),
            again: Vec::new(),
            next_token: 1,
            inbox: Inbox::new(),
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            // Packets that arrive while a worker sleeps wait in their sockets and are taken
            // together at its next wake: at most one wake per `BATCH` instead of one per
            // packet (a context switch each — at a few hundred calls, most of the node's CPU).
            std::thread::sleep(BATCH);
            let timeout = if self.again.is_empty() {
                self.timers
                    .peek()
                    .map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    eprintln!("tonemask relay: worker: waiting for packets: {e}");
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            }
            let mut ready = std::mem::take(&mut self.again);
            for ev in &events {
                if ev.token() == WAKE {
                    self.accept();
                } else {
                    ready.push(ev.token().0);
                }
            }
            for id in ready {
                self.wake(id, true, false);
            }
            let now = Instant::now();
            while let Some(&Reverse((at, id))) = self.timers.peek() {
                if at > now {
                    break;
                }
                self.timers.pop();
                if self.legs.get(&id).is_some_and(|e| e.at == at) {
                    self.wake(id, false, true);
                }
            }
        }
    }

    /// Registers the legs of the calls that arrived; each is woken at once.
    fn accept(&mut self) {
        while let Ok(job) = self.jobs.try_recv() {
            for (mut pump, done) in job {
                let id = self.next_token;
                self.next_token += 1;
                if let Err(e) = register(self.poll.registry(), &mut pump, id) {
                    done(Err(e));
                    continue;
                }
                let at = Instant::now();
                self.legs.insert(id, Entry { pump, done, at });
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    /// One wake of leg `id` (`timer`: its time came, so a new one is always set).
    fn wake(&mut self, id: usize, readable: bool, timer: bool) {
        let Some(e) = self.legs.get_mut(&id) else {
            return;
        };
        let inbox = &mut self.inbox;
        let next = catch_unwind(AssertUnwindSafe(|| e.pump.wake(readable, inbox)));
        let at = match next {
            Ok(Ok(Next::At(at))) => at,
            Ok(Ok(Next::More(at))) => {
                self.again.push(id);
                at
            }
            Ok(Ok(Next::Over)) => return self.end(id, None),
            Ok(Err(err)) => return self.end(id, Some(err)),
            Err(_) => return self.end(id, Some(anyhow!("the leg's relay code panicked"))),
        };
        if timer || at != e.at {
            e.at = at;
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Leg `id` is over (or failed with `err`): finished, and its call told.
    fn end(&mut self, id: usize, err: Option<anyhow::Error>) {
        let Some(mut e) = self.legs.remove(&id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut e.pump.rx);
        let result = match err {
            Some(err) => Err(err),
            None => catch_unwind(AssertUnwindSafe(|| e.pump.finish()))
                .map_err(|_| anyhow!("the leg's relay code panicked")),
        };
        (e.done)(result);
    }
}

fn register(registry: &Registry, pump: &mut Pump, id: usize) -> Result<()> {
    registry.register(&mut pump.rx, Token(id), Interest::READABLE)?;
    Ok(())
}
