//! The submission queue and the writer thread (group commit).
//!
//! Submitters push commands into a FIFO queue bounded by bytes. One writer
//! thread repeatedly takes everything queued, writes it to the active
//! segment, fsyncs once (under `FsyncPolicy::Always`) and completes every
//! ticket of the batch. While it fsyncs, new submissions pile up and form the
//! next batch, so the number of fsyncs adapts to the load.
//!
//! On a write or fsync error every ticket of the batch not yet acknowledged
//! fails with that error, the segment is truncated back to its last good
//! offset, and the writer carries on with the next batch: the WAL recovers by
//! itself once the disk does.

use std::collections::VecDeque;
use std::mem;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tracing::{error, warn};

use crate::config::{FsyncPolicy, MAX_QUEUED_BYTES};
use crate::error::WalError;
use crate::record::{encode_frame, frame_header, FRAME_HEADER_LEN};
use crate::segment::ActiveSegment;
use crate::stats::Counters;
use crate::ticket::{oneshot, Completion, Receiver};

/// Frames are gathered in a buffer of this size before being written.
const WRITE_BUFFER_SIZE: usize = 1024 * 1024;

/// Work for the writer thread, executed in queue order.
pub(crate) enum Command {
    /// Append a record.
    Record { data: Vec<u8>, done: Completion<()> },
    /// Seal the active segment (fsynced under `Always`) and start the next
    /// one; replies with the sealed segment's index.
    Rotate { done: Completion<u64> },
}

impl Command {
    fn fail(self, error: WalError) {
        match self {
            Command::Record { done, .. } => done.complete(Err(error)),
            Command::Rotate { done } => done.complete(Err(error)),
        }
    }

    fn queued_bytes(&self) -> u64 {
        match self {
            Command::Record { data, .. } => data.len() as u64,
            Command::Rotate { .. } => 0,
        }
    }
}

struct QueueState {
    commands: VecDeque<Command>,
    /// Bytes of records submitted and not yet completed (queued or in the
    /// batch being written).
    queued_bytes: u64,
    /// No more submissions accepted; the writer drains and exits.
    closed: bool,
}

/// The queue between submitters and the writer thread.
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when commands arrive or the queue closes.
    work: Condvar,
    /// Signalled when queued bytes drop or the queue closes.
    space: Condvar,
}

impl Queue {
    pub(crate) fn new() -> Self {
        Queue {
            state: Mutex::new(QueueState {
                commands: VecDeque::new(),
                queued_bytes: 0,
                closed: false,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
        }
    }

    /// Enqueues a record, blocking while the queue is over its byte bound.
    /// A record larger than the bound is admitted once the queue is empty.
    pub(crate) fn submit(&self, data: Vec<u8>) -> Result<Receiver<()>, WalError> {
        let len = data.len() as u64;
        let mut state = self.state.lock();
        while !state.closed && state.queued_bytes > 0 && state.queued_bytes + len > MAX_QUEUED_BYTES
        {
            self.space.wait(&mut state);
        }
        if state.closed {
            return Err(WalError::Closed);
        }
        let (done, receiver) = oneshot();
        state.queued_bytes += len;
        state.commands.push_back(Command::Record { data, done });
        drop(state);
        self.work.notify_one();
        Ok(receiver)
    }

    /// Asks the writer to rotate and waits for the sealed segment index.
    pub(crate) fn rotate(&self) -> Result<u64, WalError> {
        let (done, receiver) = oneshot();
        {
            let mut state = self.state.lock();
            if state.closed {
                return Err(WalError::Closed);
            }
            state.commands.push_back(Command::Rotate { done });
        }
        self.work.notify_one();
        receiver.wait()
    }

    /// Stops accepting submissions; the writer drains what is queued.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.work.notify_all();
        self.space.notify_all();
    }

    pub(crate) fn queued_bytes(&self) -> u64 {
        self.state.lock().queued_bytes
    }

    /// Blocks until there is work; `None` once closed and drained.
    fn next_batch(&self, batch: &mut VecDeque<Command>) -> Option<u64> {
        let mut state = self.state.lock();
        while state.commands.is_empty() && !state.closed {
            self.work.wait(&mut state);
        }
        if state.commands.is_empty() {
            return None;
        }
        mem::swap(&mut state.commands, batch);
        Some(batch.iter().map(Command::queued_bytes).sum())
    }

    fn release(&self, bytes: u64) {
        let mut state = self.state.lock();
        state.queued_bytes = state.queued_bytes.saturating_sub(bytes);
        drop(state);
        self.space.notify_all();
    }

    /// Fails everything still queued: the writer is gone.
    fn abandon(&self) {
        let commands = {
            let mut state = self.state.lock();
            state.closed = true;
            state.queued_bytes = 0;
            mem::take(&mut state.commands)
        };
        self.space.notify_all();
        for command in commands {
            command.fail(WalError::Closed);
        }
    }
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    dir: PathBuf,
    segment_size: u64,
    fsync: FsyncPolicy,
    active: ActiveSegment,
    buffer: Vec<u8>,
    /// Tickets of records written since the last commit.
    pending: Vec<Completion<()>>,
    /// Frame bytes of the pending records.
    pending_bytes: u64,
    /// The last failure could not truncate the segment; retry first.
    needs_repair: bool,
    counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn new(
        dir: PathBuf,
        segment_size: u64,
        fsync: FsyncPolicy,
        active: ActiveSegment,
        counters: Arc<Counters>,
    ) -> Self {
        Writer {
            dir,
            segment_size,
            fsync,
            active,
            buffer: Vec::with_capacity(WRITE_BUFFER_SIZE),
            pending: Vec::new(),
            pending_bytes: 0,
            needs_repair: false,
            counters,
        }
    }

    /// Runs the writer loop until the queue is closed and drained, then
    /// fsyncs the active segment.
    pub(crate) fn run(mut self, queue: &Queue) -> Result<(), WalError> {
        // Fails whatever is left if this thread unwinds.
        struct AbandonOnExit<'a>(&'a Queue);
        impl Drop for AbandonOnExit<'_> {
            fn drop(&mut self) {
                self.0.abandon();
            }
        }
        let _abandon = AbandonOnExit(queue);

        let mut batch = VecDeque::new();
        while let Some(batch_bytes) = queue.next_batch(&mut batch) {
            self.process(&mut batch);
            queue.release(batch_bytes);
        }
        if self.needs_repair {
            self.active.truncate_to_durable()?;
        }
        self.active.sync()
    }

    /// Writes one batch and completes its commands.
    fn process(&mut self, batch: &mut VecDeque<Command>) {
        let mut failure = None;
        if self.needs_repair {
            if let Err(error) = self.repair() {
                Counters::add(&self.counters.write_errors, 1);
                failure = Some(error);
            }
        }
        for command in batch.drain(..) {
            if let Some(error) = &failure {
                command.fail(error.clone());
                continue;
            }
            let result = match command {
                // The ticket joins `pending` only once its frame is in, as
                // `append` may commit the records before it.
                Command::Record { data, done } => match self.append(&data) {
                    Ok(()) => {
                        self.pending.push(done);
                        Ok(())
                    }
                    Err(error) => {
                        done.complete(Err(error.clone()));
                        Err(error)
                    }
                },
                Command::Rotate { done } => match self.commit().and_then(|()| self.rotate()) {
                    Ok(sealed) => {
                        done.complete(Ok(sealed));
                        Ok(())
                    }
                    Err(error) => {
                        done.complete(Err(error.clone()));
                        Err(error)
                    }
                },
            };
            if let Err(error) = result {
                self.fail_pending(&error);
                failure = Some(error);
            }
        }
        if failure.is_none() {
            if let Err(error) = self.commit() {
                self.fail_pending(&error);
            }
        }
    }

    /// Frames `data` into the buffer, rotating first if the segment is full.
    fn append(&mut self, data: &[u8]) -> Result<(), WalError> {
        let frame_len = FRAME_HEADER_LEN + data.len() as u64;
        let logical_len = self.active.written() + self.buffer.len() as u64;
        if logical_len + frame_len > self.segment_size
            && (self.active.has_records() || !self.buffer.is_empty())
        {
            self.commit()?;
            self.rotate()?;
        }
        if self.buffer.len() + frame_len as usize > WRITE_BUFFER_SIZE {
            self.flush_buffer()?;
        }
        if frame_len as usize > WRITE_BUFFER_SIZE {
            // Large records skip the copy into the buffer.
            self.active.write(&frame_header(data))?;
            self.active.write(data)?;
        } else {
            encode_frame(data, &mut self.buffer);
        }
        self.pending_bytes += frame_len;
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<(), WalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.active.write(&self.buffer);
        self.buffer.clear();
        result
    }

    /// Makes everything written durable and acknowledges pending records.
    fn commit(&mut self) -> Result<(), WalError> {
        self.flush_buffer()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.fsync == FsyncPolicy::Always {
            self.active.sync()?;
            Counters::add(&self.counters.fsyncs, 1);
        }
        self.active.mark_durable();
        Counters::add(&self.counters.records_written, self.pending.len() as u64);
        Counters::add(&self.counters.bytes_written, self.pending_bytes);
        self.pending_bytes = 0;
        for done in self.pending.drain(..) {
            done.complete(Ok(()));
        }
        Ok(())
    }

    /// Starts the next segment; returns the index of the sealed one. The
    /// caller has committed, so nothing is pending.
    fn rotate(&mut self) -> Result<u64, WalError> {
        debug_assert!(self.pending.is_empty() && self.buffer.is_empty());
        let sealed = self.active.index();
        let sync = self.fsync == FsyncPolicy::Always;
        let next = ActiveSegment::create(&self.dir, sealed + 1, sync)?;
        self.active = next;
        Counters::add(&self.counters.segments_created, 1);
        Counters::add(&self.counters.segments, 1);
        self.counters
            .current_segment
            .store(sealed + 1, std::sync::atomic::Ordering::Relaxed);
        Ok(sealed)
    }

    /// Fails every pending ticket and cuts the segment back to its last good
    /// offset.
    fn fail_pending(&mut self, error: &WalError) {
        error!(error = %error, records = self.pending.len(), "wal write failed");
        Counters::add(&self.counters.write_errors, 1);
        for done in self.pending.drain(..) {
            done.complete(Err(error.clone()));
        }
        self.pending_bytes = 0;
        self.buffer.clear();
        if let Err(repair_error) = self.active.truncate_to_durable() {
            warn!(error = %repair_error, "wal segment truncation failed, will retry");
            self.needs_repair = true;
        }
    }

    fn repair(&mut self) -> Result<(), WalError> {
        self.active.truncate_to_durable()?;
        self.needs_repair = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn submit_blocks_while_the_queue_is_over_its_byte_bound() {
        let queue = Queue::new();
        let half = (MAX_QUEUED_BYTES / 2 + 1) as usize;
        // Over the bound on its own, but admitted into an empty queue.
        let _first = queue
            .submit(vec![0; MAX_QUEUED_BYTES as usize + 1])
            .unwrap();
        let admitted = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _second = queue.submit(vec![0; half]).unwrap();
                admitted.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!admitted.load(Ordering::SeqCst), "second submit must wait");
            let mut batch = VecDeque::new();
            let bytes = queue.next_batch(&mut batch).unwrap();
            batch.clear();
            queue.release(bytes);
        });
        assert!(admitted.load(Ordering::SeqCst));
        assert_eq!(queue.queued_bytes(), half as u64);
        queue.close();
        assert!(matches!(queue.submit(vec![1]), Err(WalError::Closed)));
    }
}
