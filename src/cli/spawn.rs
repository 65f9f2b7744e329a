//! `remotemedia spawn -n N -- batch ...`: starts a local process group for you. Picks N free ports
//! on 127.0.0.1, writes a hosts file, launches N copies of this executable with `--processes`,
//! `--process-index` and `--hosts` added, waits for all of them and propagates a failure.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use clap::Args;

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
    let exe = std::env::current_exe().map_err(|e| CliError::failure(format!("cannot find this executable: {e}")))?;
    let dir = temp_dir()?;
    let hosts_path = dir.join("hosts");
    let ports = free_ports(n)?;
    let hosts: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    super::write_text(&hosts_path, &hosts)?;

    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for i in 0..n {
        let spawned = Command::new(&exe)
            .args(&args.command)
            .arg("--processes")
            .arg(n.to_string())
            .arg("--process-index")
            .arg(i.to_string())
            .arg("--hosts")
            .arg(&hosts_path)
            .spawn();
        match spawned {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                stop_all(&mut children);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(CliError::failure(format!("cannot start process {i}: {e}")));
            }
        }
    }
    let statuses = wait_all(&mut children);
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
    Err(CliError { code, message: format!("spawn: {}", what.join(", ")) })
}

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

/// Waits for every child; once one fails, the rest get [`GRACE`] to finish and are then stopped
/// (a group missing a member cannot complete). `None` for a child that could not be waited for.
fn wait_all(children: &mut [Option<Child>]) -> Vec<Option<ExitStatus>> {
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut failed_at: Option<Instant> = None;
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
        if failed_at.is_some_and(|t| t.elapsed() >= GRACE) {
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
