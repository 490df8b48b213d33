//! Terminals' bytes: one thread for all the shim's terminal processes copies each pty master's
//! output to containerd's stdout FIFO and its stdin FIFO to the master, so that a terminal costs
//! no thread of its own. It starts with the first terminal.
//!
//! Every fd is non-blocking and waits in one epoll. What a destination does not take stays in
//! that direction's buffer, and its source is not read until the buffer is written: a slow reader
//! holds back its own terminal only. Once every process on the pty has exited, the master's
//! last output is still copied as the FIFO takes it, and the terminal ends at the master's EIO.
//!
//! The FIFOs are opened read-write, as stdio.rs opens output FIFOs: the open never waits for
//! containerd's end, and a writer that goes away is no EOF. A terminal takes no EOF from stdin
//! anyway (only ^D would mean one), so the input simply stops when containerd closes it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;

use containerd_shim::error;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// Bytes read at once from a source.
const CHUNK: usize = 32 * 1024;

/// Copy between `master` and the FIFOs at `stdin` and `stdout` (either may be empty: none).
pub fn copy(master: &OwnedFd, stdin: &str, stdout: &str) -> io::Result<()> {
    let open = |path: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(if path.is_empty() { "/dev/null" } else { path })
    };
    let master = File::from(master.try_clone()?);
    set_nonblocking(&master)?;
    let terminal = Terminal {
        master,
        output: open(stdout)?,
        input: if stdin.is_empty() {
            None
        } else {
            Some(open(stdin)?)
        },
        to_output: Vec::new(),
        to_master: Vec::new(),
        hung_up: false,
    };
    relay()?.add(terminal)
}

fn set_nonblocking(file: &File) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    fcntl(file, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The relay, started with the first terminal; it lives as long as the shim.
fn relay() -> io::Result<&'static Relay> {
    static RELAY: OnceLock<Result<&'static Relay, String>> = OnceLock::new();
    let started = RELAY.get_or_init(|| {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| e.to_string())?;
        let relay: &'static Relay = Box::leak(Box::new(Relay {
            epoll,
            terminals: Mutex::default(),
        }));
        thread::Builder::new()
            .name("terminals".into())
            .spawn(move || relay.serve())
            .map_err(|e| format!("start the terminal relay: {e}"))?;
        Ok(relay)
    });
    started.clone().map_err(io::Error::other)
}

struct Terminal {
    master: File,
    output: File,
    input: Option<File>,
    /// Read from the master, not yet written to the output.
    to_output: Vec<u8>,
    /// Read from the input, not yet written to the master.
    to_master: Vec<u8>,
    /// The pty's processes are gone: the master is out of epoll (its hang-up would be reported
    /// for ever) and is read as the output makes room, until EIO.
    hung_up: bool,
}

/// Which of a terminal's fds an epoll token names: the terminal's number times 3, plus this.
#[derive(Clone, Copy)]
enum End {
    Master = 0,
    Output = 1,
    Input = 2,
}

enum Got {
    Data,
    /// Nothing there now.
    Empty,
    /// EOF, or an error: EIO from a master whose processes are gone.
    Over,
}

impl Terminal {
    /// Copy what the fds allow now. False when the terminal is over.
    fn pump(&mut self) -> bool {
        if let Some(input) = &mut self.input {
            if self.to_master.is_empty() {
                if let Got::Over = fill(input, &mut self.to_master) {
                    // Read-write, it has no EOF: this is an error. Closing the fd takes it out
                    // of epoll.
                    self.input = None;
                }
            }
        }
        if self.hung_up {
            self.to_master.clear();
        } else if !flush(&mut self.master, &mut self.to_master) {
            return false;
        }
        // The master's output, for as long as the output takes it whole.
        loop {
            if !flush(&mut self.output, &mut self.to_output) {
                self.to_output.clear(); // Nobody can read it any more.
            }
            if !self.to_output.is_empty() {
                return true;
            }
            match fill(&mut self.master, &mut self.to_output) {
                Got::Data => {}
                Got::Empty => return !self.hung_up,
                Got::Over => return false,
            }
        }
    }

    /// What epoll should report for `end`: readable while its buffer is empty, writable while
    /// bytes wait for it.
    fn interest(&self, end: End) -> EpollFlags {
        let (read, write) = match end {
            End::Master => (self.to_output.is_empty(), !self.to_master.is_empty()),
            End::Output => (false, !self.to_output.is_empty()),
            End::Input => (self.to_master.is_empty(), false),
        };
        let mut flags = EpollFlags::empty();
        if read {
            flags |= EpollFlags::EPOLLIN;
        }
        if write {
            flags |= EpollFlags::EPOLLOUT;
        }
        flags
    }

    /// The fds in epoll.
    fn watched(&self) -> Vec<(End, &File)> {
        let mut ends = vec![(End::Output, &self.output)];
        if !self.hung_up {
            ends.push((End::Master, &self.master));
        }
        if let Some(input) = &self.input {
            ends.push((End::Input, input));
        }
        ends
    }
}

/// Read what is there into the empty `buffer`.
fn fill(from: &mut File, buffer: &mut Vec<u8>) -> Got {
    buffer.resize(CHUNK, 0);
    let read = from.read(buffer);
    buffer.truncate(*read.as_ref().unwrap_or(&0));
    match read {
        Ok(0) => Got::Over,
        Ok(_) => Got::Data,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Got::Empty
        }
        Err(_) => Got::Over,
    }
}

/// Write what `to` takes of `buffer`, keeping the rest. False when `to` fails for good.
fn flush(to: &mut File, buffer: &mut Vec<u8>) -> bool {
    while !buffer.is_empty() {
        match to.write(buffer) {
            Ok(n) => drop(buffer.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

struct Relay {
    epoll: Epoll,
    /// The next number, and the terminals by number: a number is never reused, so a late event
    /// names no other terminal.
    terminals: Mutex<(u64, HashMap<u64, Terminal>)>,
}

fn event(terminal: &Terminal, number: u64, end: End) -> EpollEvent {
    EpollEvent::new(terminal.interest(end), number * 3 + end as u64)
}

impl Relay {
    fn terminals(&self) -> MutexGuard<'_, (u64, HashMap<u64, Terminal>)> {
        self.terminals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, terminal: Terminal) -> io::Result<()> {
        let mut terminals = self.terminals();
        let number = terminals.0;
        terminals.0 += 1;
        for (end, file) in terminal.watched() {
            if let Err(e) = self.epoll.add(file, event(&terminal, number, end)) {
                for (_, added) in terminal.watched() {
                    let _ = self.epoll.delete(added);
                }
                return Err(e.into());
            }
        }
        terminals.1.insert(number, terminal);
        Ok(())
    }

    fn serve(&self) {
        let mut events = [EpollEvent::empty(); 16];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    error!("terminal relay: epoll: {e}");
                    return;
                }
            };
            for event in &events[..ready] {
                let hang_up = EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
                let master_hung_up =
                    event.data() % 3 == End::Master as u64 && event.events().intersects(hang_up);
                self.pump(event.data() / 3, master_hung_up);
            }
        }
    }

    fn pump(&self, number: u64, master_hung_up: bool) {
        let mut terminals = self.terminals();
        let Some(terminal) = terminals.1.get_mut(&number) else {
            return;
        };
        if master_hung_up && !terminal.hung_up {
            let _ = self.epoll.delete(&terminal.master);
            terminal.hung_up = true;
        }
        if !terminal.pump() {
            if let Some(terminal) = terminals.1.remove(&number) {
                for (_, file) in terminal.watched() {
                    let _ = self.epoll.delete(file);
                }
            }
            return;
        }
        for (end, file) in terminal.watched() {
            if let Err(e) = self.epoll.modify(file, &mut event(terminal, number, end)) {
                error!("terminal relay: epoll: {e}");
            }
        }
    }
}
