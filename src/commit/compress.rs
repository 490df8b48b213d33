//! The compression stage: the tar (already in large chunks) goes through it to the output.

use std::io::Write;

use anyhow::{Context, Result};
use gzp::deflate::Gzip;
use gzp::par::compress::ParCompressBuilder;
use gzp::ZWriter;

use super::{CommitOptions, Compression};

const ZSTD_JOB: u32 = 2 << 20;

/// Runs `f` with a writer that compresses into `out` as `opts` asks, finishes the stream and
/// gives `out` back (the OCI writer needs its temp file back to copy the blob).
pub(crate) fn with_compressor<W: Write + Send, T>(
    mut out: W,
    opts: &CommitOptions,
    f: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<(T, W)> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    match opts.compression {
        Compression::None => {
            let t = f(&mut out)?;
            out.flush().context("flushing output")?;
            Ok((t, out))
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(out, opts.level.unwrap_or(3))
                .context("starting zstd compression")?;
            // A u32 worth of threads is far beyond any machine; cap rather than fail.
            enc.multithread(u32::try_from(threads).unwrap_or(u32::MAX))
                .context("starting zstd worker threads")?;
            // Smaller jobs than zstd's default (4 windows, 8 MiB at level 3): a third of the
            // memory, and no slower (measured on /usr/share).
            enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))
                .context("setting zstd job size")?;
            let t = f(&mut enc)?;
            let mut out = enc.finish().context("finishing zstd stream")?;
            out.flush().context("flushing output")?;
            Ok((t, out))
        }
        Compression::Gzip => {
            let level = u32::try_from(opts.level.unwrap_or(6).clamp(0, 9)).unwrap_or(6);
            // Scoped threads: gzp's workers may borrow `out`, which need not be 'static.
            std::thread::scope(|scope| {
                let mut gz = ParCompressBuilder::<Gzip>::new()
                    .num_threads(threads)
                    .context("setting gzip threads")?
                    .compression_level(gzp::Compression::new(level))
                    .from_borrowed_writer(out, scope);
                let written = f(&mut gz);
                // Always finish: dropping an unfinished ParCompress panics on a write error.
                let finished = gz.finish();
                let t = written?;
                let mut out = finished.context("finishing gzip stream")?;
                out.flush().context("flushing output")?;
                Ok((t, out))
            })
        }
    }
}
