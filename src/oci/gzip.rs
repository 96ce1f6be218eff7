//! Parallel gzip with output that does not depend on the number of threads (pigz's scheme).
//!
//! The input is cut into blocks of exactly [`BLOCK_SIZE`] bytes (the last one shorter). Each
//! block is raw-deflated on its own, primed with the previous block's last 32 KiB as the
//! dictionary, and ended with a sync flush (a byte-aligned empty stored block), except the
//! last, which ends the deflate stream. The compressed blocks, concatenated in order between
//! a gzip header and trailer, form one ordinary gzip member that any gunzip reads. Since a
//! block's bytes depend only on its own input and the 32 KiB before it, one thread or many
//! give the same stream.
//!
//! Pinned: level [`LEVEL`], deflate by flate2's zlib-rs backend, header
//! `1f 8b 08 00 00000000 00 ff` (no name, mtime 0, no extra flags, OS "unknown"), trailer
//! CRC-32 and size mod 2³², both little-endian.
//!
//! Written here because the crate that does this, `gzp`, can prime blocks with a dictionary
//! only through a C zlib (which would replace zlib-rs for the whole build and change every
//! digest), and its writer panics in `Drop` when finishing fails.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use flate2::{Compress, FlushCompress, Status};

pub const BLOCK_SIZE: usize = 128 * 1024;
pub const LEVEL: u32 = 6;
const DICTIONARY_SIZE: usize = 32 * 1024;
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    sequence: u64,
    data: Vec<u8>,
    dictionary: Option<Arc<[u8]>>,
    last: bool,
}

struct Done {
    sequence: u64,
    result: io::Result<Block>,
}

struct Block {
    compressed: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// Compress one block. The bytes depend only on the arguments.
///
/// Two properties of zlib-rs (0.6) make this stricter than it looks, both found by kiln's
/// scheduling test (`gzip_bytes_do_not_depend_on_scheduling`):
/// - its output depends on how output space is handed to it: the same input compressed into
///   one large buffer or into several smaller ones can differ by a byte. So each block is
///   compressed in exactly one call into a buffer larger than deflate's worst case, and a
///   call that does not finish is an error rather than a retry with other chunking;
/// - it zeroes its window only when a compressor is created (C zlib also zeroes past the
///   high-water mark as it goes), so a reused compressor can read the previous block's bytes
///   past the end of the input and pick other matches. So each block gets a new compressor.
fn compress_block(data: &[u8], dictionary: Option<&[u8]>, last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(flate2::Compression::new(LEVEL), false);
    if let Some(dictionary) = dictionary {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Deflate never expands data by more than its stored-block overhead (5 bytes per 64 KiB)
    // plus a few bytes of flush markers; an eighth more and 1 KiB is far above that.
    let bound = data.len() + data.len() / 8 + 1024;
    let mut output = Vec::with_capacity(bound);
    let status = compress
        .compress_vec(data, &mut output, flush)
        .map_err(io::Error::other)?;
    let complete = compress.total_in() == data.len() as u64
        && match status {
            Status::StreamEnd => last,
            Status::Ok | Status::BufError => !last && output.len() < output.capacity(),
        };
    if !complete {
        return Err(io::Error::other(format!(
            "deflate did not finish a {}-byte block in one call ({status:?})",
            data.len()
        )));
    }
    Ok(output)
}

fn worker(jobs: Receiver<Job>, done: Sender<Done>) {
    for job in jobs {
        let result =
            compress_block(&job.data, job.dictionary.as_deref(), job.last).map(|compressed| {
                let mut crc = crc32fast::Hasher::new();
                crc.update(&job.data);
                Block { compressed, crc }
            });
        if done
            .send(Done {
                sequence: job.sequence,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}

/// A gzip writer that compresses blocks on `threads` worker threads. The compressed stream
/// is written to `out` on the caller's thread, in order. Call [`ParallelGzip::finish`].
pub struct ParallelGzip<W: Write> {
    /// `None` once finished.
    out: Option<W>,
    buffer: Vec<u8>,
    dictionary: Option<Arc<[u8]>>,
    next_sequence: u64,
    next_to_write: u64,
    in_flight: usize,
    max_in_flight: usize,
    finished_blocks: BTreeMap<u64, Block>,
    crc: crc32fast::Hasher,
    total_in: u64,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(mut out: W, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let (job_sender, job_receiver) = crossbeam_channel::bounded::<Job>(threads * 2);
        let (done_sender, done_receiver) = crossbeam_channel::unbounded::<Done>();
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let jobs = job_receiver.clone();
            let done = done_sender.clone();
            let handle = std::thread::Builder::new()
                .name(format!("kiln-gzip-{index}"))
                .spawn(move || worker(jobs, done))?;
            workers.push(handle);
        }
        out.write_all(&HEADER)?;
        Ok(ParallelGzip {
            buffer: Vec::with_capacity(BLOCK_SIZE * 2),
            dictionary: None,
            next_sequence: 0,
            next_to_write: 0,
            in_flight: 0,
            max_in_flight: threads * 2 + 1,
            finished_blocks: BTreeMap::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            jobs: Some(job_sender),
            done: done_receiver,
            workers,
            out: Some(out),
        })
    }

    fn submit(&mut self, data: Vec<u8>, last: bool) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.receive_one()?;
        }
        let next_dictionary: Option<Arc<[u8]>> = (!last && data.len() >= DICTIONARY_SIZE)
            .then(|| Arc::from(&data[data.len() - DICTIONARY_SIZE..]));
        self.total_in += data.len() as u64;
        let job = Job {
            sequence: self.next_sequence,
            data,
            dictionary: self.dictionary.take(),
            last,
        };
        self.dictionary = next_dictionary;
        self.next_sequence += 1;
        self.in_flight += 1;
        self.jobs
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?
            .send(job)
            .map_err(|_| io::Error::other("gzip compression threads stopped"))?;
        self.write_ready()
    }

    /// Wait for one block to finish compressing.
    fn receive_one(&mut self) -> io::Result<()> {
        let done = self
            .done
            .recv()
            .map_err(|_| io::Error::other("gzip compression threads stopped"))?;
        self.in_flight -= 1;
        self.finished_blocks.insert(done.sequence, done.result?);
        self.write_ready()
    }

    /// Write every block that is next in order.
    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(block) = self.finished_blocks.remove(&self.next_to_write) {
            self.out
                .as_mut()
                .ok_or_else(|| io::Error::other("gzip stream already finished"))?
                .write_all(&block.compressed)?;
            self.crc.combine(&block.crc);
            self.next_to_write += 1;
        }
        Ok(())
    }

    /// Compress what is left, write the trailer, and return the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.buffer);
        self.submit(rest, true)?;
        drop(self.jobs.take());
        while self.in_flight > 0 {
            self.receive_one()?;
        }
        let crc = self.crc.clone().finalize();
        let mut out = self
            .out
            .take()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&(self.total_in as u32).to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        // A block is sent once more input follows it, so the last block is never empty
        // unless the whole stream is.
        while self.buffer.len() > BLOCK_SIZE {
            let rest = self.buffer.split_off(BLOCK_SIZE);
            let block = std::mem::replace(&mut self.buffer, rest);
            self.buffer
                .reserve(BLOCK_SIZE * 2 - self.buffer.len().min(BLOCK_SIZE * 2));
            self.submit(block, false)?;
        }
        Ok(buf.len())
    }

    /// Does nothing: flushing mid-stream would end a block early and change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        // Stop the workers. When unfinished (an error elsewhere), the partial stream is
        // discarded by whoever owns the output.
        drop(self.jobs.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn compress(input: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut writer = ParallelGzip::new(Vec::new(), threads).unwrap();
        for piece in input.chunks(chunk) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    /// Regression test: zlib-rs made block bytes depend on which block a reused compressor
    /// saw before and on how output space was handed out, so with two threads under load
    /// the stream changed from run to run. Real machine code (this test binary) triggered
    /// it within a few rounds; the canary's synthetic input did not.
    #[test]
    fn gzip_bytes_do_not_depend_on_scheduling() {
        let executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let input = &executable[..executable.len().min(8 << 20)];
        let stop = Arc::new(AtomicBool::new(false));
        let burners: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut counter = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        counter = counter.wrapping_add(1);
                    }
                    counter
                })
            })
            .collect();
        let reference = compress(input, 1, 1 << 20);
        let mut differing = Vec::new();
        for round in 0..12 {
            let threads = 2 + round % 3;
            if compress(input, threads, 4096 + round * 97) != reference {
                differing.push((round, threads));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for burner in burners {
            burner.join().unwrap();
        }
        assert!(
            differing.is_empty(),
            "rounds (round, threads) that differed: {differing:?}"
        );
        let mut decompressed = Vec::new();
        io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&reference[..]),
            &mut decompressed,
        )
        .unwrap();
        assert!(decompressed == input);
    }

    #[test]
    fn incompressible_blocks_fit_the_bound() {
        let mut state: u64 = 7;
        let random: Vec<u8> = (0..3 * BLOCK_SIZE + 5)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let compressed = compress(&random, 2, 65536);
        let mut decompressed = Vec::new();
        io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut decompressed,
        )
        .unwrap();
        assert!(decompressed == random);
    }
}
