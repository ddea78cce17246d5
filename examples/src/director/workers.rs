//! dr-director's workers: each a thread that owns a [`Director`] and its backend ([`Io`]:
//! an `AF_PACKET` ring or an `AF_XDP` socket) and drives them, taking jobs (control
//! commands, reloads, health changes, listings) between batches. With several workers on
//! `AF_PACKET` the rings share a `PACKET_FANOUT` group whose program picks the worker from
//! the IP addresses, so every packet of a flow (each fragment included, none reassembled)
//! reaches the same worker; on `AF_XDP` each worker has one receive queue of the interface.

use crate::backend::Io;
use dr_core::{Director, Driver, DriverOptions, FrameIo, Instant};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Work for a worker, run on its thread between two batches.
pub type Job = Box<dyn FnOnce(&mut Director, &mut Io) + Send>;

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    jobs: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<Director>>,
    stop: Arc<AtomicBool>,
    /// The first error a worker could not go on after; all workers stop on it.
    failure: Arc<Mutex<Option<String>>>,
}

fn work(
    mut director: Director,
    mut io: Io,
    jobs: Receiver<Job>,
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    options: DriverOptions,
    sync: Option<UdpSocket>,
) -> Director {
    let mut driver = Driver::new(options);
    while !stop.load(Ordering::Relaxed) {
        while let Ok(job) = jobs.try_recv() {
            job(&mut director, &mut io);
        }
        if let Some(socket) = &sync {
            crate::sync::send_ready(&mut director, io.now(), socket);
        }
        match driver.step(&mut director, &mut io) {
            Ok(_) => {}
            Err(e) if e.is_fatal() => {
                // Not logged here: the director stops and reports it once, as it exits.
                if let Ok(mut failure) = failure.lock() {
                    failure.get_or_insert_with(|| e.to_string());
                }
                stop.store(true, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
    director
}

impl Workers {
    /// One thread per `(director, ring)` pair; with `sync`, a socket per worker that the
    /// worker sends its director's sync messages on, after every batch.
    ///
    /// # Errors
    ///
    /// When a thread cannot be started.
    pub fn start(
        parts: Vec<(Director, Io)>,
        options: DriverOptions,
        mut sync: Vec<UdpSocket>,
    ) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for (i, (director, io)) in parts.into_iter().enumerate() {
            let (tx, rx) = channel();
            let (stop, failure) = (Arc::clone(&stop), Arc::clone(&failure));
            let socket = (!sync.is_empty()).then(|| sync.remove(0));
            let thread = std::thread::Builder::new()
                .name(format!("worker {i}"))
                .spawn(move || work(director, io, rx, stop, failure, options, socket))
                .map_err(|e| format!("starting worker {i}: {e}"))?;
            jobs.push(tx);
            threads.push(thread);
        }
        Ok(Self { jobs, threads, stop, failure })
    }

    /// Where to send each worker jobs without waiting for an answer.
    pub fn job_senders(&self) -> Vec<Sender<Job>> {
        self.jobs.clone()
    }

    /// How many workers run.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Runs `f` on every worker (with its index) and returns the results in worker order;
    /// a worker that does not answer within five seconds gives `None`.
    pub fn each<T: Send + 'static>(
        &self,
        f: impl Fn(usize, &mut Director, &mut Io) -> T + Send + Sync + 'static,
    ) -> Vec<Option<T>> {
        let f = Arc::new(f);
        let replies: Vec<_> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(i, jobs)| {
                let (tx, rx) = channel();
                let f = Arc::clone(&f);
                let job: Job = Box::new(move |d, io| {
                    let _ = tx.send(f(i, d, io));
                });
                jobs.send(job).ok().map(|()| rx)
            })
            .collect();
        replies
            .into_iter()
            .map(|rx| rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(5)).ok()))
            .collect()
    }

    /// The error a worker stopped on, if one did (then all have stopped).
    pub fn failure(&self) -> Option<String> {
        if !self.stop.load(Ordering::Relaxed) {
            return None;
        }
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Stops every worker and returns their directors.
    pub fn stop(self) -> Vec<Director> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().filter_map(|t| t.join().ok()).collect()
    }
}

impl crate::control::Directors for Workers {
    fn on_each<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Director, Instant) -> T + Send + Sync + 'static,
    ) -> Vec<Option<T>> {
        self.each(move |_, d, io| f(d, io.now()))
    }
}
