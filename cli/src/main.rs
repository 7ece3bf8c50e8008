//! `bluegreen`: parses the command line, finds the API, runs the command, exits 0 / 1 / 2.

use bluegreen_cli::app::{Ctx, Settings};
use bluegreen_cli::args::{Cli, Output};
use bluegreen_cli::error::CliError;
use bluegreen_cli::real::{RealSession, Terminal};
use bluegreen_cli::style::Paint;
use bluegreen_cli::{config, dispatch};
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn run(cli: &Cli) -> Result<(), CliError> {
    let g = &cli.global;
    let var = |k: &str| std::env::var(k).ok();
    let path = g.config.clone().or_else(|| {
        config::default_path(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref())
    });
    let file = config::load(path.as_deref(), g.config.is_some())?;
    let router = var("BLUEGREEN_ROUTER_URL")
        .or_else(|| var("BLUEGREEN_ROUTER_PORT").map(|p| format!("http://127.0.0.1:{p}")));
    let target = config::target(
        g.local,
        g.endpoint.as_deref(),
        g.stack.as_deref(),
        &file,
        router.as_deref(),
        g.caller.as_deref(),
    )?;
    let session = RealSession::connect(target, g.region.clone().or(file.region.clone()))?;
    let stdout = std::io::stdout();
    let live = stdout.is_terminal();
    let color = anstream::AutoStream::choice(&stdout) != anstream::ColorChoice::Never;
    let mut out = stdout.lock();
    let defaults = Settings::default();
    let mut ctx = Ctx {
        session: &session,
        prompt: &Terminal,
        out: &mut out,
        json: g.output == Output::Json,
        paint: Paint { color },
        live,
        settings: Settings {
            registry: file.registry.clone(),
            service: file.service.clone(),
            mfa_always: g.mfa_serial.is_some(),
            mfa_serial: g.mfa_serial.clone().or(file.mfa_serial.clone()),
            mfa_code: g.mfa_code.clone(),
            mfa_environments: file
                .mfa_environments
                .clone()
                .unwrap_or(defaults.mfa_environments),
            interval: defaults.interval,
        },
        sleep: &std::thread::sleep,
    };
    dispatch(&mut ctx, &cli.command)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let stderr = std::io::stderr();
            let color = anstream::AutoStream::choice(&stderr) != anstream::ColorChoice::Never;
            let mark = Paint { color }.fail();
            eprintln!("{mark} {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
