//! Running an image in QEMU: the command line a board needs, the UART stream
//! decoded as it arrives, a timeout that kills a hung guest, and the exit
//! status the hypervisor chose (semihosting `SYS_EXIT`).

use anyhow::{Context, Result};
use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::decode::{LogDecoder, LogLine};

/// One QEMU run.
pub struct Run {
    /// `qemu-system-aarch64` or another binary.
    pub binary: String,
    /// The board's own arguments (machine, cpu, default memory).
    pub board_args: Vec<String>,
    /// The Image to boot with `-kernel`.
    pub image: PathBuf,
    /// The ELF the defmt table comes from.
    pub elf: PathBuf,
    /// A DTB to hand over with `-dtb` (boards whose QEMU model makes none).
    pub dtb: Option<PathBuf>,
    /// Kernel command line (`-append`), read by the hypervisor from `/chosen`.
    pub append: Option<String>,
    /// Arguments from the user or the test, appended unchanged.
    pub extra: Vec<String>,
    /// Kill QEMU after this long.
    pub timeout: Option<Duration>,
    /// Print lines as they arrive, with this prefix.
    pub echo: Option<String>,
    /// What QEMU's serial console reads.
    pub input: Input,
}

/// What the run types into the board's console.
#[derive(Clone, Debug, Default)]
pub enum Input {
    /// Nothing.
    #[default]
    None,
    /// The user's terminal (`cargo xtask run`).
    Terminal,
    /// Each text, once a decoded line containing its trigger appeared.
    Script(Vec<(String, String)>),
}

/// What a run produced.
pub struct Outcome {
    /// QEMU's exit status; `None` if it was killed by the timeout.
    pub status: Option<i32>,
    /// Every decoded line.
    pub lines: Vec<LogLine>,
    /// Frames that did not decode.
    pub malformed: usize,
    /// Wall time from start to exit.
    pub elapsed: Duration,
    /// What QEMU printed on stderr.
    pub stderr: String,
}

/// Whether `args` already set option `opt` (so a board default must not).
fn sets(args: &[String], opt: &str) -> bool {
    args.iter().any(|a| a == opt)
}

impl Run {
    /// The full QEMU command line.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        let mut board = self.board_args.iter();
        while let Some(a) = board.next() {
            // `-m` and `-smp` given by the user replace the board's defaults.
            if (a == "-m" || a == "-smp") && sets(&self.extra, a) {
                board.next();
                continue;
            }
            cmd.arg(a);
        }
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"]);
        // The ARM images exit through semihosting; x86 QEMU has no such
        // option (the x86 test kernel uses isa-debug-exit).
        if self.binary.ends_with("aarch64") {
            cmd.arg("-semihosting");
        }
        cmd.arg("-kernel").arg(&self.image);
        if let Some(dtb) = &self.dtb {
            cmd.arg("-dtb").arg(dtb);
        }
        if let Some(append) = &self.append {
            cmd.args(["-append", append]);
        }
        cmd.args(&self.extra);
        cmd
    }

    /// Boots, decodes and waits (or kills at the timeout).
    pub fn execute(&self) -> Result<Outcome> {
        let mut decoder = LogDecoder::new(&self.elf)?;
        let mut cmd = self.command();
        let stdin = match &self.input {
            Input::None => Stdio::null(),
            Input::Terminal => Stdio::inherit(),
            Input::Script(_) => Stdio::piped(),
        };
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("starting {}", self.binary))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let mut typing = child.stdin.take();
        let mut script: Vec<(String, String)> = match &self.input {
            Input::Script(s) => s.clone(),
            _ => Vec::new(),
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut lines = Vec::new();
        let mut timed_out = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(bytes) => {
                    for line in decoder.feed(&bytes) {
                        if let Some(prefix) = &self.echo {
                            println!("{prefix}{}", line.text);
                        }
                        if let (Some(pos), Some(tty)) = (
                            script.iter().position(|(trigger, _)| line.text.contains(trigger.as_str())),
                            typing.as_mut(),
                        ) {
                            let (_, text) = script.remove(pos);
                            let _ = std::io::Write::write_all(tty, text.as_bytes());
                            let _ = std::io::Write::flush(tty);
                        }
                        lines.push(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some(t) = self.timeout {
                if start.elapsed() > t {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = child.wait()?;
        let _ = reader.join();
        let stderr = err_reader.join().unwrap_or_default();
        Ok(Outcome {
            status: if timed_out { None } else { status.code() },
            lines,
            malformed: decoder.malformed(),
            elapsed: start.elapsed(),
            stderr,
        })
    }
}
