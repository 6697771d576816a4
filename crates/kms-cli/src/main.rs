//! `kmsctl`: a command-line client for kms over gRPC with the commands, flags, output and exit
//! statuses of `aws kms`.
#![forbid(unsafe_code)]

mod args;
mod audit;
mod cli;
mod cluster;
mod connection;
mod credentials;
mod envelope_files;
mod error;
mod json;
mod render;
mod run;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, Output};
use crate::error::{CliError, EXIT_OTHER, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
            return exit(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kmsctl: cannot start the async runtime: {e}");
            return exit(EXIT_OTHER);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.report());
            exit(e.exit_code())
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    // Check --query before any call, so a typo does not cost a round trip (or a key).
    if let Some(q) = &cli.query {
        json::Json::obj().query(q).map_err(CliError::Usage)?;
    }
    let result = match cli.command {
        Command::Cluster(command) => cluster::run(&cli.connection, command).await?,
        Command::Ca(command) => credentials::run_ca(command)?,
        Command::Token(command) => credentials::run_token(command)?,
        Command::Health => cli.connection.health().await?,
        Command::Audit(command) => audit::run(command)?,
        Command::EncryptFile(args) => envelope_files::encrypt_file(&cli.connection, args).await?,
        Command::DecryptFile(args) => envelope_files::decrypt_file(&cli.connection, args).await?,
        command => {
            let mut client = run::connect(&cli.connection).await?;
            run::run(&mut client, command, !cli.no_paginate).await?
        }
    };
    let result = match &cli.query {
        Some(q) => result.query(q).map_err(CliError::Usage)?,
        None if result.is_empty_object() => return Ok(()),
        None => result,
    };
    let text = match cli.output {
        Output::Json => result.to_pretty() + "\n",
        Output::Text => result.to_text(),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`kmsctl ... | head`) is not an error worth reporting.
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    Ok(())
}
