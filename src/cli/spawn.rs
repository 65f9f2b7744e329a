//! `remotemedia spawn -n N -- batch ...`: starts a local process group for you. Picks N free ports
//! on 127.0.0.1, writes a hosts file, launches N copies of this executable with `--processes`,
//! `--process-index` and `--hosts` added, waits for all of them and propagates a failure.
//!
//! No child outlives it: Ctrl-C or SIGTERM is passed to process 0 as SIGTERM (it stops the batch
//! cleanly and writes the report of what finished; the others end with the group's dataflows),
//! whatever still runs [`STOP_GRACE`] later is killed, and on Linux a child whose parent dies
//! gets SIGTERM from the kernel. The children run in a process group of their own, so a
//! terminal's Ctrl-C reaches them only through this process.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use clap::Args;

use super::interrupt::Interrupt;
use super::CliError;

#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// How many processes to start, 1 to 64.
    #[arg(short = 'n', long = "processes", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub processes: u64,
    /// The command every process runs, after `--`: `batch MANIFEST INPUT_DIR --out DIR [options]`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// How long the other processes get to finish after one has failed, before they are stopped.
const GRACE: Duration = Duration::from_secs(3);

/// How long the processes get to stop after Ctrl-C or SIGTERM (process 0 lets the items already
/// inside a node finish) before they are killed.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

pub fn run(args: &SpawnArgs, out: &mut String) -> Result<(), CliError> {
    let n = args.processes as usize;
    match args.command.first().and_then(|c| c.to_str()) {
        Some("batch") => {}
        _ => return Err(CliError::usage("spawn runs `batch`: remotemedia spawn -n N -- batch MANIFEST INPUT_DIR --out DIR")),
    }
    for flag in ["--processes", "--process-index", "--hosts"] {
        if args.command.iter().any(|a| a.to_str().is_some_and(|s| s == flag || s.starts_with(&format!("{flag}=")))) {
            return Err(CliError::usage(format!("spawn sets {flag} itself; leave it out of the command")));
        }
    }
    let (exe, prefix) = this_program()?;
    let dir = temp_dir()?;
    let hosts_path = dir.join("hosts");
    let ports = free_ports(n)?;
    let hosts: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    super::write_text(&hosts_path, &hosts)?;

    // Caught before the first child starts, so that no signal can leave one behind.
    let interrupt = Interrupt::catch();
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for i in 0..n {
        let mut command = Command::new(&exe);
        command
            .args(&prefix)
            .args(&args.command)
            .arg("--processes")
            .arg(n.to_string())
            .arg("--process-index")
            .arg(i.to_string())
            .arg("--hosts")
            .arg(&hosts_path);
        own_group_and_parent_death_signal(&mut command);
        let spawned = command.spawn();
        match spawned {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                stop_all(&mut children);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(CliError::failure(format!("cannot start process {i}: {e}")));
            }
        }
    }
    let statuses = wait_all(&mut children, &interrupt);
    let interrupted = interrupt.pressed();
    drop(interrupt);
    let _ = std::fs::remove_dir_all(&dir);
    // Process 0's failure is the one that says what went wrong with the batch.
    let failed: Vec<(usize, &Option<ExitStatus>)> =
        statuses.iter().enumerate().filter(|(_, s)| !s.is_some_and(|s| s.success())).collect();
    if failed.is_empty() {
        let _ = writeln!(out, "spawn: {n} processes finished");
        return Ok(());
    }
    let code = statuses[0].and_then(|s| s.code()).filter(|&c| c != 0).unwrap_or(1);
    let what: Vec<String> = failed
        .iter()
        .map(|(i, s)| match s.and_then(|s| s.code()) {
            Some(c) => format!("process {i} exited with code {c}"),
            None => format!("process {i} was stopped"),
        })
        .collect();
    let how = if interrupted { "interrupted; " } else { "" };
    Err(CliError { code, message: format!("spawn: {how}{}", what.join(", ")) })
}

/// The program that runs this command line, and the arguments before the subcommand: this
/// executable, or, when the command line runs inside Python (`python -m remotemedia`, the pip
/// command), what `remotemedia.cli` puts in [`SELF_COMMAND`] (the interpreter and `-m remotemedia`):
/// the interpreter itself would not understand `batch ...`.
fn this_program() -> Result<(PathBuf, Vec<String>), CliError> {
    if let Ok(text) = std::env::var(SELF_COMMAND) {
        let words: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| CliError::failure(format!("{SELF_COMMAND} is not a JSON list of strings ({e}): {text}")))?;
        if let Some((program, prefix)) = words.split_first() {
            return Ok((PathBuf::from(program), prefix.to_vec()));
        }
    }
    let exe = std::env::current_exe().map_err(|e| CliError::failure(format!("cannot find this executable: {e}")))?;
    Ok((exe, Vec::new()))
}

/// Set by `remotemedia.cli` (a JSON list: program and leading arguments) for [`this_program`].
pub const SELF_COMMAND: &str = "REMOTEMEDIA_SELF_COMMAND";

/// Ports the OS hands out for 127.0.0.1, all held at once so they differ, then released for the
/// children to bind (a race with other programs is possible but unlikely).
fn free_ports(n: usize) -> Result<Vec<u16>, CliError> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::failure(format!("cannot find a free port on 127.0.0.1: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::failure(format!("cannot find a free port on 127.0.0.1: {e}")))
}

fn temp_dir() -> Result<PathBuf, CliError> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("remotemedia-spawn-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| CliError::failure(format!("cannot create '{}': {e}", dir.display())))?;
    Ok(dir)
}

/// Children in a process group of their own (a terminal's Ctrl-C goes to this process only, which
/// passes it on), and on Linux SIGTERM to each child when this process dies.
fn own_group_and_parent_death_signal(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // The parent died before prctl: nobody would ever stop this child.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    // SAFETY: signalling our own child, which has not been reaped yet (its slot is still held).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}

/// Waits for every child; once one fails, the rest get [`GRACE`] to finish and are then stopped
/// (a group missing a member cannot complete). On Ctrl-C or SIGTERM, process 0 (or, if it has
/// ended, every child left) gets SIGTERM, and all get [`STOP_GRACE`] before they are killed.
/// `None` for a child that could not be waited for.
fn wait_all(children: &mut [Option<Child>], interrupt: &Interrupt) -> Vec<Option<ExitStatus>> {
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut failed_at: Option<Instant> = None;
    let mut stopping_since: Option<Instant> = None;
    loop {
        let mut running = 0;
        for (i, slot) in children.iter_mut().enumerate() {
            let Some(child) = slot.as_mut() else { continue };
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() && failed_at.is_none() {
                        failed_at = Some(Instant::now());
                    }
                    statuses[i] = Some(status);
                    *slot = None;
                }
                Ok(None) => running += 1,
                Err(_) => {
                    failed_at.get_or_insert_with(Instant::now);
                    *slot = None;
                }
            }
        }
        if running == 0 {
            return statuses;
        }
        if stopping_since.is_none() && interrupt.pressed() {
            stopping_since = Some(Instant::now());
            match children.first().and_then(Option::as_ref) {
                Some(zero) => terminate(zero),
                None => children.iter().flatten().for_each(terminate),
            }
        }
        if failed_at.is_some_and(|t| t.elapsed() >= GRACE) || stopping_since.is_some_and(|t| t.elapsed() >= STOP_GRACE) {
            for (i, slot) in children.iter_mut().enumerate() {
                if let Some(mut child) = slot.take() {
                    let _ = child.kill();
                    statuses[i] = child.wait().ok();
                }
            }
            return statuses;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stop_all(children: &mut [Option<Child>]) {
    for mut child in children.iter_mut().filter_map(Option::take) {
        let _ = child.kill();
        let _ = child.wait();
    }
}
