//! Progress on stderr: one line rewritten at most five times a second, only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(200);

pub(crate) struct Progress {
    enabled: bool,
    last: Instant,
}

impl Progress {
    pub(crate) fn new(wanted: bool) -> Self {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    /// Called once per entry; prints when the interval has passed.
    pub(crate) fn update(&mut self, files: u64, bytes: u64) {
        if !self.enabled || self.last.elapsed() < INTERVAL {
            return;
        }
        self.last = Instant::now();
        self.print(files, bytes);
    }

    /// Prints the final counts and ends the line.
    pub(crate) fn done(&mut self, files: u64, bytes: u64) {
        if self.enabled {
            self.print(files, bytes);
            eprintln!();
        }
    }

    fn print(&self, files: u64, bytes: u64) {
        let mib = bytes as f64 / (1024.0 * 1024.0);
        // Progress is best effort: a closed stderr must not fail the commit.
        let _ = write!(std::io::stderr(), "\r{files} files, {mib:.1} MiB");
    }
}
