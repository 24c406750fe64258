//! One thread that works through the provider's jobs in order, so an Abholbestätigung never
//! overtakes the Versand- and Eingangsbestätigung of the same message, and the SMTP reply
//! to the city's gateway does not wait for the confirmations.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Outgoing, Provider, SendError};
use crate::receive::Accepted;

enum Job {
    Accepted(Box<Accepted>),
    Retrieve(String, Sender<Result<Vec<Outgoing>, SendError>>),
    Flush(Sender<()>),
}

pub(crate) struct Worker {
    provider: Arc<Provider>,
    tx: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    pub(crate) fn start(provider: Provider) -> std::io::Result<Worker> {
        let provider = Arc::new(provider);
        let (tx, rx) = mpsc::channel();
        let p = Arc::clone(&provider);
        let thread = thread::Builder::new()
            .name("sim-provider".into())
            .spawn(move || run(&p, &rx))?;
        Ok(Worker {
            provider,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn provider(&self) -> &Provider {
        &self.provider
    }

    fn submit(&self, job: Job) -> Result<(), SendError> {
        match lock(&self.tx).as_ref() {
            Some(tx) => tx.send(job).map_err(|_| SendError::Stopped),
            None => Err(SendError::Stopped),
        }
    }

    pub(crate) fn accepted(&self, a: &Accepted) {
        // After stop() nothing is sent any more; the message is stored all the same.
        let _ = self.submit(Job::Accepted(Box::new(a.clone())));
    }

    pub(crate) fn retrieve(&self, id: &str) -> Result<Vec<Outgoing>, SendError> {
        let (tx, rx) = mpsc::channel();
        self.submit(Job::Retrieve(id.to_string(), tx))?;
        rx.recv().map_err(|_| SendError::Stopped)?
    }

    /// Waits until every job submitted before has been worked off (or `timeout` passed).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.submit(Job::Flush(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    /// Finishes the queued jobs, then ends the thread.
    pub(crate) fn stop(&self) {
        lock(&self.tx).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn run(provider: &Provider, rx: &Receiver<Job>) {
    for job in rx {
        match job {
            Job::Accepted(a) => {
                provider.handle_accepted(&a);
            }
            Job::Retrieve(id, reply) => {
                let _ = reply.send(provider.retrieve(&id));
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
