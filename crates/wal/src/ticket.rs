//! [`Ticket`]: the handle a submitter waits on, and the one-shot completion
//! behind it.
//!
//! The completion is a `parking_lot` mutex and condvar (for blocking waits)
//! plus an optional [`Waker`] (for async waits), so the crate needs no async
//! runtime. Dropping the sending side without completing it (the writer
//! thread stopped or panicked) completes the receiver with
//! [`WalError::Closed`], so no waiter can hang.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;

struct Slot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

struct SlotState<T> {
    value: Option<Result<T, WalError>>,
    waker: Option<Waker>,
}

/// Creates a connected completion (sending side) and receiver.
pub(crate) fn oneshot<T>() -> (Completion<T>, Receiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            value: None,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Completion {
            slot: Some(Arc::clone(&slot)),
        },
        Receiver { slot },
    )
}

/// The sending side: completed exactly once, by value or by drop.
pub(crate) struct Completion<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completion<T> {
    /// Completes the receiver with `result`.
    pub(crate) fn complete(mut self, result: Result<T, WalError>) {
        self.send(result);
    }

    fn send(&mut self, result: Result<T, WalError>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waker = {
            let mut state = slot.state.lock();
            state.value = Some(result);
            state.waker.take()
        };
        slot.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        self.send(Err(WalError::Closed));
    }
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Receiver<T> {
    /// Blocks until the value arrives.
    pub(crate) fn wait(self) -> Result<T, WalError> {
        let mut state = self.slot.state.lock();
        loop {
            if let Some(value) = state.value.take() {
                return value;
            }
            self.slot.ready.wait(&mut state);
        }
    }

    fn poll_value(&self, context: &mut Context<'_>) -> Poll<Result<T, WalError>> {
        let mut state = self.slot.state.lock();
        if let Some(value) = state.value.take() {
            return Poll::Ready(value);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(context.waker()) => {}
            _ => state.waker = Some(context.waker().clone()),
        }
        Poll::Pending
    }

    fn is_complete(&self) -> bool {
        self.slot.state.lock().value.is_some()
    }
}

/// A submitted record's pending acknowledgement.
///
/// Completes with `Ok(())` once the record is written (and fsynced under
/// [`FsyncPolicy::Always`](crate::FsyncPolicy::Always)), or with the error
/// that failed its batch. Dropping a ticket does not cancel the write.
#[must_use = "a record is acknowledged only once its ticket completes"]
pub struct Ticket {
    receiver: Receiver<()>,
}

impl Ticket {
    pub(crate) fn new(receiver: Receiver<()>) -> Self {
        Ticket { receiver }
    }

    /// Blocks the calling thread until the record is durable.
    ///
    /// Do not call this on an async runtime thread; use
    /// [`wait_async`](Ticket::wait_async) there.
    pub fn wait(self) -> Result<(), WalError> {
        self.receiver.wait()
    }

    /// Waits, without blocking a thread, until the record is durable.
    pub async fn wait_async(self) -> Result<(), WalError> {
        TicketFuture {
            receiver: self.receiver,
        }
        .await
    }

    /// Returns whether the ticket has completed (successfully or not).
    pub fn is_complete(&self) -> bool {
        self.receiver.is_complete()
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("complete", &self.is_complete())
            .finish()
    }
}

struct TicketFuture {
    receiver: Receiver<()>,
}

impl Future for TicketFuture {
    type Output = Result<(), WalError>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll_value(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_wait_gets_the_value() {
        let (completion, receiver) = oneshot::<u64>();
        let waiter = std::thread::spawn(move || receiver.wait());
        completion.complete(Ok(7));
        assert_eq!(waiter.join().unwrap().unwrap(), 7);
    }

    #[test]
    fn dropped_completion_reports_closed() {
        let (completion, receiver) = oneshot::<()>();
        drop(completion);
        assert!(matches!(receiver.wait(), Err(WalError::Closed)));
    }

    #[test]
    fn async_wait_is_woken() {
        let (completion, receiver) = oneshot::<()>();
        let ticket = Ticket::new(receiver);
        assert!(!ticket.is_complete());
        let completer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            completion.complete(Ok(()));
        });
        futures::executor::block_on(ticket.wait_async()).unwrap();
        completer.join().unwrap();
    }
}
